"""Reading notices; the workers write them (app/core/announcements.py)."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Notice
from app.pagination import PageParams, fetch_page
from app.text import equals


async def list_page(
    session: AsyncSession, account_id: str, params: PageParams, *, webhook_id: str | None
) -> tuple[Sequence[Notice], str | None]:
    statement = select(Notice).where(Notice.account_id == account_id)
    if webhook_id is not None:
        statement = statement.where(equals(Notice.webhook_id, webhook_id))
    return await fetch_page(session, statement, Notice.id, params)
