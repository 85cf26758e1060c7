"""Running for real: an attempt cut short by a dead worker, a `storehooks worker` process
that drains on SIGTERM and logs JSON only, the worker's metrics port, the API's queue
gauges, and the retention purge."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app import resources
from app.core.db import session_scope, utcnow
from app.core.enums import DeliveryKind, DeliveryStatus
from app.core.ids import new_id
from app.core.models import Delivery, DeliveryAttempt, Event
from app.core.settings import Settings
from tests.conftest import ROOT, Tenant, client_for, free_port, me, secret_part
from tests.support.processes import listening_addresses
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, received, running_worker, wait_for_delivery
from workers import retention
from workers.claiming import INTERRUPTED
from workers.settings import on_shutdown, on_startup

# Three times the retry cap (0.5 s): a further request would have arrived by then.
QUIET_SECONDS = 1.5
FAILED_500 = "The receiver answered HTTP 500; only 200 counts as success."


async def delivery_row(app: FastAPI, delivery_id: str) -> Delivery:
    async with session_scope(resources.of(app).sessionmaker) as session:
        row = await session.get(Delivery, delivery_id)
    assert row is not None, delivery_id
    return row


async def purchase(tenant: Tenant) -> tuple[str, str]:
    """Posts a purchase of app_42; (event id, its one delivery's id)."""
    accepted = await tenant.event()
    listing = (await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})).json()
    [delivery] = listing["data"]
    return accepted["id"], delivery["id"]


def attempt_row(
    delivery_id: str, number: int, started_at: datetime, status_code: int | None = None
) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=new_id("att"),
        delivery_id=delivery_id,
        number=number,
        started_at=started_at,
        duration_ms=None if status_code is None else 12,
        status_code=status_code,
        error=FAILED_500 if status_code == 500 else None,
    )


# --- an attempt interrupted by a worker that died mid-send --------------------------------


@dataclass(frozen=True)
class Interrupted:
    delivery_id: str
    number: int  # the attempt that never got an outcome
    limit: int  # the delivery's attempt_limit when the worker died


@pytest.fixture
async def interrupted(
    request: pytest.FixtureRequest, tenant: Tenant, receiver: Receiver
) -> Interrupted:
    """A delivery whose attempt `request.param` (the last one when "last") was started by a
    worker that died before it had an outcome, the attempts before it failed with 500; it
    is due again. No worker runs yet."""
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    past = utcnow() - timedelta(minutes=5)
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        delivery = await session.get(Delivery, delivery_id)
        assert delivery is not None
        limit = delivery.attempt_limit
        number = limit if request.param == "last" else request.param
        for earlier in range(1, number):
            session.add(attempt_row(delivery_id, earlier, past, status_code=500))
        session.add(attempt_row(delivery_id, number, past))  # no status, no error
        delivery.attempt_count = number
        delivery.next_attempt_at = past
        delivery.updated_at = past
    return Interrupted(delivery_id, number, limit)


@pytest.mark.parametrize("interrupted", [1, "last"], indirect=True)
async def test_an_interrupted_attempt_is_recorded_and_retried_outside_the_budget(
    tenant: Tenant, receiver: Receiver, interrupted: Interrupted, worker: Worker
) -> None:
    # `interrupted` comes before `worker`: the worker starts on the dead worker's leftovers.
    delivery = await wait_for_delivery(tenant, interrupted.delivery_id)

    assert delivery["status"] == "succeeded"
    number = interrupted.number
    assert delivery["attempt_count"] == number + 1
    assert delivery["last_status_code"] == 200
    attempts = delivery["attempts"]
    assert [attempt["number"] for attempt in attempts] == list(range(1, number + 2))
    assert [attempt["status_code"] for attempt in attempts[: number - 1]] == [500] * (number - 1)
    cut, retried = attempts[number - 1], attempts[number]
    assert cut["error"] == INTERRUPTED
    assert cut["status_code"] is None
    assert retried["status_code"] == 200
    assert retried["error"] is None
    await asyncio.sleep(QUIET_SECONDS)
    [request] = receiver.requests
    assert request.headers["webhook-id"] == interrupted.delivery_id
    row = await delivery_row(tenant.app, interrupted.delivery_id)
    assert row.attempt_limit == interrupted.limit + 1
    assert row.status == DeliveryStatus.SUCCEEDED


# --- a real `storehooks worker` stopped with SIGTERM -------------------------------------


def worker_environment(settings: Settings) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STOREHOOKS_")}
    return {
        **inherited,
        "STOREHOOKS_DATABASE_URL": settings.database_url,
        "STOREHOOKS_REDIS_URL": settings.redis_url,
        "STOREHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "STOREHOOKS_DELIVERY_TIMEOUT_SECONDS": "5",
        "STOREHOOKS_WORKER_METRICS_PORT": "0",
    }


async def exit_code(process: asyncio.subprocess.Process, timeout: float) -> int | None:
    """The process's exit code, or None if it still runs after `timeout` seconds."""
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        return None


async def test_sigterm_lets_the_attempt_in_flight_finish_and_the_logs_are_json_without_secrets(
    tenant: Tenant, receiver: Receiver, settings: Settings, tmp_path: Path
) -> None:
    receiver.default = Answer(200, delay=2)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    stderr_file = tmp_path / "worker.stderr"
    with stderr_file.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            cwd=ROOT,
            env=worker_environment(settings),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        delivery_id = await post_purchase(tenant)
        [request] = await received(receiver, 1, timeout=20)
        process.send_signal(signal.SIGTERM)
        code = await exit_code(process, timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr_file.read_text()
    assert code == 0, log

    # The attempt in flight (2 s, SIGTERM at its start) was allowed to finish.
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "succeeded"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert len(receiver.requests) == 1

    entries = [orjson.loads(line) for line in log.splitlines() if line.strip()]
    for entry in entries:
        assert isinstance(entry, dict), entry
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    [line] = [entry for entry in entries if entry["logger"] == "workers.deliver"]
    assert line["level"] == "info"
    assert line["delivery_id"] == delivery_id
    assert line["webhook_id"] == webhook["id"]
    assert line["attempt"] == 1
    assert line["status_code"] == 200
    assert isinstance(line["duration_ms"], int)
    assert line["duration_ms"] >= 1500  # the receiver's 2 s answer, not a cut connection

    secret: str = webhook["secret"]
    signature = request.headers["webhook-signature"]
    key_id = (await me(tenant.api))["key_id"]
    hidden = {
        "webhook secret": secret,
        "webhook secret's base64": secret.removeprefix("whsec_"),
        "API key": tenant.token,
        "API key's secret": secret_part(tenant.token, key_id),
        "signature header": signature,
        "signature": signature.removeprefix("v1,"),
    }
    assert [name for name, value in hidden.items() if value in log] == []
    # URLs may carry a receiver's token in their query string: no line names one.
    assert receiver.url not in log


# --- the worker's own metrics port --------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0  # a labelled counter appears only once it has counted something


def worker_counts(text: str) -> tuple[float, float, float]:
    return (
        sample(text, "storehooks_attempts_total", outcome="succeeded"),
        sample(text, "storehooks_deliveries_finished_total", status="succeeded"),
        sample(text, "storehooks_attempt_duration_seconds_count"),
    )


async def scrape(client: httpx.AsyncClient, url: str, timeout: float = 10.0) -> str:
    """GET `url` once it answers (the worker opens its port in on_startup)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = await client.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        return response.text


def port_is_free(port: int) -> bool:
    """Whether a new metrics server could listen on `port` (as a restarted worker would)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        sock.listen()
        return True


async def test_the_worker_serves_its_metrics_on_its_port_and_frees_it_on_close(
    tenant: Tenant, receiver: Receiver, settings: Settings
) -> None:
    port = free_port()
    await tenant.subscribed_webhook(url=receiver.url)
    url = f"http://127.0.0.1:{port}/metrics"
    async with (
        running_worker(settings.model_copy(update={"worker_metrics_port": port})) as running,
        httpx.AsyncClient() as client,
    ):
        before = worker_counts(await scrape(client, url))
        assert not port_is_free(port)  # the check below can tell a held port
        # This machine only, as STOREHOOKS_WORKER_METRICS_HOST defaults to.
        assert listening_addresses(port) == {"127.0.0.1"}
        delivery_id = await post_purchase(tenant)
        assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
        # The counters move just after the outcome is committed: wait for the last one.
        deadline = time.monotonic() + 5
        while (after := worker_counts(await scrape(client, url)))[2] < before[2] + 1:
            assert time.monotonic() < deadline, (before, after)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # room for a wrongly doubled count to show
        after = worker_counts(await scrape(client, url))
        assert after == (before[0] + 1, before[1] + 1, before[2] + 1), (before, after)
        assert len(receiver.requests) == 1

    # `running` is still referenced, as a worker object may be in a process that goes on:
    # the port must be closed by on_shutdown, not by the garbage collector.
    assert port_is_free(port), "on_shutdown left the metrics server's socket listening"
    del running


# --- the API's queue gauges ---------------------------------------------------------------


async def gauges(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    names = (
        "storehooks_queue_depth",
        "storehooks_due_deliveries",
        "storehooks_oldest_due_delivery_age_seconds",
    )
    return {name: sample(response.text, name) for name in names}


async def test_metrics_reports_queue_depth_and_due_deliveries(
    tenant: Tenant, anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    await tenant.subscribed_webhook()  # no worker runs: the deliveries wait in the queue
    delivery_ids = [await post_purchase(tenant) for _ in range(3)]

    found = await gauges(anonymous)
    assert found["storehooks_queue_depth"] == 3.0
    assert found["storehooks_due_deliveries"] == 3.0
    assert found["storehooks_oldest_due_delivery_age_seconds"] >= 0

    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_ids[0])
            .values(next_attempt_at=utcnow() - timedelta(seconds=60))
        )
    found = await gauges(anonymous)
    assert 59 <= found["storehooks_oldest_due_delivery_age_seconds"] < 90
    assert found["storehooks_due_deliveries"] == 3.0

    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    found = await gauges(anonymous)
    assert found["storehooks_queue_depth"] == 0.0
    assert found["storehooks_due_deliveries"] == 3.0  # the database still knows them


async def test_metrics_answers_while_redis_is_away(no_redis_app: FastAPI) -> None:
    async with client_for(no_redis_app) as client:
        found = await gauges(client)
    assert found["storehooks_due_deliveries"] == 0.0  # the database part is still read


# --- retention ----------------------------------------------------------------------------


async def exists(app: FastAPI, model: Any, row_id: str) -> bool:
    async with session_scope(resources.of(app).sessionmaker) as session:
        return await session.get(model, row_id) is not None


def finished(delivery_id: str, created_at: datetime, attempts: int) -> Any:
    done = utcnow() - timedelta(minutes=1)
    return (
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status=DeliveryStatus.SUCCEEDED,
            attempt_count=attempts,
            next_attempt_at=None,
            last_status_code=200,
            created_at=created_at,
            updated_at=done,
            completed_at=done,
        )
    )


def created(event_id: str, at: datetime) -> Any:
    return update(Event).where(Event.id == event_id).values(created_at=at)


@pytest.fixture
async def purge_ctx(settings: Settings, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    """A job context as the worker's on_startup builds it, keeping 30 days of history."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    ctx: dict[str, Any] = {
        "settings": settings.model_copy(update={"retention_days": 30}),
        "redis": pool,
    }
    await on_startup(ctx)
    yield ctx
    await on_shutdown(ctx)
    await pool.aclose()


async def test_purge_removes_old_finished_history_and_keeps_the_rest(
    tenant: Tenant, purge_ctx: dict[str, Any]
) -> None:
    webhook = await tenant.subscribed_webhook()  # no worker: rows are aged by hand
    old_event, old_delivery = await purchase(tenant)
    pending_event, pending_delivery = await purchase(tenant)
    recent_event, recent_delivery = await purchase(tenant)
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/test")
    assert response.status_code == 202, response.text
    test_delivery = response.json()["delivery_id"]

    old, now = utcnow() - timedelta(days=31), utcnow()
    old_attempt = attempt_row(old_delivery, 1, old, status_code=200)
    pending_attempt = attempt_row(pending_delivery, 1, old, status_code=500)
    recent_old_attempt = attempt_row(recent_delivery, 1, old, status_code=500)
    recent_attempt = attempt_row(recent_delivery, 2, now, status_code=200)
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        # (a) an old event whose delivery succeeded long ago
        await session.execute(created(old_event, old))
        await session.execute(finished(old_delivery, old, attempts=1))
        # (b) an old event whose delivery is still retrying
        await session.execute(created(pending_event, old))
        await session.execute(
            update(Delivery)
            .where(Delivery.id == pending_delivery)
            .values(created_at=old, attempt_count=1, next_attempt_at=now + timedelta(hours=1))
        )
        # (c, d) a recent finished event, its first attempt old
        await session.execute(finished(recent_delivery, now, attempts=2))
        # (e) an old finished ping
        await session.execute(finished(test_delivery, old, attempts=0))
        session.add_all([old_attempt, pending_attempt, recent_old_attempt, recent_attempt])

    ping = await delivery_row(tenant.app, test_delivery)
    assert (ping.kind, ping.event_id, ping.status) == (
        DeliveryKind.TEST,
        None,
        DeliveryStatus.SUCCEEDED,
    )

    removed = await retention.purge(purge_ctx)

    assert removed == {"attempts": 2, "events": 1, "test_deliveries": 1}
    app = tenant.app
    assert not await exists(app, Event, old_event)
    assert not await exists(app, Delivery, old_delivery)
    assert not await exists(app, DeliveryAttempt, old_attempt.id)
    assert await exists(app, Event, pending_event)
    assert await exists(app, Delivery, pending_delivery)
    assert await exists(app, DeliveryAttempt, pending_attempt.id)
    assert await exists(app, Event, recent_event)
    assert await exists(app, Delivery, recent_delivery)
    assert not await exists(app, DeliveryAttempt, recent_old_attempt.id)
    assert await exists(app, DeliveryAttempt, recent_attempt.id)
    assert not await exists(app, Delivery, test_delivery)
    kept = await tenant.fetch(f"/deliveries/{recent_delivery}")
    assert [attempt["number"] for attempt in kept["attempts"]] == [2]

    assert await retention.purge(purge_ctx) == {"attempts": 0, "events": 0, "test_deliveries": 0}


async def test_purge_works_through_more_rows_than_one_batch(
    tenant: Tenant, purge_ctx: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)
    await tenant.subscribed_webhook()
    purchases = [await purchase(tenant) for _ in range(5)]
    recent_event, _recent_delivery = await purchase(tenant)
    old = utcnow() - timedelta(days=31)
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        for event_id, delivery_id in purchases:
            await session.execute(created(event_id, old))
            await session.execute(finished(delivery_id, old, attempts=1))
            session.add(attempt_row(delivery_id, 1, old, status_code=200))

    removed = await retention.purge(purge_ctx)

    assert removed == {"attempts": 5, "events": 5, "test_deliveries": 0}
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        events = (await session.scalars(select(Event.id))).all()
        deliveries = (await session.scalars(select(Delivery.event_id))).all()
        attempts = (await session.scalars(select(DeliveryAttempt.id))).all()
    assert events == [recent_event]
    assert deliveries == [recent_event]
    assert attempts == []
