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
  that finishes the earlier one, by `wake_next_in_order` (`workers/claiming.py`);
- `max_in_flight`: a claim counts the webhook's leased deliveries; over the limit the
  delivery stays due;
- automatic disabling on 410 and on failure for AUTO_DISABLE_AFTER_HOURS (`judge`,
  `workers/recording.py`), and the operational events of a record (failing, recovered,
  disabled, a delivery exhausted, a test failed: `app/core/announcements.py`), in the
  record's transaction, their deliveries queued after its commit.

The hand-off keeps a webhook's slots full: the transaction that records finished
attempts also claims, for each of their webhooks, the next due deliveries up to its free
slots (oldest due first), and returns those claims to the worker, which sends them at
once. A freed slot never waits for Redis, a poll or another transaction. The queue is
how a webhook with nothing in flight gets going again; the sweeper picks up whatever
neither reaches (a worker that died, a lost enqueue).

Retries and woken deliveries are queued after the commit (`app/core/unit_of_work.py`),
one Redis call per batch; if that enqueue is lost they are due, and the sweeper queues
them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import delivery_states, lifecycle, queue
from app.core.announcements import Announcer
from app.core.coalescer import Coalescer
from app.core.db import Connection, utcnow
from app.core.delivery_states import Claim, Outcome, Transition, next_state
from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
    NoticeKind,
)
from app.core.metrics import DELIVERIES_FINISHED, WEBHOOKS_DISABLED
from app.core.settings import Settings
from app.core.tracing import Tracing
from app.core.unit_of_work import unit_of_work
from workers import claimable, claiming, recording
from workers.claimable import Claimable
from workers.transactions import transactions_for


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
        redis: queue.Client | None = None,
        room: Callable[[int], int] = lambda finishing: 0,
        tracing: Tracing | None = None,
    ) -> None:
        """`room(n)`: how many attempts the caller takes on when n of its attempts are
        being recorded (0: hand nothing off, e.g. while the worker stops); `tracing`: a
        span per statement of its transactions."""
        self._begin, self.close = transactions_for(engine, tracing)
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
        async with unit_of_work(self._begin, self._redis) as work:
            connection = work.transaction
            await claiming.lock_webhooks(connection, sorted(set(delivery_ids)))
            rows = await claimable.lock_claimable(connection, sorted(set(delivery_ids)))
            due = [row for row in rows if row.is_due(now)]
            claims = await self._claim_rows(connection, due, now, woken)
            work.enqueue_after_commit(*woken)
        # A second job for the same delivery in one batch gets nothing: pop, not get.
        return [claims.pop(delivery_id, None) for delivery_id in delivery_ids]

    async def _claim_rows(
        self,
        connection: Connection,
        due: list[Claimable],
        now: datetime,
        woken: list[queue.Attempt],
        in_flight: dict[str, int] | None = None,
    ) -> dict[str, Claim | None]:
        if in_flight is None:
            in_flight = await claiming.count_in_flight(
                connection, {row.webhook_id for row in due}, now
            )
        claims: dict[str, Claim | None] = {}
        for row in due:
            claims[row.id] = await claiming.claim_row(connection, row, now, in_flight, woken)
        claimed = [claim for claim in claims.values() if claim is not None]
        if claimed:
            await claiming.insert_attempts(connection, claimed, now, now + lease(self._settings))
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
        in_flight, free = await claiming.free_slots(connection, webhook_ids, now)
        if not free:
            return []
        rows = await claimable.lock_next_due(connection, free, now)
        due = [row for row in rows if row.is_due(now)][:room]
        claims = await self._claim_rows(connection, due, now, woken, in_flight)
        return [claim for claim in claims.values() if claim is not None]

    async def _record_batch(self, items: Sequence[tuple[Claim, Outcome]]) -> list[Recorded]:
        now = utcnow()
        finished: list[DeliveryStatus] = []
        disabled: list[DisabledReason] = []
        woken: list[queue.Attempt] = []
        retries: list[queue.Attempt] = []
        async with unit_of_work(self._begin, self._redis) as work:
            connection = work.transaction
            announcer = Announcer(connection, now, self._settings.max_attempts)
            await recording.store_outcomes(connection, items)
            current = await recording.lock_pending(
                connection, [claim.delivery_id for claim, _ in items]
            )
            changes: list[dict[str, Any]] = []
            retry_at: list[datetime | None] = []
            ended_in_order: list[Claim] = []
            for claim, outcome in items:
                if current.get(claim.delivery_id) != claim.number:
                    retry_at.append(None)  # cancelled or moved on meanwhile
                    continue
                transition = next_state(claim, outcome, now, self._settings)
                changes.append(recording.move_on(claim, outcome, transition, now))
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
                await _announce_ending(announcer, claim, outcome, transition)
            if changes:
                await connection.execute(recording.MOVE_ON, changes)
            for claim in ended_in_order:
                woken += await claiming.wake_next_in_order(connection, claim, now)
            turned_off = await recording.judge(connection, items, now, self._settings, announcer)
            disabled += turned_off.values()
            still_open = [claim for claim, _ in items if claim.webhook_id not in turned_off]
            handed_off = await self._hand_off(connection, still_open, now, woken)
            taken = {claim.delivery_id for claim in handed_off}
            work.enqueue_after_commit(
                *retries,
                *(attempt for attempt in woken if attempt.delivery_id not in taken),
                *announcer.attempts,
            )
        announcer.count()
        for status in finished:
            DELIVERIES_FINISHED.labels(status.value).inc()
        for reason in disabled:
            WEBHOOKS_DISABLED.labels(reason.value).inc()
        return _share_out(items, retry_at, handed_off)


async def _announce_ending(
    announcer: Announcer, claim: Claim, outcome: Outcome, transition: Transition
) -> None:
    """A failed test ping is `webhook.test_failed`; any other delivery that failed with
    its budget used (not a 410, which is `webhook.disabled`) is `delivery.exhausted`."""
    if transition.status is not DeliveryStatus.FAILED:
        return
    if claim.kind == DeliveryKind.TEST:
        kind = NoticeKind.TEST_FAILED
    elif delivery_states.gone(claim, outcome):
        return
    else:
        kind = NoticeKind.DELIVERY_EXHAUSTED
    await announcer.announce(
        kind, claim.webhook_id, delivery_id=claim.delivery_id, error_class=outcome.error_class
    )


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
