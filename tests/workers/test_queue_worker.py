"""The worker's job start (`app/core/queue.py`): the START_JOBS script on the real Redis,
rule by rule, and a DeliveryWorker running real arq jobs on it."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name, in_progress_key_prefix, job_key_prefix
from arq.worker import func

from app.core.ids import new_id
from app.core.queue import START_JOBS, TAKE_DELIVERIES, DeliveryWorker, is_delivery_job

QUEUE = default_queue_name  # "arq:queue"
TIMEOUT_MS = 40_000


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the test Redis (flushed by `redis_url`)."""
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    arq_pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield arq_pool
    await arq_pool.aclose()


def now_ms() -> int:
    return int(time.time() * 1000)


async def start(
    client: aioredis.Redis,
    *job_ids: str,
    now: int,
    timeout_ms: int = TIMEOUT_MS,
    limit: int = 100,
) -> list[tuple[str, int]]:
    """Runs START_JOBS once; the (job id, score) pairs it started."""
    script = client.register_script(START_JOBS)
    args: list[str | int] = [now, timeout_ms, in_progress_key_prefix, limit, *job_ids]
    reply = await script(keys=[QUEUE], args=args)
    assert isinstance(reply, list)
    assert len(reply) % 2 == 0, reply
    return [
        (job_id.decode(), int(float(score)))
        for job_id, score in zip(reply[::2], reply[1::2], strict=True)
    ]


async def in_progress(client: aioredis.Redis) -> set[str]:
    keys = await client.keys(f"{in_progress_key_prefix}*")
    return {key.decode().removeprefix(in_progress_key_prefix) for key in keys}


# --- the script, rule by rule ---------------------------------------------------------------


async def test_a_due_job_is_started_and_marked_in_progress_for_the_timeout(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-a": now - 500})

    started = await start(client, "job-a", now=now)

    assert started == [("job-a", now - 500)]
    assert await client.get(f"{in_progress_key_prefix}job-a") == b"1"
    ttl = await client.pttl(f"{in_progress_key_prefix}job-a")
    assert TIMEOUT_MS - 5_000 < ttl <= TIMEOUT_MS
    assert await client.zscore(QUEUE, "job-a") == now - 500  # still queued: arq removes it


async def test_a_job_due_exactly_now_is_started(client: aioredis.Redis) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-now": now})

    assert await start(client, "job-now", now=now) == [("job-now", now)]
    assert await in_progress(client) == {"job-now"}


async def test_a_job_already_in_progress_is_not_started_and_its_mark_is_left_alone(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-b": now - 500})
    await client.set(f"{in_progress_key_prefix}job-b", "elsewhere", px=90_000)

    started = await start(client, "job-b", now=now, timeout_ms=5_000)

    assert started == []
    assert await client.get(f"{in_progress_key_prefix}job-b") == b"elsewhere"
    assert await client.pttl(f"{in_progress_key_prefix}job-b") > 80_000


async def test_a_job_scheduled_for_later_is_not_started(client: aioredis.Redis) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-c": now + 10_000})  # re-scheduled by another worker

    started = await start(client, "job-c", now=now)

    assert started == []
    assert await in_progress(client) == set()
    assert await client.zscore(QUEUE, "job-c") == now + 10_000


async def test_a_job_one_millisecond_early_is_not_started(client: aioredis.Redis) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-soon": now + 1})

    assert await start(client, "job-soon", now=now) == []
    assert await in_progress(client) == set()


async def test_a_job_no_longer_in_the_queue_is_not_started(client: aioredis.Redis) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"other-job": now - 500})

    started = await start(client, "job-d", now=now)  # finished and removed meanwhile

    assert started == []
    assert await in_progress(client) == set()
    assert not await client.exists(f"{in_progress_key_prefix}job-d")


async def test_each_job_of_a_poll_is_judged_on_its_own_in_the_order_given(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    await client.zadd(
        QUEUE,
        {"due-1": now - 3_000, "running": now - 2_000, "later": now + 60_000, "due-2": now - 1_000},
    )
    await client.set(f"{in_progress_key_prefix}running", "1", px=90_000)

    started = await start(client, "due-2", "running", "later", "gone", "due-1", now=now)

    assert started == [("due-2", now - 1_000), ("due-1", now - 3_000)]
    assert await in_progress(client) == {"due-1", "due-2", "running"}
    for job_id in ("due-1", "due-2"):
        ttl = await client.pttl(f"{in_progress_key_prefix}{job_id}")
        assert TIMEOUT_MS - 5_000 < ttl <= TIMEOUT_MS
    assert await client.pttl(f"{in_progress_key_prefix}running") > 80_000


async def test_a_job_id_given_twice_in_one_poll_is_started_once(client: aioredis.Redis) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-e": now - 500})

    assert await start(client, "job-e", "job-e", now=now) == [("job-e", now - 500)]


async def test_a_second_poll_does_not_start_what_the_first_started(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    await client.zadd(QUEUE, {"job-f": now - 500, "job-g": now - 400})

    first = await start(client, "job-f", "job-g", now=now)
    second = await start(client, "job-g", "job-f", now=now)  # another worker's poll

    assert first == [("job-f", now - 500), ("job-g", now - 400)]
    assert second == []
    assert await in_progress(client) == {"job-f", "job-g"}


async def test_the_limit_counts_the_jobs_started_not_the_ids_examined(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    await client.zadd(
        QUEUE,
        {
            "running": now - 5_000,
            "later": now + 60_000,
            "due-1": now - 3_000,
            "due-2": now - 2_000,
            "due-3": now - 1_000,
        },
    )
    await client.set(f"{in_progress_key_prefix}running", "1", px=90_000)

    started = await start(
        client, "running", "later", "gone", "due-1", "due-2", "due-3", now=now, limit=2
    )

    assert started == [("due-1", now - 3_000), ("due-2", now - 2_000)]
    assert await in_progress(client) == {"running", "due-1", "due-2"}

    # The next poll, with one slot: the job left over.
    assert await start(client, "running", "due-1", "due-2", "due-3", now=now, limit=1) == [
        ("due-3", now - 1_000)
    ]


# --- TAKE_DELIVERIES ----------------------------------------------------------------------


async def take(client: aioredis.Redis, *job_ids: str, now: int, limit: int = 100) -> list[str]:
    script = client.register_script(TAKE_DELIVERIES)
    reply = await script(keys=[QUEUE], args=[now, job_key_prefix, limit, *job_ids])
    return [job_id.decode() for job_id in reply]


async def test_take_removes_due_delivery_jobs_from_the_queue_with_their_job_keys(
    client: aioredis.Redis,
) -> None:
    now = now_ms()
    for job_id, score in [("due-1", now - 2_000), ("due-2", now - 1_000), ("later", now + 60_000)]:
        await client.zadd(QUEUE, {job_id: score})
        await client.set(f"{job_key_prefix}{job_id}", b"job")

    assert await take(client, "due-1", "later", "due-2", "unknown", now=now) == ["due-1", "due-2"]

    assert await client.zrange(QUEUE, 0, -1) == [b"later"]
    assert await client.exists(f"{job_key_prefix}due-1", f"{job_key_prefix}due-2") == 0
    assert await client.exists(f"{job_key_prefix}later") == 1
    # Taken once: a second worker with the same ids gets nothing.
    assert await take(client, "due-1", "due-2", now=now) == []


async def test_take_stops_at_the_limit_and_leaves_the_rest_queued(client: aioredis.Redis) -> None:
    now = now_ms()
    ids = [f"due-{n}" for n in range(5)]
    await client.zadd(QUEUE, {job_id: now - 1_000 for job_id in ids})

    assert await take(client, *ids, now=now, limit=2) == ids[:2]
    assert sorted(await client.zrange(QUEUE, 0, -1)) == [job_id.encode() for job_id in ids[2:]]


def test_delivery_jobs_are_told_apart_from_arqs_own_by_their_id() -> None:
    delivery_id = new_id("dlv")
    assert is_delivery_job(delivery_id)
    assert is_delivery_job(f"{delivery_id}:7")
    assert not is_delivery_job("cron:sweep:1733400000000")
    assert not is_delivery_job("dlv_not-an-id")
    assert not is_delivery_job(new_id("evt"))


# --- DeliveryWorker.start_jobs --------------------------------------------------------------


class Calls:
    """What the test jobs did: the job ids they ran for, and a gate that can hold them."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()


async def note(ctx: dict[str, Any], label: str) -> str:
    calls: Calls = ctx["calls"]
    calls.ran.append(ctx["job_id"])
    await calls.gate.wait()
    return label


def delivery_worker(redis_url: str, calls: Calls, **options: Any) -> DeliveryWorker:
    return DeliveryWorker(
        functions=[func(note, name="note", max_tries=1)],
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx={"calls": calls},
        handle_signals=False,
        poll_delay=0.01,
        keep_result=0,
        **options,
    )


async def stop(running: DeliveryWorker, task: asyncio.Task[None] | None = None) -> None:
    """As the `worker` fixture stops its worker: polling first, then the jobs left."""
    if task is not None:
        task.cancel()
    jobs = list(running.tasks.values())
    for job in jobs:
        job.cancel()
    await asyncio.gather(*([task] if task else []), *jobs, return_exceptions=True)
    running.tasks.clear()
    await running.close()


@asynccontextmanager
async def running_worker(
    redis_url: str, calls: Calls, **options: Any
) -> AsyncIterator[DeliveryWorker]:
    worker = delivery_worker(redis_url, calls, **options)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        await stop(worker, task)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def start_jobs(worker: DeliveryWorker, *job_ids: str) -> None:
    """One poll's start, bounded: a start that waits for a slot would hang the test."""
    await asyncio.wait_for(worker.start_jobs([job_id.encode() for job_id in job_ids]), timeout=5)


async def wait_done(worker: DeliveryWorker, count: int, timeout: float = 5.0) -> None:
    await eventually(lambda: worker.jobs_complete >= count, timeout)


async def queue_drained(pool: ArqRedis, timeout: float = 5.0) -> int:
    """Waits for arq to remove the finished jobs from the queue; the jobs left."""
    deadline = time.monotonic() + timeout
    while True:
        left = int(await pool.zcard(QUEUE))
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.01)


async def test_start_jobs_starts_no_more_jobs_than_the_free_slots(
    redis_url: str, pool: ArqRedis, client: aioredis.Redis
) -> None:
    calls = Calls()
    calls.gate.clear()  # the jobs started hold their slot
    ids = [f"job-{n}" for n in range(5)]
    for job_id in ids:
        assert await pool.enqueue_job("note", job_id, _job_id=job_id) is not None
    worker = DeliveryWorker(
        functions=[func(note, name="note", max_tries=1)],
        redis_pool=pool,
        ctx={"calls": calls},
        handle_signals=False,
        keep_result=0,
        max_jobs=2,
    )
    try:
        await start_jobs(worker, *ids)

        assert sorted(worker.tasks) == ["job-0", "job-1"]
        assert worker.job_counter == 2
        assert await in_progress(client) == {"job-0", "job-1"}
        await eventually(lambda: len(calls.ran) == 2)
        assert sorted(calls.ran) == ["job-0", "job-1"]
        # The in-progress mark lasts arq's in-progress timeout (job timeout + 10 s).
        ttl = await client.pttl(f"{in_progress_key_prefix}job-0")
        expected_ms = int(worker.in_progress_timeout_s * 1000)
        assert expected_ms - 5_000 < ttl <= expected_ms

        await start_jobs(worker, *ids[2:])  # no slot left

        assert sorted(worker.tasks) == ["job-0", "job-1"]
        assert worker.job_counter == 2
        assert await in_progress(client) == {"job-0", "job-1"}

        calls.gate.set()
        await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), timeout=5)
        assert worker.job_counter == 0
        assert await in_progress(client) == set()  # arq's finish removes the marks

        await start_jobs(worker, *ids[2:])

        assert worker.job_counter == 2
        assert await in_progress(client) == {"job-2", "job-3"}
        await asyncio.wait_for(
            asyncio.gather(worker.tasks["job-2"], worker.tasks["job-3"]), timeout=5
        )
        assert sorted(calls.ran) == ["job-0", "job-1", "job-2", "job-3"]
        assert await pool.zrange(QUEUE, 0, -1) == [b"job-4"]
    finally:
        calls.gate.set()
        jobs = list(worker.tasks.values())
        await asyncio.gather(*jobs, return_exceptions=True)


async def test_start_jobs_gives_its_free_slots_to_the_jobs_it_can_start(
    redis_url: str, pool: ArqRedis, client: aioredis.Redis
) -> None:
    calls = Calls()
    calls.gate.clear()
    for job_id in ("theirs", "mine", "extra"):
        await pool.enqueue_job("note", job_id, _job_id=job_id)
    await client.set(f"{in_progress_key_prefix}theirs", "1", px=60_000)  # another worker's
    worker = DeliveryWorker(
        functions=[func(note, name="note", max_tries=1)],
        redis_pool=pool,
        ctx={"calls": calls},
        handle_signals=False,
        keep_result=0,
        max_jobs=1,
    )
    try:
        # One slot: the running job and the unknown one take none of it.
        await start_jobs(worker, "theirs", "unknown", "mine", "extra")

        assert list(worker.tasks) == ["mine"]
        assert worker.job_counter == 1
        assert await in_progress(client) == {"theirs", "mine"}
        await eventually(lambda: calls.ran == ["mine"])
    finally:
        calls.gate.set()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    assert worker.job_counter == 0
    assert calls.ran == ["mine"]


# --- a running DeliveryWorker ----------------------------------------------------------------


async def test_a_job_enqueued_twice_under_one_id_runs_once(redis_url: str, pool: ArqRedis) -> None:
    calls = Calls()
    first = await pool.enqueue_job("note", "first", _job_id="the-job")
    second = await pool.enqueue_job("note", "second", _job_id="the-job")
    assert first is not None
    assert second is None  # arq refuses a second job under a queued id

    async with running_worker(redis_url, calls) as worker:
        await wait_done(worker, 1)
        await asyncio.sleep(0.3)  # thirty more polls: nothing else may start

        assert calls.ran == ["the-job"]
        assert worker.jobs_complete == 1
        assert worker.jobs_failed == 0
        assert await queue_drained(pool) == 0


async def test_two_workers_on_one_queue_run_each_job_exactly_once(
    redis_url: str, pool: ArqRedis
) -> None:
    calls = Calls()
    calls.gate.clear()  # jobs stay running, and queued, while both workers poll
    ids = [f"job-{n:02}" for n in range(40)]
    for job_id in ids:
        assert await pool.enqueue_job("note", job_id, _job_id=job_id) is not None

    async with (
        running_worker(redis_url, calls, max_jobs=100) as one,
        running_worker(redis_url, calls, max_jobs=100) as other,
    ):
        await eventually(lambda: len(calls.ran) == len(ids))
        await asyncio.sleep(0.3)  # both workers keep polling the queue they still see
        assert len(calls.ran) == len(ids)
        assert await pool.zcard(QUEUE) == len(ids)

        calls.gate.set()
        await eventually(lambda: one.jobs_complete + other.jobs_complete == len(ids))

        assert sorted(calls.ran) == ids
        assert one.jobs_failed == other.jobs_failed == 0
        assert await queue_drained(pool) == 0


async def test_a_job_deferred_to_later_waits_for_its_time(redis_url: str, pool: ArqRedis) -> None:
    calls = Calls()
    await pool.enqueue_job("note", "later", _job_id="later", _defer_by=0.5)
    enqueued = time.monotonic()

    async with running_worker(redis_url, calls) as worker:
        await asyncio.sleep(0.2)
        assert calls.ran == []
        await wait_done(worker, 1)

    assert calls.ran == ["later"]
    assert time.monotonic() - enqueued >= 0.5


async def test_a_free_slot_takes_a_new_job_while_an_older_job_runs(
    redis_url: str, pool: ArqRedis
) -> None:
    calls = Calls()
    calls.gate.clear()
    await pool.enqueue_job("note", "slow", _job_id="slow")
    async with running_worker(redis_url, calls, max_jobs=2) as worker:
        await eventually(lambda: calls.ran == ["slow"])
        await pool.enqueue_job("note", "new-1", _job_id="new-1")
        await pool.enqueue_job("note", "new-2", _job_id="new-2")

        # One job runs, one slot is free. Each poll reads ["slow", "new-1", "new-2"] (a
        # running job stays queued until it ends): "slow" must not use up the free slot,
        # and the slot is for one job only.
        await eventually(lambda: calls.ran == ["slow", "new-1"], timeout=1.0)
        await asyncio.sleep(0.2)  # twenty more polls
        assert calls.ran == ["slow", "new-1"]
        assert worker.job_counter == 2

        calls.gate.set()
        await eventually(lambda: calls.ran == ["slow", "new-1", "new-2"])
        await wait_done(worker, 3)
