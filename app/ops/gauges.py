"""The queue gauges, read from Redis and the database when /metrics is scraped."""

import asyncio
import logging

from sqlalchemy import func, select

from app.core import queue
from app.core.db import session_scope, utcnow
from app.core.enums import DeliveryStatus
from app.core.metrics import DUE_DELIVERIES, OLDEST_DUE_AGE, QUEUE_DEPTH
from app.core.models import Delivery
from app.resources import Resources

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


async def refresh(state: Resources) -> None:
    """Updates the gauges; one that cannot be read keeps its last value."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            QUEUE_DEPTH.set(await state.redis.zcard(queue.QUEUE_NAME))
    except Exception as exc:  # a scrape must not fail because Redis is away
        logger.warning("queue depth unavailable: %s", exc)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await _refresh_due(state)
    except Exception as exc:
        logger.warning("due deliveries unavailable: %s", exc)


async def _refresh_due(state: Resources) -> None:
    now = utcnow()
    due = (Delivery.status == DeliveryStatus.PENDING) & (Delivery.next_attempt_at <= now)
    async with session_scope(state.sessionmaker) as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(Delivery.next_attempt_at)).where(due)
            )
        ).one()
    DUE_DELIVERIES.set(count)
    OLDEST_DUE_AGE.set((now - oldest).total_seconds() if oldest is not None else 0)
