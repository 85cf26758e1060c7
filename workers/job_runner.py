"""arq's Worker, starting each poll's jobs with one Redis call instead of four per job.

arq marks a job as in progress with WATCH, EXISTS, ZSCORE and MULTI/EXEC, one job
after another: at a few hundred jobs a second those round trips are the worker's
largest cost after the send itself. `START_JOBS` does the same checks for every job
of a poll in one atomic script. Everything else (running, retrying, finishing a job)
is arq's own code.
"""

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

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


class DeliveryWorker(Worker):
    async def start_jobs(self, job_ids: list[bytes]) -> None:
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
