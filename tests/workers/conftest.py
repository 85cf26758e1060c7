"""Delivery tests: the app and an in-process arq worker on the same real Redis and SQLite
file, short retry settings, and real receivers on 127.0.0.1."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from opentelemetry.sdk.trace.export import SpanExporter

from app.core.queue import DeliveryWorker
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.receivers import Received, Receiver, TestCA, self_signed_context
from workers.settings import on_shutdown, on_startup, worker_options


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def settings(database_url: str, redis_url: str, test_ca: TestCA) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        allow_private_networks=True,  # the receivers live on 127.0.0.1
        ca_bundle=str(test_ca.bundle),
        max_attempts=5,
        retry_base_seconds=0.2,
        retry_max_delay_seconds=0.5,
        delivery_timeout_seconds=2,
        worker_metrics_port=0,
    )


@asynccontextmanager
async def running_worker(
    settings: Settings, span_exporter: SpanExporter | None = None
) -> AsyncIterator[Worker]:
    """An in-process delivery worker on this event loop, stopped on leaving; tracing
    into `span_exporter` when given."""
    running = DeliveryWorker(**worker_options(settings, span_exporter), handle_signals=False)
    task = asyncio.create_task(running.async_run())
    try:
        yield running
    finally:
        # Stop polling first, so that no job of the next test is taken by this worker,
        # then cancel the jobs still running: at teardown they are of no interest.
        task.cancel()
        jobs = list(running.tasks.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(task, *jobs, return_exceptions=True)
        running.tasks.clear()  # or close() re-raises their cancellation and skips on_shutdown
        await running.close()


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def https_receiver(test_ca: TestCA) -> Iterator[Receiver]:
    with Receiver(tls=test_ca.server_context(), host="localhost") as running:
        yield running


@pytest.fixture
def self_signed_receiver(tmp_path: Path) -> Iterator[Receiver]:
    with Receiver(tls=self_signed_context(tmp_path), host="localhost") as running:
        yield running


async def wait_for_delivery(
    tenant: Tenant, delivery_id: str, *statuses: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Polls GET /deliveries/{id} until its status is one of `statuses`."""
    wanted = statuses or ("succeeded", "failed", "cancelled")
    deadline = time.monotonic() + timeout
    while True:
        delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
        if delivery["status"] in wanted:
            return delivery
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery still {delivery['status']}: {delivery}")
        await asyncio.sleep(0.05)


async def received(receiver: Receiver, count: int, timeout: float = 20.0) -> list[Received]:
    """Waits for `count` requests without blocking the loop the in-process worker runs on."""
    deadline = time.monotonic() + timeout
    while len(receiver.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"receiver got {len(receiver.requests)} requests, not {count}")
        await asyncio.sleep(0.02)
    return list(receiver.requests)


async def post_purchase(tenant: Tenant, **fields: Any) -> str:
    """Posts a purchase of app_42 and returns its one delivery's id."""
    accepted = await tenant.event(**fields)
    listing = (await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})).json()
    assert len(listing["data"]) == 1, listing
    delivery_id: str = listing["data"][0]["id"]
    return delivery_id


@pytest.fixture
async def job_ctx(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """The ctx a worker's jobs get, built by the worker's own on_startup; no worker runs."""
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    ctx: dict[str, Any] = {"settings": settings, "redis": pool}
    await on_startup(ctx)
    yield ctx
    await on_shutdown(ctx)
    await pool.aclose()
