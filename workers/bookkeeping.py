"""The database side of an attempt: claim it before the send, record its outcome after.

Both run in batches (see `app/core/coalescer.py`): every job in flight that needs a claim
shares one transaction, and so does every outcome waiting to be stored. The
guarantees are those of a single attempt:

- A claim takes the delivery's row (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so a row
  another worker holds is left to it; SQLite: `BEGIN IMMEDIATE`, one writer), checks
  it is pending and due, raises `attempt_count` and inserts the attempt's row, whose
  `(delivery_id, number)` is unique: a duplicated or re-run job cannot send the same
  attempt twice. While the attempt is in flight `next_attempt_at` is pushed out by
  a lease, so the sweeper leaves it alone unless the worker died.
- A record stores the attempt's outcome and moves the delivery on only if it is still
  pending at that attempt (a cancelled or deleted webhook's delivery stays cancelled).

The delivery policies (docs/api.md#delivery-policies) live here too, decided by the database:
- ordered webhooks: a delivery with an earlier pending one of the same ordering key is
  held (`next_attempt_at` NULL, so the sweeper leaves it) and woken, in the transaction
  that finishes the earlier one, by `_wake_next_in_order`;
- `max_in_flight`: a claim counts the webhook's leased deliveries; over the limit the
  delivery stays due;
- automatic disabling on 410 and on failure for AUTO_DISABLE_AFTER_HOURS (`_judge`).

The hand-off keeps a webhook's slots full: the transaction that records finished
attempts also claims, for each of their webhooks, the next due deliveries up to its free
slots (oldest due first), and returns those claims to the worker, which sends them at
once. A freed slot never waits for Redis, a poll or another transaction. The queue is
how a webhook with nothing in flight gets going again; the sweeper picks up whatever
neither reaches (a worker that died, a lost enqueue).

Retries and woken deliveries are queued after the commit, one Redis call per batch; if
that enqueue is lost they are due, and the sweeper queues them.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
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
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import delivery_states, lifecycle, queue
from app.core.coalescer import Coalescer
from app.core.db import Connection, utcnow
from app.core.delivery_states import Claim, Outcome, Transition, next_state
from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
)
from app.core.ids import new_id
from app.core.metrics import DELIVERIES_FINISHED, WEBHOOKS_DISABLED
from app.core.ordering import before
from app.core.settings import Settings
from app.core.tables import attempts, deliveries, events, webhooks
from workers import payloads
from workers.transactions import transactions_for

INTERRUPTED = "Interrupted: the worker stopped before this attempt had an outcome; retried."
# A job that comes a little before its time (clock skew, arq's poll) still runs.
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class Recorded:
    """What a record decided: when the delivery's next attempt is due (None: it finished,
    or moved on meanwhile), and the attempts handed to the caller to send next."""

    retry_at: datetime | None
    next_claims: tuple[Claim, ...] = ()


def lease(settings: Settings) -> timedelta:
    """How long an attempt in flight keeps the sweeper away: longer than any send."""
    return timedelta(seconds=settings.delivery_timeout_seconds + 30)


class Bookkeeper:
    """One per worker process: claims and records, each batched across the jobs in flight."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        redis: ArqRedis | None = None,
        room: Callable[[int], int] = lambda finishing: 0,
    ) -> None:
        """`room(n)`: how many attempts the caller takes on when n of its attempts are
        being recorded (0: hand nothing off, e.g. while the worker stops)."""
        self._begin, self.close = transactions_for(engine)
        self._settings = settings
        self._redis = redis
        self.room = room
        self._claims = Coalescer(self._claim_batch)
        self._records = Coalescer(self._record_batch)

    async def claim(self, delivery_id: str) -> Claim | None:
        """The next attempt of this delivery, now owned by the caller; None when there is
        nothing to send (not pending, not due, claimed by another job, webhook off)."""
        return await self._claims.submit(delivery_id)

    async def record(self, claim: Claim, outcome: Outcome) -> Recorded:
        """Stores the outcome (and queues the retry, if there is one); hands the caller
        the next attempts of the webhook that fit its free slots and the caller's room."""
        return await self._records.submit((claim, outcome))

    async def _claim_batch(self, delivery_ids: Sequence[str]) -> list[Claim | None]:
        now = utcnow()
        woken: list[queue.Attempt] = []
        async with self._begin() as connection:
            await _lock_webhooks(connection, sorted(set(delivery_ids)))
            rows = await _lock_claimable(connection, sorted(set(delivery_ids)))
            due = [row for row in rows if _is_due(row, now)]
            claims = await self._claim_rows(connection, due, now, woken)
        await self._enqueue(woken)
        # A second job for the same delivery in one batch gets nothing: pop, not get.
        return [claims.pop(delivery_id, None) for delivery_id in delivery_ids]

    async def _claim_rows(
        self,
        connection: Connection,
        due: list[Row[Any]],
        now: datetime,
        woken: list[queue.Attempt],
        in_flight: dict[str, int] | None = None,
    ) -> dict[str, Claim | None]:
        if in_flight is None:
            in_flight = await _in_flight(connection, {row.webhook_id for row in due}, now)
        claims: dict[str, Claim | None] = {}
        for row in due:
            claims[row.id] = await _claim_row(connection, row, now, in_flight, woken)
        claimed = [claim for claim in claims.values() if claim is not None]
        if claimed:
            await _insert_attempts(connection, claimed, now, now + lease(self._settings))
        return claims

    async def _hand_off(
        self,
        connection: Connection,
        finished: Sequence[Claim],
        now: datetime,
        woken: list[queue.Attempt],
    ) -> list[Claim]:
        """Claims the next due deliveries of the webhooks whose attempts just finished, up
        to each webhook's free slots and the caller's room."""
        room = self.room(len(finished))
        if not finished or room <= 0:
            return []
        webhook_ids = sorted({claim.webhook_id for claim in finished})
        in_flight, free = await _slots(connection, webhook_ids, now)
        if not free:
            return []
        rows = await _lock_next_due(connection, free, now)
        due = [row for row in rows if _is_due(row, now)][:room]
        claims = await self._claim_rows(connection, due, now, woken, in_flight)
        return [claim for claim in claims.values() if claim is not None]

    async def _enqueue(self, attempts: list[queue.Attempt]) -> None:
        if attempts and self._redis is not None:
            await queue.enqueue(self._redis, attempts)

    async def _record_batch(self, items: Sequence[tuple[Claim, Outcome]]) -> list[Recorded]:
        now = utcnow()
        finished: list[DeliveryStatus] = []
        disabled: list[DisabledReason] = []
        woken: list[queue.Attempt] = []
        retries: list[queue.Attempt] = []
        async with self._begin() as connection:
            await _store_outcomes(connection, items)
            current = await _lock_pending(connection, [claim.delivery_id for claim, _ in items])
            changes: list[dict[str, Any]] = []
            retry_at: list[datetime | None] = []
            ended_in_order: list[Claim] = []
            for claim, outcome in items:
                if current.get(claim.delivery_id) != claim.number:
                    retry_at.append(None)  # cancelled or moved on meanwhile
                    continue
                transition = next_state(claim, outcome, now, self._settings)
                changes.append(_move_on(claim, outcome, transition, now))
                retry_at.append(transition.next_attempt_at)
                if transition.next_attempt_at is not None:
                    retries.append(
                        queue.Attempt(
                            claim.delivery_id, claim.number + 1, transition.next_attempt_at
                        )
                    )
                if transition.finished:
                    finished.append(transition.status)
                    if claim.ordering_key is not None:
                        ended_in_order.append(claim)
                if delivery_states.failed_test(claim, transition) and await lifecycle.switch_off(
                    connection, claim.webhook_id, DisabledReason.TEST_FAILED, now
                ):
                    disabled.append(DisabledReason.TEST_FAILED)
            if changes:
                await connection.execute(_MOVE_ON, changes)
            for claim in ended_in_order:
                woken += await _wake_next_in_order(connection, claim, now)
            turned_off = await _judge(connection, items, now, self._settings)
            disabled += turned_off.values()
            still_open = [claim for claim, _ in items if claim.webhook_id not in turned_off]
            handed_off = await self._hand_off(connection, still_open, now, woken)
        taken = {claim.delivery_id for claim in handed_off}
        await self._enqueue(
            retries + [attempt for attempt in woken if attempt.delivery_id not in taken]
        )
        for status in finished:
            DELIVERIES_FINISHED.labels(status.value).inc()
        for reason in disabled:
            WEBHOOKS_DISABLED.labels(reason.value).inc()
        return _share_out(items, retry_at, handed_off)


def _share_out(
    items: Sequence[tuple[Claim, Outcome]],
    retry_at: list[datetime | None],
    handed_off: list[Claim],
) -> list[Recorded]:
    """Each handed-off attempt goes to a caller that recorded an attempt of its webhook:
    one each first (a caller carries on with it), the rest to the first such caller."""
    by_webhook: dict[str, list[Claim]] = {}
    for claim in handed_off:
        by_webhook.setdefault(claim.webhook_id, []).append(claim)
    shares: list[list[Claim]] = []
    first_of: dict[str, int] = {}
    for index, (claim, _) in enumerate(items):
        waiting = by_webhook.get(claim.webhook_id)
        shares.append([waiting.pop(0)] if waiting else [])
        first_of.setdefault(claim.webhook_id, index)
    for webhook_id, rest in by_webhook.items():
        shares[first_of[webhook_id]] += rest
    return [
        Recorded(retry_at=when, next_claims=tuple(share))
        for when, share in zip(retry_at, shares, strict=True)
    ]


# --- claiming ----------------------------------------------------------------------------


async def _lock_webhooks(connection: Connection, delivery_ids: list[str]) -> None:
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


async def _slots(
    connection: Connection, webhook_ids: list[str], now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Attempts in flight per webhook, and the free slots of the open ones that have any
    (max_in_flight less those in flight), in one statement that also locks the webhooks
    (PostgreSQL, as `_lock_webhooks` does for a claim)."""
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


async def _lock_claimable(connection: Connection, delivery_ids: list[str]) -> list[Row[Any]]:
    return list(await connection.execute(_CLAIMABLE_BY_ID, {"ids": delivery_ids}))


async def _lock_next_due(
    connection: Connection, free: dict[str, int], now: datetime
) -> list[Row[Any]]:
    parameters: dict[str, Any] = {"now": now}
    for index, (webhook_id, slots) in enumerate(sorted(free.items())):
        parameters[f"w{index}"] = webhook_id
        parameters[f"n{index}"] = slots
    return list(await connection.execute(_claimable_next_due(len(free)), parameters))


def _is_due(row: Row[Any], now: datetime) -> bool:
    if row.status != DeliveryStatus.PENDING:
        return False
    # Not due yet: its own deferred job, or the sweeper, will come.
    return row.next_attempt_at is None or row.next_attempt_at <= now + EARLY_TOLERANCE


async def _claim_row(
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
            woken += await _wake_next_in_order(connection, row, now)
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


async def _in_flight(
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


async def _wake_next_in_order(
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


async def _insert_attempts(
    connection: Connection, claims: list[Claim], now: datetime, lease_until: datetime
) -> None:
    # The rows are locked (or the database is, on SQLite) since _lock_claimable, so the
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

_STORE_OUTCOME = (
    update(attempts)
    .where(
        attempts.c.delivery_id == bindparam("b_delivery_id"),
        attempts.c.number == bindparam("b_number"),
    )
    .values(
        duration_ms=bindparam("b_duration_ms"),
        status_code=bindparam("b_status_code"),
        error=bindparam("b_error"),
        response_body=bindparam("b_response_body"),
    )
)

_MOVE_ON = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        completed_at=bindparam("b_completed_at"),
        updated_at=bindparam("b_updated_at"),
        leased_until=None,
    )
)


async def _store_outcomes(connection: Connection, items: Sequence[tuple[Claim, Outcome]]) -> None:
    await connection.execute(
        _STORE_OUTCOME,
        [
            {
                "b_delivery_id": claim.delivery_id,
                "b_number": claim.number,
                "b_duration_ms": outcome.duration_ms,
                "b_status_code": outcome.status_code,
                "b_error": outcome.error,
                "b_response_body": outcome.response_body,
            }
            for claim, outcome in items
        ],
    )


async def _lock_pending(connection: Connection, delivery_ids: list[str]) -> dict[str, int]:
    """attempt_count of each delivery still pending, its row locked until the commit
    (in id order, so two batches cannot deadlock on each other)."""
    rows = await connection.execute(_LOCK_PENDING, {"ids": sorted(delivery_ids)})
    return {delivery_id: attempt_count for delivery_id, attempt_count in rows}


_LOCK_PENDING = (
    select(deliveries.c.id, deliveries.c.attempt_count)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .where(deliveries.c.status == DeliveryStatus.PENDING)
    .order_by(deliveries.c.id)
    .with_for_update()
)


def _move_on(
    claim: Claim, outcome: Outcome, transition: Transition, now: datetime
) -> dict[str, Any]:
    """_MOVE_ON's parameters for one recorded attempt."""
    return {
        "b_id": claim.delivery_id,
        "b_status": transition.status,
        "b_last_status_code": outcome.status_code,
        "b_last_error": outcome.error,
        "b_next_attempt_at": transition.next_attempt_at,
        "b_completed_at": transition.completed_at,
        "b_updated_at": now,
    }


async def _judge(
    connection: Connection,
    items: Sequence[tuple[Claim, Outcome]],
    now: datetime,
    settings: Settings,
) -> dict[str, DisabledReason]:
    """Keeps each webhook's failure streak and turns off those that are gone (410) or
    have failed every attempt for AUTO_DISABLE_AFTER_HOURS. Returns the ones turned off."""
    succeeded = {claim.webhook_id for claim, outcome in items if outcome.succeeded}
    gone = {claim.webhook_id for claim, outcome in items if delivery_states.gone(claim, outcome)}
    failed = {
        claim.webhook_id
        for claim, outcome in items
        if not outcome.succeeded and claim.kind == DeliveryKind.EVENT
    } - succeeded
    if succeeded:
        await connection.execute(
            update(webhooks)
            .where(webhooks.c.id.in_(sorted(succeeded)), webhooks.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
    verdicts = dict.fromkeys(gone, DisabledReason.GONE)
    if failed:
        await connection.execute(
            update(webhooks)
            .where(webhooks.c.id.in_(sorted(failed)), webhooks.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        threshold = now - timedelta(hours=settings.auto_disable_after_hours)
        failing = await connection.execute(
            select(webhooks.c.id).where(
                webhooks.c.id.in_(sorted(failed - gone)),
                webhooks.c.active.is_(True),
                webhooks.c.failing_since <= threshold,
            )
        )
        verdicts |= dict.fromkeys(failing.scalars(), DisabledReason.FAILING)
    turned_off: dict[str, DisabledReason] = {}
    for webhook_id, reason in sorted(verdicts.items()):
        if await lifecycle.switch_off(connection, webhook_id, reason, now):
            turned_off[webhook_id] = reason
    return turned_off
