"""Stage 8, a flash sale at the defaults: one webhook created without `max_in_flight`
(so it takes the server's default, 10) on a receiver that answers in 1 ms
(POST /delay/1/flash), and N events posted as fast as 50 clients can (a closed loop)
*while* one worker runs: the API and the worker busy at the same time.

On a fresh database with an API and a worker of its own, after a short unmeasured
warm-up through the stage-2 webhook. Reported: events/s end to end, from the first POST
to the database having all N deliveries `succeeded` (polled every 50 ms); the rate at
which the API took them and the POSTs' p50/p99; how long the last deliveries trailed
the last POST's answer; the worker's CPU ms per delivery (from /proc, as in stage 2);
and the most requests the receiver had open at once, with the webhook's max_in_flight
as the API reports it (more is a violation: the stage fails).
"""

import time

import aiohttp

from bench.deployment import add_webhook, deploy, event_requests, post_events, webhook_of
from bench.fairness import WARM_UP_EVENTS, warm_up
from bench.probes import flush_redis, reset_receiver, wait_for_receipts, wait_for_succeeded
from bench.report import percentile
from bench.services import Process, Services

APP_ID = "app_flash_sale"
PATH = "/delay/1/flash"
CLIENTS = 50


async def flash_sale_run(
    services: Services,
    session: aiohttp.ClientSession,
    database_url: str,
    receiver: Process,
    events: int,
) -> dict[str, float]:
    """One run on a fresh database; its API and worker are stopped at the end."""
    await flush_redis(services.redis_url)
    deployment = await deploy(services, session, database_url, receiver.url)
    worker: Process | None = None
    try:
        url = f"{receiver.url}{PATH}"
        key = deployment.key
        webhook_id = await add_webhook(session, deployment.api.url, key, "flash", url, APP_ID, None)
        limit = (await webhook_of(session, deployment.api.url, key, webhook_id))["max_in_flight"]
        worker = services.start_worker(database_url, name="worker_flash_sale")
        await warm_up(session, deployment, receiver)
        await reset_receiver(session, receiver.url)
        make = event_requests(key, tag="flash", app_ids=(APP_ID,))
        cpu, started = worker.cpu_seconds(), time.time()
        posted = await post_events(session, deployment.events_url, make, events, CLIENTS)
        posted_at = time.time()
        stats = await wait_for_receipts(session, receiver.url, events, within=60 + events / 50)
        done = await wait_for_succeeded(database_url, events + WARM_UP_EVENTS, within=60)
        cpu = worker.cpu_seconds() - cpu
    finally:
        if worker is not None:
            services.stop(worker)
        services.stop(deployment.api)
    return {
        "events_per_s": events / (done - started),
        "ingestion_events_per_s": posted.per_second,
        "post_p50_ms": percentile(posted.latencies, 0.50) * 1000,
        "post_p99_ms": percentile(posted.latencies, 0.99) * 1000,
        "done_after_last_post_s": done - posted_at,
        "worker_cpu_ms_per_delivery": cpu * 1000 / events,
        "most_open": float(stats["paths"][PATH]["most_open"]),
        "max_in_flight": float(limit),
    }
