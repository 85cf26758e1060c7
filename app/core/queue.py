"""The arq queue, and everything that knows arq's ways (the one module that does).

## Putting deliveries on it

Hands deliveries to the arq queue, after the transaction that created them commits
(`app/core/unit_of_work.py`).

The database is the source of truth: a job only carries a delivery id. If
Redis cannot be reached the deliveries simply stay `pending` in the database,
where the worker's sweeper finds them.

Jobs are written exactly as arq's `enqueue_job` writes them (the same keys, the same
serialized job, the same rule that a job id already queued or kept is left alone),
but any number of them in one atomic script: one round trip for a request's
deliveries, a batch of requests, or a sweep.

## Taking them off

arq's Worker, with the queue's delivery jobs taken in bulk and handed to the dispatcher.

A delivery job carries nothing but its delivery id (its job id, `job_id` below), and the
database decides what is sent. So the worker does not run delivery jobs one by one through
arq (four Redis round trips and a task each, to start, run and finish a job): each poll
takes as many due delivery jobs as the dispatcher has room for, in one atomic script
(`TAKE_DELIVERIES` removes them from the queue), and the dispatcher claims and sends them.
A worker that dies after taking jobs loses nothing: the deliveries are still due in the
database, and the sweeper queues them again.

Other jobs (the sweeper and the retention cron) run through arq as usual, started with
one Redis call per poll (`START_JOBS`) instead of four per job.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from signal import Signals
from typing import Any, Protocol

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    default_queue_name,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms
from arq.worker import Worker, func
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.ids import ID_PATTERN

logger = logging.getLogger(__name__)

# The Redis client the queue is reached with (arq's, which also enqueues arq's own jobs).
Client = ArqRedis

DELIVER_JOB = "deliver"
# The sorted set of due jobs (what the queue-depth gauge counts).
QUEUE_NAME = default_queue_name
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


# KEYS[1] the queue; ARGV: now (ms), the job key prefix, how many may be taken, then the
# job ids. Removes each due one from the queue with its job, up to the limit; returns
# their ids. A job another worker took meanwhile is no longer in the queue: ZREM says so.
TAKE_DELIVERIES = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local taken = {}
for i = 4, #ARGV do
    if #taken >= limit then
        break
    end
    local job_id = ARGV[i]
    local score = redis.call('ZSCORE', KEYS[1], job_id)
    if score and tonumber(score) <= now then
        redis.call('ZREM', KEYS[1], job_id)
        redis.call('DEL', ARGV[2] .. job_id)
        taken[#taken + 1] = job_id
    end
end
return taken
"""

# KEYS[1] the queue; ARGV: now (ms), in-progress timeout (ms), the in-progress key
# prefix, how many jobs may start, then the job ids. Returns job id, score, job id,
# score, … of the jobs that are now in progress here: neither running (a running job
# stays in the queue until it ends) nor re-scheduled for later.
START_JOBS = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[4])
local started = {}
for i = 5, #ARGV do
    if #started >= 2 * limit then
        break
    end
    local job_id = ARGV[i]
    local in_progress = ARGV[3] .. job_id
    if redis.call('EXISTS', in_progress) == 0 then
        local score = redis.call('ZSCORE', KEYS[1], job_id)
        if score and tonumber(score) <= now then
            redis.call('PSETEX', in_progress, ARGV[2], '1')
            started[#started + 1] = job_id
            started[#started + 1] = score
        end
    end
end
return started
"""


def is_delivery_job(job_id: str) -> bool:
    """`dlv_…` (a first attempt) or `dlv_…:N` (attempt N): see `job_id`."""
    return job_id.startswith("dlv_") and ID_PATTERN.fullmatch(job_id.split(":", 1)[0]) is not None


class Taker(Protocol):
    """What takes delivery jobs off the queue: the worker's dispatcher
    (`workers/dispatcher.py`)."""

    spawn: Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]

    @property
    def room(self) -> int: ...

    def start(self, delivery_ids: Iterable[str]) -> None: ...

    def close(self) -> None: ...


class DeliveryWorker(Worker):
    """Delivery jobs go to `ctx["dispatcher"]` (a `Taker`), which the worker's
    on_startup makes; without one they stay queued."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        make_resources = self.on_startup

        async def on_startup(ctx: dict[str, Any]) -> None:
            if make_resources is not None:
                await make_resources(ctx)
            if self.dispatcher is not None:
                self.dispatcher.spawn = self.spawn

        self.on_startup = on_startup

    @property
    def dispatcher(self) -> Taker | None:
        dispatcher: Taker | None = self.ctx.get("dispatcher")
        return dispatcher

    @property
    def room(self) -> int:
        return 0 if self.dispatcher is None else self.dispatcher.room

    async def _poll_iteration(self) -> None:
        # Read no more due jobs than can be started: a full worker reads a few, not a
        # thousand ids every poll. arq's own jobs stay in the queue while they run, so
        # it reads past as many as may be running.
        self.queue_read_limit = self.room + self.max_jobs
        await super()._poll_iteration()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        deliveries: list[str] = []
        others: list[bytes] = []
        for raw in job_ids:
            job_id = raw.decode()
            if is_delivery_job(job_id):
                deliveries.append(job_id)
            else:
                others.append(raw)
        await self._take_deliveries(deliveries)
        await self._start_other_jobs(others)

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()  # no attempt handed on; those in flight finish
        super().handle_sig_wait_for_completion(signum)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> "asyncio.Task[None]":
        """A task of the dispatcher's, kept with arq's jobs: stopping the worker waits
        for it like for a job, and cancels it in the end."""
        task = self.loop.create_task(coroutine)
        self.tasks[f"attempt:{id(task)}"] = task
        return task

    async def _take_deliveries(self, job_ids: list[str]) -> None:
        dispatcher, room = self.dispatcher, self.room
        if dispatcher is None or not job_ids or room <= 0:
            return
        take = self.pool.register_script(TAKE_DELIVERIES)
        taken = await take(
            keys=[self.queue_name], args=[timestamp_ms(), job_key_prefix, room, *job_ids]
        )
        dispatcher.start(job_id.decode().split(":", 1)[0] for job_id in taken)

    async def _start_other_jobs(self, job_ids: list[bytes]) -> None:
        free = self.max_jobs - self.job_counter
        if free <= 0 or not job_ids:
            return
        start = self.pool.register_script(START_JOBS)  # EVALSHA, loading it if needed
        started = await start(
            keys=[self.queue_name],
            args=[
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                in_progress_key_prefix,
                free,
                *job_ids,
            ],
        )
        for job_id, score in zip(started[::2], started[1::2], strict=True):
            await self.sem.acquire()  # never waits: job_counter < max_jobs < the bound
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id.decode(), int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id.decode()] = task


JobFunction = Callable[..., Coroutine[Any, Any, Any]]
Hook = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


def redis_settings(redis_url: str) -> RedisSettings:
    """Every command retries through a Redis restart (about half a minute) instead of
    killing the worker; the sweeper then rebuilds whatever the restart lost."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_retries = 30
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    # OSError too: a refused connection reaches the retry as ConnectionRefusedError.
    settings.retry = Retry(
        ExponentialBackoff(cap=2.0, base=0.1),
        retries=30,
        supported_errors=(RedisConnectionError, RedisTimeoutError, OSError),  # type: ignore[arg-type]
    )
    return settings


def worker_options(
    *,
    redis_url: str,
    deliver: JobFunction,
    sweep: JobFunction,
    sweep_seconds: set[int],
    purge: JobFunction,
    on_startup: Hook,
    on_shutdown: Hook,
    ctx: dict[str, Any],
    max_jobs: int,
    job_timeout_seconds: float,
    completion_wait_seconds: int,
) -> dict[str, Any]:
    """Keyword arguments for `DeliveryWorker`: the deliver job (what a job of a delivery
    would run, were it not taken in bulk), the sweeper every few seconds and the
    retention purge nightly, each cron run by one worker at a time."""
    return {
        "functions": [func(deliver, name=DELIVER_JOB, max_tries=1000)],
        "cron_jobs": [
            cron(sweep, second=sweep_seconds, run_at_startup=True, unique=True),
            cron(purge, hour=3, minute=17, second=0, unique=True),
        ],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(redis_url),
        "ctx": ctx,
        "max_jobs": max_jobs,
        "job_timeout": job_timeout_seconds,
        "keep_result": 0,
        "job_completion_wait": completion_wait_seconds,
        "poll_delay": 0.01,
    }
