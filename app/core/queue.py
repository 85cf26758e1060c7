"""Hands deliveries to the arq queue, after the transaction that created them commits.

The database is the source of truth: a job only carries a delivery id. If
Redis cannot be reached the deliveries simply stay `pending` in the database,
where the worker's sweeper finds them.

Jobs are written exactly as arq's `enqueue_job` writes them (the same keys, the same
serialized job, the same rule that a job id already queued or kept is left alone),
but any number of them in one atomic script: one round trip for a request's
deliveries, a batch of requests, or a sweep.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

DELIVER_JOB = "deliver"
_PENDING_KEY = "storehooks.enqueue_after_commit"
# Workers take due jobs lowest score first, and a job's score is when it is due. First
# attempts are scored a day early, so that a backlog of due retries (a dead endpoint's)
# never stands between a new event and its first attempt (fair sharing,
# docs/api.md#delivery-policies).
FIRST_ATTEMPT_LEAD_MS = 24 * 60 * 60 * 1000

# KEYS[1] the queue; ARGV: job key prefix, result key prefix, then per job its id, score,
# expiry (ms) and serialized job. Returns how many jobs were added.
_ENQUEUE = """
local added = 0
for i = 3, #ARGV, 4 do
    local job_id = ARGV[i]
    local job_key = ARGV[1] .. job_id
    if redis.call('EXISTS', job_key, ARGV[2] .. job_id) == 0 then
        redis.call('PSETEX', job_key, ARGV[i + 2], ARGV[i + 3])
        redis.call('ZADD', KEYS[1], ARGV[i + 1], job_id)
        added = added + 1
    end
end
return added
"""


@dataclass(frozen=True)
class Attempt:
    """One attempt to queue: the delivery, its attempt number, and when it is due."""

    delivery_id: str
    number: int = 1
    due: datetime | None = None


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
    """One job per attempt: a duplicate enqueue of the same attempt is a no-op."""
    return delivery_id if attempt_number == 1 else f"{delivery_id}:{attempt_number}"


def enqueue_after_commit(session: AsyncSession, delivery_id: str, attempt_number: int = 1) -> None:
    session.info.setdefault(_PENDING_KEY, []).append(Attempt(delivery_id, attempt_number))


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING_KEY, None)


async def flush_pending(session: AsyncSession, redis: ArqRedis) -> None:
    """Enqueues what the committed transaction collected; never raises."""
    await enqueue(redis, session.info.pop(_PENDING_KEY, []))


async def enqueue(redis: ArqRedis, attempts: Sequence[Attempt]) -> int | None:
    """Queues the attempts in one round trip; the number added (those already queued are
    left alone), or None when Redis could not be reached (the sweeper will)."""
    if not attempts:
        return 0
    try:
        added: int = await redis.register_script(_ENQUEUE)(
            keys=[default_queue_name],
            args=[job_key_prefix, result_key_prefix, *_job_arguments(attempts)],
        )
    except (RedisError, OSError) as exc:
        logger.warning(
            "queue unavailable: %d deliveries left pending for the sweeper",
            len(attempts),
            extra={"error": str(exc)},
        )
        return None
    return added


def _job_arguments(attempts: Iterable[Attempt]) -> Iterable[str | int | bytes]:
    now = timestamp_ms()
    for attempt in attempts:
        score = now if attempt.due is None else to_unix_ms(attempt.due)
        if attempt.number == 1 and attempt.due is None:
            score -= FIRST_ATTEMPT_LEAD_MS
        yield job_id(attempt.delivery_id, attempt.number)
        yield score
        yield max(score - now, 0) + expires_extra_ms  # as arq: a day after it is due
        yield serialize_job(DELIVER_JOB, (attempt.delivery_id,), {}, None, now)
