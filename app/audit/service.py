"""Reading the audit log: an account's entries, newest first, by target or actor."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditEntry
from app.pagination import PageParams, fetch_page
from app.text import equals


async def list_page(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    *,
    target_id: str | None,
    actor: str | None,
) -> tuple[Sequence[AuditEntry], str | None]:
    statement = select(AuditEntry).where(AuditEntry.account_id == account_id)
    if target_id is not None:
        statement = statement.where(equals(AuditEntry.target_id, target_id))
    if actor is not None:
        statement = statement.where(equals(AuditEntry.actor_id, actor))
    return await fetch_page(session, statement, AuditEntry.id, params)
