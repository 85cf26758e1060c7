"""arq's Worker, with the queue's delivery jobs taken in bulk and handed to the dispatcher.

A delivery job carries nothing but its delivery id (its job id, `app/core/queue.py`), and the
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
from collections.abc import Coroutine
from signal import Signals
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from app.core.ids import ID_PATTERN
from workers.dispatcher import Dispatcher

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
    """`dlv_…` (a first attempt) or `dlv_…:N` (attempt N): see `app.core.queue.job_id`."""
    return job_id.startswith("dlv_") and ID_PATTERN.fullmatch(job_id.split(":", 1)[0]) is not None


class DeliveryWorker(Worker):
    """Delivery jobs go to `ctx["dispatcher"]`, which `workers.settings.on_startup` makes;
    without one they stay queued."""

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
    def dispatcher(self) -> Dispatcher | None:
        dispatcher: Dispatcher | None = self.ctx.get("dispatcher")
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
