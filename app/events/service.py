"""Reading events (writer.py accepts them)."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import EventType
from app.core.models import Event
from app.pagination import PageParams, fetch_page
from app.tenancy import get_owned
from app.text import equals


async def get(session: AsyncSession, account_id: str, event_id: str) -> Event:
    return await get_owned(session, Event, account_id, event_id, "event")


async def list_page(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    *,
    event_type: EventType | None,
    app_id: str | None,
) -> tuple[Sequence[Event], str | None]:
    statement = select(Event).where(Event.account_id == account_id)
    if event_type is not None:
        statement = statement.where(Event.type == event_type)
    if app_id is not None:
        statement = statement.where(equals(Event.app_id, app_id))
    return await fetch_page(session, statement, Event.id, params)
