"""Reading events (writer.py accepts them), the reconciliation feed among them."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import DeliveryStatus, EventType
from app.core.models import Delivery, Event
from app.errors import Unprocessable
from app.pagination import PageParams, fetch_page
from app.tenancy import get_owned
from app.text import equals


@dataclass(frozen=True)
class EventFilters:
    """`GET /events`' query: every filter given must hold
    (docs/api.md#the-reconciliation-feed)."""

    event_type: EventType | None = None
    app_id: str | None = None
    delivery_status: DeliveryStatus | None = None
    webhook_id: str | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until


async def get(session: AsyncSession, account_id: str, event_id: str) -> Event:
    return await get_owned(session, Event, account_id, event_id, "event")


def _has_delivery(status: DeliveryStatus | None, webhook_id: str | None) -> ColumnElement[bool]:
    """The event has a delivery in `status` (to `webhook_id`). EXISTS rather than a join:
    an event with several such deliveries is one row, with no DISTINCT over the page.

    The probe selects a constant so that ix_deliveries_event_status (event_id, status,
    webhook_id) answers it alone. SQLite plans without statistics: offered an index on
    event_id and one on status, it probed by status, reading every failed delivery for
    each event (minutes for a page); an index that matches more of the probe and covers
    it is the one it takes, whatever the order the indexes were made in."""
    found: Select[tuple[int]] = select(literal_column("1")).where(Delivery.event_id == Event.id)
    if status is not None:
        found = found.where(Delivery.status == status)
    if webhook_id is not None:
        found = found.where(equals(Delivery.webhook_id, webhook_id))
    return found.exists()


async def list_page(
    session: AsyncSession, account_id: str, params: PageParams, filters: EventFilters
) -> tuple[Sequence[Event], str | None]:
    """Newest first by id; with `since`, oldest first by receipt (created_at, then id),
    so that a merchant catching up walks forward from where it was; with `until` alone,
    newest first by receipt."""
    since, until = filters.since, filters.until
    if since is not None and until is not None and until <= since:
        raise Unprocessable(["query", "until"], "must be later than since")
    statement = select(Event).where(Event.account_id == account_id)
    if filters.event_type is not None:
        statement = statement.where(Event.type == filters.event_type)
    if filters.app_id is not None:
        statement = statement.where(equals(Event.app_id, filters.app_id))
    if filters.delivery_status is not None or filters.webhook_id is not None:
        statement = statement.where(_has_delivery(filters.delivery_status, filters.webhook_id))
    if since is None and until is None:
        return await fetch_page(session, statement, Event.id, params)
    if since is not None:
        statement = statement.where(Event.created_at >= since)
    if until is not None:
        statement = statement.where(Event.created_at < until)
    return await fetch_page(
        session,
        statement,
        Event.id,
        params,
        time_column=Event.created_at,
        ascending=since is not None,
    )
