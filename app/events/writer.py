"""Accepting events, in batches: the `POST /events` requests that arrive together are
stored in one transaction and their deliveries queued in one Redis round trip.

Each request still gets its own answer only after its rows are committed and its jobs
enqueued, exactly as if it had been alone; group commit only shares the cost.

- Idempotency: a key seen within 24 h answers the first event (`replayed`); an older
  one is released so it can name a new event. Two requests with one key in the same
  batch are the first and its replay. Two in different processes race on the unique
  index: the loser's batch is rolled back and every request of it is retried alone,
  where the loser finds the winner's event.
- Matching: see `matches`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import queue
from app.core.coalescer import Coalescer
from app.core.db import utcnow
from app.core.enums import DeliveryKind, DeliveryStatus, EventType
from app.core.ids import new_id
from app.core.tables import actions, deliveries, events, webhooks
from app.core.unit_of_work import unit_of_work
from app.events.schemas import EventCreate

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class Subscription(NamedTuple):
    """An action of an active webhook."""

    account_id: str
    event_type: EventType
    app_id: str | None
    sku_id: str | None
    webhook_id: str


@dataclass(frozen=True)
class Submission:
    account_id: str
    body: EventCreate
    idempotency_key: str | None
    # The W3C traceparent stored with the event: each request of a batch keeps its own.
    traceparent: str | None = None


@dataclass(frozen=True)
class Accepted:
    event_id: str
    event_type: EventType
    deliveries: int
    replayed: bool


class EventWriter:
    def __init__(self, engine: AsyncEngine, redis: queue.Client, max_attempts: int) -> None:
        self._engine = engine
        self._redis = redis
        self._max_attempts = max_attempts
        self._coalescer = Coalescer(self._accept_batch)

    async def accept(self, submission: Submission) -> Accepted:
        """Stores the event and one delivery per matching webhook, then queues them."""
        return await self._coalescer.submit(submission)

    async def _accept_batch(self, submissions: Sequence[Submission]) -> list[Accepted]:
        try:
            return await self._store(submissions)
        except IntegrityError:  # an Idempotency-Key raced with another process
            return [await self._store_alone(submission) for submission in submissions]

    async def _store_alone(self, submission: Submission) -> Accepted:
        try:
            accepted = await self._store([submission])
        except IntegrityError:  # lost the race: the winner has committed, so it is a replay
            accepted = await self._store([submission])
        return accepted[0]

    async def _store(self, submissions: Sequence[Submission]) -> list[Accepted]:
        """Stores the batch in one unit of work; its deliveries are queued after the commit."""
        now = utcnow()
        event_rows: list[dict[str, Any]] = []
        delivery_rows: list[dict[str, Any]] = []
        accepted: list[Accepted] = []
        async with unit_of_work(self._engine.begin, self._redis) as work:
            connection = work.transaction
            replays = await _recent_events(connection, submissions, now)
            subscriptions = await _subscriptions(connection, submissions)
            for submission in submissions:
                key = (submission.account_id, submission.idempotency_key)
                if submission.idempotency_key is not None and key in replays:
                    accepted.append(replays[key])
                    continue
                event = _event_row(submission, now)
                webhook_ids = matches(subscriptions, submission)
                event["delivery_count"] = len(webhook_ids)
                event_rows.append(event)
                delivery_rows += [
                    _delivery_row(event, webhook_id, now, self._max_attempts)
                    for webhook_id in webhook_ids
                ]
                first = Accepted(event["id"], submission.body.type, len(webhook_ids), False)
                accepted.append(first)
                if submission.idempotency_key is not None:
                    replays[key] = Accepted(
                        first.event_id, first.event_type, first.deliveries, True
                    )
            if event_rows:
                await connection.execute(insert(events), event_rows)
            if delivery_rows:
                await connection.execute(insert(deliveries), delivery_rows)
            work.enqueue_after_commit(*(queue.Attempt(row["id"]) for row in delivery_rows))
        return accepted


async def _recent_events(
    connection: AsyncConnection, submissions: Sequence[Submission], now: datetime
) -> dict[tuple[str, str | None], Accepted]:
    """The events that the batch's Idempotency-Keys name, by (account, key); keys older
    than the window are released on the way."""
    keyed = {(s.account_id, s.idempotency_key) for s in submissions if s.idempotency_key}
    if not keyed:
        return {}
    rows = await connection.execute(
        select(events.c.id, events.c.account_id, events.c.idempotency_key)
        .add_columns(events.c.type, events.c.delivery_count, events.c.created_at)
        .where(events.c.account_id.in_(sorted({account for account, _ in keyed})))
        .where(events.c.idempotency_key.in_(sorted({str(key) for _, key in keyed})))
    )
    found: dict[tuple[str, str | None], Accepted] = {}
    expired: list[str] = []
    for row in rows:
        if (row.account_id, row.idempotency_key) not in keyed:
            continue
        if row.created_at > now - IDEMPOTENCY_WINDOW:
            found[row.account_id, row.idempotency_key] = _replay(row)
        else:
            expired.append(row.id)
    if expired:
        await connection.execute(
            update(events).where(events.c.id.in_(expired)).values(idempotency_key=None)
        )
    return found


def _replay(row: Row[Any]) -> Accepted:
    return Accepted(row.id, row.type, row.delivery_count, True)


async def _subscriptions(
    connection: AsyncConnection, submissions: Sequence[Submission]
) -> Sequence[Subscription]:
    """The actions of active webhooks that could match an event of the batch."""
    app_ids = sorted({s.body.app_id for s in submissions})
    rows = await connection.execute(
        select(
            actions.c.account_id,
            actions.c.event_type,
            actions.c.app_id,
            actions.c.sku_id,
            actions.c.webhook_id,
        )
        .join_from(actions, webhooks, webhooks.c.id == actions.c.webhook_id)
        .where(actions.c.account_id.in_(sorted({s.account_id for s in submissions})))
        .where(actions.c.event_type.in_(sorted({s.body.type for s in submissions})))
        .where(actions.c.app_id.is_(None) | actions.c.app_id.in_(app_ids))
        .where(webhooks.c.active.is_(True), webhooks.c.deleted_at.is_(None))
    )
    return [Subscription(*row) for row in rows]


def matches(subscriptions: Sequence[Subscription], submission: Submission) -> list[str]:
    """Webhooks of the account with at least one action for the event's type whose
    non-null ids equal the event's: an action without app_id matches every app, one
    without sku_id every SKU and the app itself; one with a sku_id only that SKU."""
    body = submission.body
    return sorted(
        {
            action.webhook_id
            for action in subscriptions
            if action.account_id == submission.account_id
            and action.event_type == body.type
            and (action.app_id is None or action.app_id == body.app_id)
            and (action.sku_id is None or action.sku_id == body.sku_id)
        }
    )


def _event_row(submission: Submission, now: datetime) -> dict[str, Any]:
    body = submission.body
    return {
        "id": new_id("evt"),
        "account_id": submission.account_id,
        "type": body.type,
        "app_id": body.app_id,
        "sku_id": body.sku_id,
        "occurred_at": (body.occurred_at or now).astimezone(UTC),
        "data": body.data,
        "idempotency_key": submission.idempotency_key,
        "ordering_key": body.ordering_key,
        "created_at": now,
        "traceparent": submission.traceparent,
    }


def _delivery_row(
    event: dict[str, Any], webhook_id: str, now: datetime, max_attempts: int
) -> dict[str, Any]:
    return {
        "id": new_id("dlv"),
        "account_id": event["account_id"],
        "webhook_id": webhook_id,
        "event_id": event["id"],
        "kind": DeliveryKind.EVENT,
        "status": DeliveryStatus.PENDING,
        "attempt_count": 0,
        "attempt_limit": max_attempts,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
        "ordering_key": event["ordering_key"],
        "ordered_at": event["occurred_at"],
    }
