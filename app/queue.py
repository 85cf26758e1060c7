"""Hands new deliveries to the arq queue, after the transaction that created them commits.

The database is the source of truth: a job only carries a delivery id. If
Redis cannot be reached the deliveries simply stay `pending` in the database,
where the worker's sweeper finds them.
"""

import logging
from datetime import datetime

from arq.connections import ArqRedis, RedisSettings
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

DELIVER_JOB = "deliver"
_PENDING_KEY = "storehooks.enqueue_after_commit"


def connect(redis_url: str) -> ArqRedis:
    """A lazily connecting arq client that gives up quickly when Redis is away."""
    settings = RedisSettings.from_dsn(redis_url)
    return ArqRedis(
        host=settings.host,
        port=settings.port,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_connect_timeout=2,
        socket_timeout=2,
    )


def job_id(delivery_id: str, attempt_number: int) -> str:
    """One job per attempt: a duplicate enqueue of the same attempt is a no-op in arq."""
    return delivery_id if attempt_number == 1 else f"{delivery_id}:{attempt_number}"


def enqueue_after_commit(session: AsyncSession, delivery_id: str, attempt_number: int = 1) -> None:
    session.info.setdefault(_PENDING_KEY, []).append((delivery_id, attempt_number))


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING_KEY, None)


async def flush_pending(session: AsyncSession, redis: ArqRedis) -> None:
    """Enqueues what the committed transaction collected; never raises."""
    pending: list[tuple[str, int]] = session.info.pop(_PENDING_KEY, [])
    for delivery_id, attempt_number in pending:
        if not await enqueue(redis, delivery_id, attempt_number):
            logger.warning(
                "queue unavailable: %d deliveries left pending for the sweeper", len(pending)
            )
            return


async def enqueue(
    redis: ArqRedis, delivery_id: str, attempt_number: int, defer_until: datetime | None = None
) -> bool:
    """Queues one attempt; False when Redis could not be reached (the sweeper will)."""
    try:
        await redis.enqueue_job(
            DELIVER_JOB,
            delivery_id,
            _job_id=job_id(delivery_id, attempt_number),
            _defer_until=defer_until,
        )
    except (RedisError, OSError) as exc:
        logger.debug("enqueue of %s failed: %s", delivery_id, exc)
        return False
    return True
