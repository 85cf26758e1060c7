"""The record side of the bookkeeping (`workers/bookkeeping.py`): an attempt's outcome
stored, its delivery moved on, and each webhook's failure streak judged and announced
(docs/api.md#operations-webhooks)."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    select,
    update,
)

from app.core import delivery_states, lifecycle
from app.core.announcements import Announcer
from app.core.db import Connection
from app.core.delivery_states import Claim, Outcome, Transition
from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
    NoticeKind,
)
from app.core.settings import Settings
from app.core.tables import attempts, deliveries, webhooks

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
        error_class=bindparam("b_error_class"),
        response_body=bindparam("b_response_body"),
    )
)

MOVE_ON = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        last_error_class=bindparam("b_last_error_class"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        completed_at=bindparam("b_completed_at"),
        updated_at=bindparam("b_updated_at"),
        leased_until=None,
    )
)


async def store_outcomes(connection: Connection, items: Sequence[tuple[Claim, Outcome]]) -> None:
    await connection.execute(
        _STORE_OUTCOME,
        [
            {
                "b_delivery_id": claim.delivery_id,
                "b_number": claim.number,
                "b_duration_ms": outcome.duration_ms,
                "b_status_code": outcome.status_code,
                "b_error": outcome.error,
                "b_error_class": outcome.error_class,
                "b_response_body": outcome.response_body,
            }
            for claim, outcome in items
        ],
    )


async def lock_pending(connection: Connection, delivery_ids: list[str]) -> dict[str, int]:
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


def move_on(
    claim: Claim, outcome: Outcome, transition: Transition, now: datetime
) -> dict[str, Any]:
    """MOVE_ON's parameters for one recorded attempt."""
    return {
        "b_id": claim.delivery_id,
        "b_status": transition.status,
        "b_last_status_code": outcome.status_code,
        "b_last_error": outcome.error,
        "b_last_error_class": outcome.error_class,
        "b_next_attempt_at": transition.next_attempt_at,
        "b_completed_at": transition.completed_at,
        "b_updated_at": now,
    }


# The shares of STOREHOOKS_AUTO_DISABLE_AFTER_HOURS at which a failing webhook is announced
# (webhook.failing), each once per streak; at 100 % it is turned off.
FAILING_PERCENTS = (50, 75, 90)


async def judge(
    connection: Connection,
    items: Sequence[tuple[Claim, Outcome]],
    now: datetime,
    settings: Settings,
    announcer: Announcer,
) -> dict[str, DisabledReason]:
    """Keeps each webhook's failure streak: announces it failing at 50, 75 and 90 % of
    AUTO_DISABLE_AFTER_HOURS and recovered at its first success after that, and turns off
    those that are gone (410) or have failed every attempt for the whole time. Returns
    the ones turned off."""
    succeeded = {claim.webhook_id: claim for claim, outcome in items if outcome.succeeded}
    gone = {claim.webhook_id for claim, outcome in items if delivery_states.gone(claim, outcome)}
    last_failure = {
        claim.webhook_id: outcome
        for claim, outcome in items
        if not outcome.succeeded and claim.kind != DeliveryKind.TEST
    }
    failed = set(last_failure) - set(succeeded)
    if succeeded:
        await _end_streaks(connection, succeeded, announcer)
    verdicts = dict.fromkeys(gone, DisabledReason.GONE)
    if failed:
        await connection.execute(
            update(webhooks)
            .where(webhooks.c.id.in_(sorted(failed)), webhooks.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        failing = await _judge_streaks(
            connection, failed - gone, last_failure, now, settings, announcer
        )
        verdicts |= dict.fromkeys(failing, DisabledReason.FAILING)
    turned_off: dict[str, DisabledReason] = {}
    for webhook_id, reason in sorted(verdicts.items()):
        if await lifecycle.switch_off(connection, webhook_id, reason, now, announcer):
            turned_off[webhook_id] = reason
    return turned_off


async def _end_streaks(
    connection: Connection, succeeded: dict[str, Claim], announcer: Announcer
) -> None:
    """A success clears the failure clock; where a failing notice had gone out, the
    webhook is announced recovered. The conditional update decides it, so two workers
    recording successes at once announce it once."""
    recovered = await connection.execute(
        update(webhooks)
        .where(webhooks.c.id.in_(sorted(succeeded)), webhooks.c.failing_notified_percent > 0)
        .values(failing_since=None, failing_notified_percent=0)
        .returning(webhooks.c.id)
    )
    for webhook_id in sorted(recovered.scalars()):
        await announcer.announce(
            NoticeKind.RECOVERED, webhook_id, delivery_id=succeeded[webhook_id].delivery_id
        )
    await connection.execute(
        update(webhooks)
        .where(webhooks.c.id.in_(sorted(succeeded)), webhooks.c.failing_since.is_not(None))
        .values(failing_since=None)
    )


async def _judge_streaks(
    connection: Connection,
    failed: set[str],
    last_failure: dict[str, Outcome],
    now: datetime,
    settings: Settings,
    announcer: Announcer,
) -> list[str]:
    """The active webhooks among `failed` that have failed for the whole time (to turn
    off); those past a further share of it are announced failing, the highest share
    crossed only (a worker that was away does not send three at once)."""
    limit = timedelta(hours=settings.auto_disable_after_hours)
    rows = await connection.execute(
        select(webhooks.c.id, webhooks.c.failing_since, webhooks.c.failing_notified_percent)
        .where(
            webhooks.c.id.in_(sorted(failed)),
            webhooks.c.active.is_(True),
            webhooks.c.failing_since.is_not(None),
        )
        .order_by(webhooks.c.id)
    )
    to_turn_off: list[str] = []
    for webhook_id, failing_since, notified in rows.all():
        share = (now - failing_since) / limit
        if share >= 1:
            to_turn_off.append(webhook_id)
            continue
        crossed = [percent for percent in FAILING_PERCENTS if share * 100 >= percent]
        if not crossed or crossed[-1] <= notified:
            continue
        told = await connection.execute(
            update(webhooks)
            .where(
                webhooks.c.id == webhook_id,
                webhooks.c.failing_notified_percent < crossed[-1],
            )
            .values(failing_notified_percent=crossed[-1])
        )
        if told.rowcount == 1:
            await announcer.announce(
                NoticeKind.FAILING,
                webhook_id,
                percent=crossed[-1],
                error_class=last_failure[webhook_id].error_class,
            )
    return to_turn_off
