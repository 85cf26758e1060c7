"""The installed arq reads and writes its queue as `app/core/queue.py`'s scripts do.

The scripts write arq's job keys and queue themselves, take delivery jobs out of the
queue and mark arq's own jobs in progress, all without arq's code; an arq release that
moved a key or changed its job format would leave them silently wrong. Each test here
puts a job in with one side and reads it with the other, so such a release fails here,
naming what moved.
"""

from collections.abc import AsyncIterator

import arq
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import (
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import Job, JobStatus
from arq.utils import timestamp_ms

from app.core import queue

DELIVERY_ID = "dlv_01jz0000000000000000000000"


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    arq_pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield arq_pool
    await arq_pool.aclose()


def test_arq_names_its_keys_as_the_scripts_and_docs_expect() -> None:
    layout = {
        "queue": default_queue_name,
        "job key prefix": job_key_prefix,
        "in-progress key prefix": in_progress_key_prefix,
        "result key prefix": result_key_prefix,
    }
    expected = {
        "queue": "arq:queue",
        "job key prefix": "arq:job:",
        "in-progress key prefix": "arq:in-progress:",
        "result key prefix": "arq:result:",
    }
    assert layout == expected, f"arq {arq.VERSION} changed its key layout"


async def test_a_job_the_queue_writes_is_one_arq_reads_as_queued(pool: ArqRedis) -> None:
    assert await queue.enqueue(pool, [queue.Attempt(DELIVERY_ID)]) == 1

    [queued] = await pool.queued_jobs()
    assert (queued.job_id, queued.function, queued.args, queued.kwargs) == (
        DELIVERY_ID,
        queue.DELIVER_JOB,
        (DELIVERY_ID,),
        {},
    ), f"arq {arq.VERSION} reads the queue's job differently"
    assert await Job(DELIVERY_ID, pool).status() == JobStatus.queued


async def test_a_job_arq_already_holds_is_left_alone_by_the_queue(pool: ArqRedis) -> None:
    job = await pool.enqueue_job(queue.DELIVER_JOB, DELIVERY_ID, _job_id=DELIVERY_ID)
    assert job is not None
    before = await pool.get(job_key_prefix + DELIVERY_ID)

    assert await queue.enqueue(pool, [queue.Attempt(DELIVERY_ID)]) == 0

    assert await pool.get(job_key_prefix + DELIVERY_ID) == before
    assert await pool.zcard(default_queue_name) == 1


async def test_a_delivery_job_arq_wrote_is_taken_whole_by_the_worker_script(
    pool: ArqRedis,
) -> None:
    await pool.enqueue_job(queue.DELIVER_JOB, DELIVERY_ID, _job_id=DELIVERY_ID)
    take = pool.register_script(queue.TAKE_DELIVERIES)

    taken = await take(
        keys=[default_queue_name],
        args=[timestamp_ms(), job_key_prefix, 10, DELIVERY_ID],
    )

    assert [job_id.decode() for job_id in taken] == [DELIVERY_ID]
    assert await pool.queued_jobs() == []
    assert await pool.exists(job_key_prefix + DELIVERY_ID) == 0
    assert await Job(DELIVERY_ID, pool).status() == JobStatus.not_found


async def test_a_job_the_worker_script_starts_is_one_arq_reads_as_in_progress(
    pool: ArqRedis,
) -> None:
    await pool.enqueue_job("sweep", _job_id="cron:sweep:1")
    start = pool.register_script(queue.START_JOBS)

    started = await start(
        keys=[default_queue_name],
        args=[timestamp_ms(), 60_000, in_progress_key_prefix, 1, "cron:sweep:1"],
    )

    assert [item.decode() for item in started[::2]] == ["cron:sweep:1"]
    assert await Job("cron:sweep:1", pool).status() == JobStatus.in_progress
