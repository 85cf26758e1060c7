"""Daily clean-up: attempts and finished events older than STOREHOOKS_RETENTION_DAYS.

Deletes go in small batches, each its own short transaction, so the tables are never
locked for long. An event is finished when none of its deliveries is pending; deleting
it takes its deliveries and their attempts with it (foreign keys cascade).
"""

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Delete, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import session_scope, utcnow
from app.core.enums import DeliveryStatus
from app.core.models import Delivery, DeliveryAttempt, Event
from workers import resources

logger = logging.getLogger(__name__)

BATCH = 1000


async def purge(ctx: dict[str, Any]) -> dict[str, int]:
    settings, sessionmaker = resources.of(ctx).settings, resources.of(ctx).sessionmaker
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    finished = Delivery.status != DeliveryStatus.PENDING
    old_attempts = select(DeliveryAttempt.id).where(
        DeliveryAttempt.started_at < cutoff,
        exists().where(Delivery.id == DeliveryAttempt.delivery_id, finished),
    )
    old_events = select(Event.id).where(
        Event.created_at < cutoff,
        ~exists().where(Delivery.event_id == Event.id, Delivery.status == DeliveryStatus.PENDING),
    )
    old_tests = select(Delivery.id).where(
        Delivery.event_id.is_(None), Delivery.created_at < cutoff, finished
    )
    removed = {
        "attempts": await _in_batches(sessionmaker, DeliveryAttempt, old_attempts),
        "events": await _in_batches(sessionmaker, Event, old_events),
        "test_deliveries": await _in_batches(sessionmaker, Delivery, old_tests),
    }
    logger.info("retention purge", extra={"removed": removed, "cutoff": cutoff.isoformat()})
    return removed


async def _in_batches(sessionmaker: async_sessionmaker[AsyncSession], table: Any, ids: Any) -> int:
    total = 0
    while True:
        async with session_scope(sessionmaker) as session:
            batch = (await session.scalars(ids.limit(BATCH))).all()
            if batch:
                statement: Delete = delete(table).where(table.id.in_(batch))
                await session.execute(statement)
        total += len(batch)
        if len(batch) < BATCH:
            return total
