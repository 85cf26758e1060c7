"""New deliveries reach the arq queue after the commit, and Redis being away loses nothing."""

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from arq.jobs import deserialize_job
from fastapi import FastAPI

from tests.conftest import Tenant, tenant_of


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def no_redis_tenant(no_redis_app: FastAPI) -> AsyncIterator[Tenant]:
    """A tenant of an app whose Redis URL points where nothing listens."""
    async with tenant_of(no_redis_app, "No Redis") as tenant:
        yield tenant


async def two_subscribed_webhooks(tenant: Tenant) -> None:
    for name in ("first", "second"):
        await tenant.subscribed_webhook(name=name)


async def delivery_ids(tenant: Tenant, event_id: str) -> list[str]:
    response = await tenant.api.get("/deliveries", params={"event_id": event_id})
    assert response.status_code == 200, response.text
    return [delivery["id"] for delivery in response.json()["data"]]


async def test_each_delivery_is_one_job_named_by_its_id(
    tenant: Tenant, queue: redis.asyncio.Redis
) -> None:
    await two_subscribed_webhooks(tenant)
    accepted = await tenant.event()
    assert accepted["deliveries"] == 2
    ids = await delivery_ids(tenant, accepted["id"])
    assert len(ids) == 2

    queued = {member.decode() for member in await queue.zrange("arq:queue", 0, -1)}
    assert queued == set(ids)
    job_keys = {key.decode() for key in await queue.keys("arq:job:*")}
    assert job_keys == {f"arq:job:{delivery_id}" for delivery_id in ids}
    for delivery_id in ids:
        raw = await queue.get(f"arq:job:{delivery_id}")
        assert raw is not None
        job = deserialize_job(raw)
        assert job.args == (delivery_id,)
        assert job.kwargs == {}


async def test_a_replayed_event_enqueues_nothing_more(
    tenant: Tenant, queue: redis.asyncio.Redis
) -> None:
    await two_subscribed_webhooks(tenant)
    body: dict[str, Any] = {"type": "purchase", "app_id": "app_42"}
    headers = {"Idempotency-Key": "queue-1"}
    first = await tenant.api.post("/events", json=body, headers=headers)
    assert first.status_code == 202
    assert await queue.zcard("arq:queue") == 2
    replay = await tenant.api.post("/events", json=body, headers=headers)
    assert replay.status_code == 202
    assert replay.json() == first.json()
    assert await queue.zcard("arq:queue") == 2


async def test_a_rejected_event_enqueues_nothing(
    tenant: Tenant, queue: redis.asyncio.Redis
) -> None:
    await two_subscribed_webhooks(tenant)
    response = await tenant.api.post("/events", json={"type": "purchase", "app_id": ""})
    assert response.status_code == 422
    assert await queue.keys("arq:*") == []
    assert (await tenant.api.get("/deliveries")).json()["data"] == []


async def test_without_redis_events_are_accepted_and_deliveries_stay_pending(
    no_redis_tenant: Tenant,
) -> None:
    tenant = no_redis_tenant
    await two_subscribed_webhooks(tenant)
    started = time.monotonic()
    response = await tenant.api.post("/events", json={"type": "purchase", "app_id": "app_42"})
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["deliveries"] == 2
    assert elapsed < 3, f"POST /events took {elapsed:.1f} s without Redis"

    listing = await tenant.api.get("/deliveries", params={"event_id": response.json()["id"]})
    assert listing.status_code == 200
    assert [d["status"] for d in listing.json()["data"]] == ["pending", "pending"]
