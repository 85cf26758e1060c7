"""Stage 6, fair sharing (docs/api.md#delivery-policies): does a dead endpoint's backlog of
due retries delay a healthy endpoint's new deliveries? On a fresh database with an API and a worker
of its own (`STOREHOOKS_DELIVERY_TIMEOUT_SECONDS` = 2), one account has two webhooks on
the receiver: the healthy one of stage 2 (`/hook`, answers 200) and a dead one (`/hang`,
holds every request open until the worker gives up; no action, so it gets no new events)
with the default `max_in_flight` of 10. The healthy webhook's end-to-end latency is
measured as in stage 4 (events at a fixed rate, POST answer → arrival, by event_id)
twice: alone, then while B deliveries of the dead webhook are due retries (inserted in
bulk as in stage 5, with `attempt_count` 1 and `next_attempt_at` now, and queued as
attempt 2 with `app.core.queue.enqueue`). Reported: p50/p99/max of both; the dead webhook's
pending deliveries before and after the second measurement (a timed-out retry is
rescheduled, so it stays pending), the requests the receiver's /hang got during it, and
the most of the dead webhook's attempts in flight at once, from `delivery_attempts`
(`started_at` to `started_at` + `duration_ms`; the receiver's own count runs higher, as a
socket abandoned at the timeout is closed a moment later)."""

import asyncio
import time
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import select

from app.core import queue
from app.core.db import make_engine, utcnow
from app.core.models import Delivery, DeliveryAttempt
from bench.backlog import enqueue_attempts, insert_deliveries
from bench.databases import fetch_all
from bench.deployment import Deployment, add_webhook, deploy, event_requests, post_events
from bench.latency import latency_run
from bench.probes import flush_redis, receiver_stats, reset_receiver, wait_for_receipts
from bench.services import Process, Services

DELIVERY_TIMEOUT_SECONDS = 2
DEAD_MAX_IN_FLIGHT = 10  # the webhook default, left as it is
WARM_UP_EVENTS = 20
SETTLE_WITHIN = 30.0


async def fairness_run(
    services: Services,
    session: aiohttp.ClientSession,
    database_url: str,
    receiver: Process,
    rate: float,
    seconds: float,
    backlog: int,
) -> dict[str, float]:
    """One run on a fresh database; its API and worker are stopped at the end."""
    await flush_redis(services.redis_url)
    deployment = await deploy(services, session, database_url, receiver.url)
    worker: Process | None = None
    try:
        dead = await add_webhook(
            session, deployment.api.url, deployment.key, "dead", f"{receiver.url}/hang", None
        )
        extra = {"STOREHOOKS_DELIVERY_TIMEOUT_SECONDS": str(DELIVERY_TIMEOUT_SECONDS)}
        worker = services.start_worker(database_url, name="worker_fairness", extra=extra)
        await warm_up(session, deployment, receiver)
        alone = await latency_run(session, deployment, receiver, rate, seconds, 0)
        await add_due_retries(database_url, services.redis_url, dead, backlog)
        await wait_for_open_hangs(session, receiver, min(backlog, DEAD_MAX_IN_FLIGHT))
        pending_before = await pending_of(database_url, dead)
        beside = await latency_run(session, deployment, receiver, rate, seconds, 1)
        pending_after = await pending_of(database_url, dead)
        hang = (await receiver_stats(session, receiver.url))["hang"]
    finally:
        if worker is not None:
            services.stop(worker)
        services.stop(deployment.api)
    return {
        **{f"baseline_{name}": alone[name] for name in ("p50_ms", "p99_ms", "max_ms")},
        **{f"backlog_{name}": beside[name] for name in ("p50_ms", "p99_ms", "max_ms")},
        "dead_pending_before": float(pending_before),
        "dead_pending_after": float(pending_after),
        "dead_attempts_during": float(hang["requests"]),
        "dead_most_in_flight": float(await most_in_flight(database_url, dead)),
    }


async def warm_up(
    session: aiohttp.ClientSession, deployment: Deployment, receiver: Process
) -> None:
    """A few events through API, worker and receiver, so that the worker's start-up and
    the first connections are not measured."""
    await reset_receiver(session, receiver.url)
    make = event_requests(deployment.key, tag="warm")
    await post_events(session, deployment.events_url, make, WARM_UP_EVENTS, concurrency=5)
    await wait_for_receipts(session, receiver.url, WARM_UP_EVENTS, within=60)


async def add_due_retries(database_url: str, redis_url: str, webhook_id: str, count: int) -> None:
    """`count` deliveries to the webhook whose first attempt failed and whose retry is due
    now: in the database (attempt_count 1) and queued as attempt 2 (the running worker's
    sweeper may queue some of them first: the same jobs)."""
    ids = await insert_deliveries(database_url, count, utcnow(), webhook_id, attempt_count=1)
    await enqueue_attempts(redis_url, [queue.Attempt(delivery_id, 2) for delivery_id in ids])


async def wait_for_open_hangs(
    session: aiohttp.ClientSession, receiver: Process, expected: int
) -> None:
    """Until the dead endpoint holds `expected` requests open at once: the worker is busy
    with the backlog before the second measurement starts."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while (stats := await receiver_stats(session, receiver.url))["hang"]["open"] < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dead endpoint had {stats['hang']} after {SETTLE_WITHIN:g} s")
        await asyncio.sleep(0.05)


async def pending_of(database_url: str, webhook_id: str) -> int:
    rows = await fetch_all(
        database_url,
        "SELECT count(*) FROM deliveries WHERE webhook_id = :id AND status = 'pending'",
        id=webhook_id,
    )
    return int(rows[0][0])


async def most_in_flight(database_url: str, webhook_id: str) -> int:
    """The most attempts to the webhook that overlapped in time (an attempt without a
    duration yet is open until now)."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(DeliveryAttempt.started_at, DeliveryAttempt.duration_ms)
                .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                .where(Delivery.webhook_id == webhook_id)
            )
            spans = [(started, _ended(started, duration)) for started, duration in rows]
    finally:
        await engine.dispose()
    return _most_overlapping(spans)


def _ended(started: datetime, duration_ms: int | None) -> datetime:
    return utcnow() if duration_ms is None else started + timedelta(milliseconds=duration_ms)


def _most_overlapping(spans: list[tuple[datetime, datetime]]) -> int:
    """A sweep over the starts (+1) and ends (-1); an end sorts before a start at the same
    instant."""
    changes = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = open_now = 0
    for _, change in changes:
        open_now += change
        most = max(most, open_now)
    return most
