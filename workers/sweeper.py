"""The sweeper: rebuilds the queue from the database.

Every pending delivery that is due gets its attempt's job enqueued again, unless its
webhook has attempts in flight: the record of each of those hands the webhook's next due
deliveries straight on (`workers/bookkeeping.py`), so a job would only be turned away. An
enqueue whose job id is already queued is ignored, so this is safe to run as often as we
like; it is what picks deliveries up after Redis lost its data, after the enqueue that
follows POST /events failed, or after a worker died in the middle of an attempt (once
that attempt's lease ran out).
"""

import logging
from functools import partial
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import aliased

from app.core import queue
from app.core.db import session_scope, utcnow
from app.core.enums import DeliveryStatus
from app.core.models import Delivery
from app.core.unit_of_work import unit_of_work
from workers import resources

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000


def due_deliveries() -> Select[str, int]:
    now = utcnow()
    in_flight = aliased(Delivery)
    return (
        select(Delivery.id, Delivery.attempt_count)
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
        .where(
            ~exists().where(
                in_flight.webhook_id == Delivery.webhook_id,
                in_flight.leased_until > now,
                in_flight.status == DeliveryStatus.PENDING,
            )
        )
        .order_by(Delivery.next_attempt_at)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)  # rows being claimed right now
    )


async def sweep(ctx: dict[str, Any]) -> int:
    """Re-enqueues due pending deliveries; returns how many jobs were (re)queued."""
    begin = partial(session_scope, resources.of(ctx).sessionmaker)
    async with unit_of_work(begin, ctx["redis"]) as work:
        due = (await work.transaction.execute(due_deliveries())).all()
        work.enqueue_after_commit(*(queue.Attempt(id_, count + 1) for id_, count in due))
    queued = work.queued or 0
    if queued:
        logger.info("sweeper re-enqueued %d due deliveries", queued)
    return queued
