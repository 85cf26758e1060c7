"""Stage 2, delivery throughput: N events are posted through the API with no worker
running (so N jobs wait in Redis), then one `storehooks worker` is started and timed from
its start until the receiver has N distinct webhook-ids and the database has N
deliveries `succeeded`. The worker's CPU is utime + stime from /proc/<pid>/stat."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import profile
from bench.deployment import Deployment, deploy, event_requests, post_events
from bench.probes import flush_redis, reset_receiver, wait_for_receipts, wait_for_succeeded
from bench.services import Process, Services


@dataclass
class DeliveryRun:
    deployment: Deployment
    figures: dict[str, float]


async def delivery_run(
    services: Services,
    session: aiohttp.ClientSession,
    database_url: str,
    receiver: Process,
    events: int,
    profile_to: Path | None = None,
) -> DeliveryRun:
    """One run on a fresh database; the deployment's API is left running."""
    await flush_redis(services.redis_url)
    deployment = await deploy(services, session, database_url, receiver.url)
    await reset_receiver(session, receiver.url)
    posted = await post_events(
        session, deployment.events_url, event_requests(deployment.key), events
    )
    figures = await drain(services, session, deployment, receiver, events, profile_to)
    figures["fill_events_per_s"] = posted.per_second
    return DeliveryRun(deployment, figures)


async def drain(
    services: Services,
    session: aiohttp.ClientSession,
    deployment: Deployment,
    receiver: Process,
    events: int,
    profile_to: Path | None,
) -> dict[str, float]:
    worker = services.start_worker(deployment.database_url, name="worker_delivery")
    profiler = profile.start(services, worker, profile_to) if profile_to else None
    try:
        cpu_at_start = worker.cpu_seconds()
        within = 60 + events / 50
        stats = await wait_for_receipts(session, receiver.url, events, within)
        first = min_arrival(stats)
        done = await wait_for_succeeded(deployment.database_url, events, 60)
        cpu = worker.cpu_seconds() - cpu_at_start
        main_thread_cpu = worker.main_thread_cpu_seconds()
    finally:
        if profiler is not None:
            profile.stop(services, profiler)
        services.stop(worker)
    seconds = done - worker.started
    return {
        "deliveries_per_s": events / seconds,
        "deliveries_per_s_after_first": events / max(done - first, 1e-3) if first else 0.0,
        "worker_start_to_first_delivery_s": first - worker.started if first else 0.0,
        "worker_cpu_ms_per_delivery": cpu * 1000 / events,
        # the event loop's thread; the rest is aiosqlite's threads (SQLite's C code)
        "worker_main_thread_cpu_ms_per_delivery": main_thread_cpu * 1000 / events,
        "drain_seconds": seconds,
    }


def min_arrival(stats: dict[str, Any]) -> float:
    return float(stats.get("first_arrival", 0.0))
