"""The claim side of the bookkeeping (`workers/bookkeeping.py`): which of the deliveries
read (`workers/claimable.py`) may be sent now, each webhook's slots, ordering holds, and
the attempt rows a claim inserts."""

from datetime import datetime

from sqlalchemy import (
    bindparam,
    func,
    insert,
    select,
    update,
)

from app.core import queue
from app.core.db import Connection
from app.core.delivery_states import Claim
from app.core.enums import DeliveryStatus, ErrorClass
from app.core.ids import new_id
from app.core.metrics import DELIVERIES_FINISHED
from app.core.ordering import before
from app.core.tables import attempts, deliveries, webhooks
from workers.claimable import Claimable

INTERRUPTED = "Interrupted: the worker stopped before this attempt had an outcome; retried."


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


async def claim_row(
    connection: Connection,
    row: Claimable,
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
                last_error_class=None,
                next_attempt_at=None,
                completed_at=now,
                updated_at=now,
            )
        )
        DELIVERIES_FINISHED.labels(DeliveryStatus.CANCELLED.value).inc()
        if row.ordering_key is not None:  # the next one is cancelled in its turn
            woken += await wake_next_in_order(connection, row, now)
        return None
    if row.ordered and await _earlier_pending(connection, row):
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
        payload=row.payload(),
        secrets=row.signing_secrets(now),
        success_statuses=row.success_statuses,
        ordering_key=row.ordering_key,
        traceparent=row.traceparent,
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


async def _earlier_pending(connection: Connection, row: Claimable) -> bool:
    """An earlier delivery of the row's ordering key is still pending."""
    if row.ordering_key is None or row.ordered_at is None:
        return False
    found = await connection.execute(
        select(deliveries.c.id)
        .where(before(row.webhook_id, row.ordering_key, row.ordered_at, row.id))
        .where(deliveries.c.status == DeliveryStatus.PENDING)
        .limit(1)
    )
    return found.first() is not None


async def wake_next_in_order(
    connection: Connection, ended: Claimable | Claim, now: datetime
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


async def _record_interruption(connection: Connection, row: Claimable) -> bool:
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
        .values(error=INTERRUPTED, error_class=ErrorClass.INTERRUPTED)
    )
    if interrupted.rowcount != 1:
        return False
    await connection.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id)
        .values(last_error=INTERRUPTED, last_error_class=ErrorClass.INTERRUPTED)
    )
    return True


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
