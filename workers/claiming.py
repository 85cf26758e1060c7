"""The claim side of the bookkeeping (`workers/bookkeeping.py`): which deliveries may be
sent now, each webhook's slots, ordering holds, and the attempt rows a claim inserts."""

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)

from app.core import queue
from app.core.db import Connection
from app.core.delivery_states import Claim
from app.core.enums import (
    DeliveryStatus,
)
from app.core.ids import new_id
from app.core.metrics import DELIVERIES_FINISHED
from app.core.ordering import before
from app.core.tables import attempts, deliveries, events, webhooks
from workers import payloads

INTERRUPTED = "Interrupted: the worker stopped before this attempt had an outcome; retried."
# A job that comes a little before its time (clock skew, arq's poll) still runs.
EARLY_TOLERANCE = timedelta(seconds=1)


async def lock_webhooks(connection: Connection, delivery_ids: list[str]) -> None:
    """PostgreSQL: the webhooks of these deliveries, locked in id order so that two
    workers' claims for one webhook count its attempts in flight one after the other
    (max_in_flight holds across workers). NO KEY UPDATE: new deliveries referencing the
    webhook can still be inserted meanwhile. SQLite's write lock already serializes."""
    if connection.dialect.name != "postgresql":
        return
    await connection.execute(
        select(webhooks.c.id)
        .where(
            webhooks.c.id.in_(
                select(deliveries.c.webhook_id).where(deliveries.c.id.in_(delivery_ids))
            )
        )
        .order_by(webhooks.c.id)
        .with_for_update(key_share=True)
    )


async def free_slots(
    connection: Connection, webhook_ids: list[str], now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Attempts in flight per webhook, and the free slots of the open ones that have any
    (max_in_flight less those in flight), in one statement that also locks the webhooks
    (PostgreSQL, as `lock_webhooks` does for a claim)."""
    rows = await connection.execute(_SLOTS, {"ids": webhook_ids, "now": now})
    counts: dict[str, int] = {}
    free: dict[str, int] = {}
    for webhook_id, limit, count in rows:
        counts[webhook_id] = count
        if limit > count:
            free[webhook_id] = limit - count
    return counts, free


_SLOTS = (
    select(
        webhooks.c.id,
        webhooks.c.max_in_flight,
        select(func.count())
        .where(
            deliveries.c.webhook_id == webhooks.c.id,
            deliveries.c.leased_until > bindparam("now"),
            deliveries.c.status == DeliveryStatus.PENDING,
        )
        .scalar_subquery(),
    )
    .where(
        webhooks.c.id.in_(bindparam("ids", expanding=True)),
        webhooks.c.active.is_(True),
        webhooks.c.deleted_at.is_(None),
    )
    .order_by(webhooks.c.id)
    .with_for_update(of=webhooks, key_share=True)
)


def _claimable(which: ColumnElement[bool]) -> Select[Any]:
    """The rows a claim reads, of the deliveries `which` picks, locked."""
    return (
        select(
            deliveries.c.id,
            deliveries.c.status,
            deliveries.c.kind,
            deliveries.c.attempt_count,
            deliveries.c.attempt_limit,
            deliveries.c.next_attempt_at,
            deliveries.c.created_at,
            deliveries.c.event_id,
            webhooks.c.id.label("webhook_id"),
            webhooks.c.active,
            webhooks.c.deleted_at,
            webhooks.c.url,
            webhooks.c.http_method,
            webhooks.c.payload_type,
            webhooks.c.secret,
            webhooks.c.previous_secret,
            webhooks.c.previous_secret_expires_at,
            webhooks.c.success_statuses,
            webhooks.c.ordered,
            webhooks.c.max_in_flight,
            deliveries.c.ordering_key,
            deliveries.c.ordered_at,
            events.c.type.label("event_type"),
            events.c.occurred_at,
            events.c.app_id,
            events.c.sku_id,
            events.c.data,
        )
        .join_from(deliveries, webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .outerjoin(events, events.c.id == deliveries.c.event_id)
        .where(which)
        .order_by(deliveries.c.id)
        # PostgreSQL: a row another worker is claiming or recording is left to it.
        .with_for_update(of=deliveries, skip_locked=True)
    )


# Statements built once, with bound parameters: SQLAlchemy then reuses both the
# statement's cache key and its compiled form (building them anew for every batch was a
# fifth of the worker's CPU).
_CLAIMABLE_BY_ID = _claimable(deliveries.c.id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _claimable_next_due(webhook_count: int) -> Select[Any]:
    """The oldest due deliveries of `webhook_count` webhooks, as many of each as it has
    free slots (`w0`, `n0`, `w1`, `n1`, …; `now`): a union of one indexed, limited select
    per webhook."""
    selects = [
        select(deliveries.c.id)
        .where(
            deliveries.c.webhook_id == bindparam(f"w{index}"),
            deliveries.c.status == DeliveryStatus.PENDING,
            deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(bindparam(f"n{index}", type_=Integer))
        .subquery()
        .select()
        for index in range(webhook_count)
    ]
    among = selects[0] if webhook_count == 1 else union_all(*selects)
    return _claimable(deliveries.c.id.in_(among))


async def lock_claimable(connection: Connection, delivery_ids: list[str]) -> list[Row[Any]]:
    return list(await connection.execute(_CLAIMABLE_BY_ID, {"ids": delivery_ids}))


async def lock_next_due(
    connection: Connection, free: dict[str, int], now: datetime
) -> list[Row[Any]]:
    parameters: dict[str, Any] = {"now": now}
    for index, (webhook_id, slots) in enumerate(sorted(free.items())):
        parameters[f"w{index}"] = webhook_id
        parameters[f"n{index}"] = slots
    return list(await connection.execute(_claimable_next_due(len(free)), parameters))


def is_due(row: Row[Any], now: datetime) -> bool:
    if row.status != DeliveryStatus.PENDING:
        return False
    # Not due yet: its own deferred job, or the sweeper, will come.
    return row.next_attempt_at is None or row.next_attempt_at <= now + EARLY_TOLERANCE


async def claim_row(
    connection: Connection,
    row: Row[Any],
    now: datetime,
    in_flight: dict[str, int],
    woken: list[queue.Attempt],
) -> Claim | None:
    if not row.active or row.deleted_at is not None:
        await connection.execute(
            update(deliveries)
            .where(deliveries.c.id == row.id)
            .values(
                status=DeliveryStatus.CANCELLED,
                last_error="Not sent: the webhook is inactive or deleted.",
                next_attempt_at=None,
                completed_at=now,
                updated_at=now,
            )
        )
        DELIVERIES_FINISHED.labels(DeliveryStatus.CANCELLED.value).inc()
        if row.ordering_key is not None:  # the next one is cancelled in its turn
            woken += await wake_next_in_order(connection, row, now)
        return None
    if row.ordered and row.ordering_key is not None and await _earlier_pending(connection, row):
        # Held: not due until the earlier delivery finishes and wakes it.
        await connection.execute(
            update(deliveries).where(deliveries.c.id == row.id).values(next_attempt_at=None)
        )
        return None
    if in_flight.get(row.webhook_id, 0) >= row.max_in_flight:
        return None  # stays due: handed off when a slot frees, or queued by the sweeper
    in_flight[row.webhook_id] = in_flight.get(row.webhook_id, 0) + 1
    attempt_limit = row.attempt_limit
    if row.attempt_count > 0 and await _record_interruption(connection, row):
        attempt_limit += 1
    return Claim(
        delivery_id=row.id,
        webhook_id=row.webhook_id,
        number=row.attempt_count + 1,
        attempt_limit=attempt_limit,
        kind=row.kind,
        url=row.url,
        method=row.http_method,
        payload_type=row.payload_type,
        payload=_payload(row),
        secrets=_signing_secrets(row, now),
        success_statuses=row.success_statuses,
        ordering_key=row.ordering_key,
    )


async def count_in_flight(
    connection: Connection, webhook_ids: set[str], now: datetime
) -> dict[str, int]:
    """Attempts in flight per webhook, across all workers: leased, still pending."""
    if not webhook_ids:
        return {}
    rows = await connection.execute(_IN_FLIGHT, {"ids": sorted(webhook_ids), "now": now})
    return {webhook_id: count for webhook_id, count in rows}


_IN_FLIGHT = (
    select(deliveries.c.webhook_id, func.count())
    .where(deliveries.c.webhook_id.in_(bindparam("ids", expanding=True)))
    .where(deliveries.c.leased_until > bindparam("now"))
    .where(deliveries.c.status == DeliveryStatus.PENDING)
    .group_by(deliveries.c.webhook_id)
)


async def _earlier_pending(connection: Connection, row: Row[Any]) -> bool:
    found = await connection.execute(
        select(deliveries.c.id)
        .where(before(row.webhook_id, row.ordering_key, row.ordered_at, row.id))
        .where(deliveries.c.status == DeliveryStatus.PENDING)
        .limit(1)
    )
    return found.first() is not None


async def wake_next_in_order(
    connection: Connection, ended: Row[Any] | Claim, now: datetime
) -> list[queue.Attempt]:
    """After a delivery of an ordering key finished: the first pending one of that key
    becomes due if it was held. Its row lock (taken by the UPDATE) orders this after a
    claim that is holding it right now, so the hold cannot outlive the wake."""
    first = (
        await connection.execute(
            select(deliveries.c.id, deliveries.c.attempt_count)
            .where(
                deliveries.c.webhook_id == ended.webhook_id,
                deliveries.c.ordering_key == ended.ordering_key,
                deliveries.c.status == DeliveryStatus.PENDING,
            )
            .order_by(deliveries.c.ordered_at, deliveries.c.id)
            .limit(1)
        )
    ).first()
    if first is None:
        return []
    woken = await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.id == first.id,
            deliveries.c.status == DeliveryStatus.PENDING,
            deliveries.c.next_attempt_at.is_(None),
        )
        .values(next_attempt_at=now)
    )
    return [queue.Attempt(first.id, first.attempt_count + 1)] if woken.rowcount == 1 else []


async def _record_interruption(connection: Connection, row: Row[Any]) -> bool:
    """An attempt that never got an outcome died with its worker (SIGKILL, power loss):
    record that, and do not count it against the budget."""
    interrupted = await connection.execute(
        update(attempts)
        .where(
            attempts.c.delivery_id == row.id,
            attempts.c.number == row.attempt_count,
            attempts.c.status_code.is_(None),
            attempts.c.error.is_(None),
        )
        .values(error=INTERRUPTED)
    )
    if interrupted.rowcount != 1:
        return False
    await connection.execute(
        update(deliveries).where(deliveries.c.id == row.id).values(last_error=INTERRUPTED)
    )
    return True


def _payload(row: Row[Any]) -> dict[str, Any]:
    if row.event_id is None:
        return payloads.ping_payload(int(row.created_at.timestamp()))
    return payloads.event_payload(
        event_id=row.event_id,
        event_type=row.event_type.value,
        occurred_at=row.occurred_at,
        app_id=row.app_id,
        sku_id=row.sku_id,
        data=row.data,
    )


def _signing_secrets(row: Row[Any], now: datetime) -> list[str]:
    secrets = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        secrets.append(row.previous_secret)
    return secrets


_INSERT_ATTEMPT = insert(attempts)

_TAKE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        attempt_count=bindparam("b_number"),
        attempt_limit=bindparam("b_attempt_limit"),
        next_attempt_at=bindparam("b_lease_until"),
        leased_until=bindparam("b_lease_until"),
        updated_at=bindparam("b_now"),
    )
)


async def insert_attempts(
    connection: Connection, claims: list[Claim], now: datetime, lease_until: datetime
) -> None:
    # The rows are locked (or the database is, on SQLite) since lock_claimable, so the
    # status and attempt_count read there still hold.
    await connection.execute(
        _TAKE,
        [
            {
                "b_id": claim.delivery_id,
                "b_number": claim.number,
                "b_attempt_limit": claim.attempt_limit,
                "b_lease_until": lease_until,
                "b_now": now,
            }
            for claim in claims
        ],
    )
    await connection.execute(
        _INSERT_ATTEMPT,
        [
            {
                "id": new_id("att"),
                "delivery_id": claim.delivery_id,
                "number": claim.number,
                "started_at": now,
            }
            for claim in claims
        ],
    )


# --- recording ---------------------------------------------------------------------------
