"""Accepting an event: idempotency, matching actions, one delivery per matching webhook."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import queue
from app.db import utcnow
from app.enums import DeliveryKind, EventType
from app.errors import NotFound
from app.events.schemas import EventCreate
from app.ids import new_id
from app.models import Action, Delivery, Event, Webhook
from app.pagination import PageParams, fetch_page

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def matching_webhook_ids(account_id: str, body: EventCreate) -> Select[str]:
    """Active webhooks with at least one action whose non-null ids equal the event's."""
    sku_matches: ColumnElement[bool] = Action.sku_id.is_(None)
    if body.sku_id is not None:
        sku_matches = or_(sku_matches, Action.sku_id == body.sku_id)
    return (
        select(Webhook.id)
        .join(Action, Action.webhook_id == Webhook.id)
        .where(
            Action.account_id == account_id,
            Action.event_type == body.type,
            Action.app_id.is_(None) | (Action.app_id == body.app_id),
            sku_matches,
            Webhook.active.is_(True),
            Webhook.deleted_at.is_(None),
        )
        .distinct()
        .order_by(Webhook.id)
    )


async def find_replay(session: AsyncSession, account_id: str, key: str) -> Event | None:
    """The event a recent request with this Idempotency-Key created, if any.

    A key older than the window is released so it can name a new event."""
    event = await session.scalar(
        select(Event).where(Event.account_id == account_id, Event.idempotency_key == key)
    )
    if event is None:
        return None
    if event.created_at > utcnow() - IDEMPOTENCY_WINDOW:
        return event
    await session.execute(update(Event).where(Event.id == event.id).values(idempotency_key=None))
    return None


async def accept(
    session: AsyncSession,
    account_id: str,
    body: EventCreate,
    *,
    max_attempts: int,
    idempotency_key: str | None,
) -> tuple[Event, bool]:
    """Stores the event and its deliveries; returns (event, replayed)."""
    if idempotency_key is not None:
        replay = await find_replay(session, account_id, idempotency_key)
        if replay is not None:
            return replay, True
    now = utcnow()
    webhook_ids = (await session.scalars(matching_webhook_ids(account_id, body))).all()
    event = Event(
        id=new_id("evt"),
        account_id=account_id,
        type=body.type,
        app_id=body.app_id,
        sku_id=body.sku_id,
        occurred_at=(body.occurred_at or now).astimezone(UTC),
        data=body.data,
        idempotency_key=idempotency_key,
        delivery_count=len(webhook_ids),
        created_at=now,
    )
    session.add(event)
    try:
        await session.flush()
    except IntegrityError:
        # Two requests raced with one Idempotency-Key: answer as the winner did.
        await session.rollback()
        assert idempotency_key is not None
        winner = await find_replay(session, account_id, idempotency_key)
        if winner is None:
            raise
        return winner, True
    deliveries = _deliveries(event, webhook_ids, now, max_attempts)
    session.add_all(deliveries)
    await session.flush()
    for delivery in deliveries:
        queue.enqueue_after_commit(session, delivery.id)
    return event, False


def _deliveries(
    event: Event, webhook_ids: Sequence[str], now: datetime, max_attempts: int
) -> list[Delivery]:
    return [
        Delivery(
            id=new_id("dlv"),
            account_id=event.account_id,
            webhook_id=webhook_id,
            event_id=event.id,
            kind=DeliveryKind.EVENT,
            attempt_limit=max_attempts,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for webhook_id in webhook_ids
    ]


async def get(session: AsyncSession, account_id: str, event_id: str) -> Event:
    event = await session.get(Event, event_id)
    if event is None or event.account_id != account_id:
        raise NotFound(f"No event {event_id}.")
    return event


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
        statement = statement.where(Event.app_id == app_id)
    return await fetch_page(session, statement, Event.id, params)
