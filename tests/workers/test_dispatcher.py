"""The dispatcher (`workers/dispatcher.py`) with a real receiver, no arq worker and no
queue: one delivery claimed, and the rest of the webhook's due deliveries reached only by
the records handing their freed slots on."""

import asyncio
from typing import Any

from arq.connections import RedisSettings, create_pool

from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery
from workers import resources as worker_resources
from workers.dispatcher import Dispatcher
from workers.settings import on_shutdown, on_startup


async def purchases_without_jobs(
    tenant: Tenant, job_ctx: dict[str, Any], count: int, url: str, max_in_flight: int
) -> list[str]:
    """`count` purchases due for one webhook, none of them queued: only the hand-off can
    reach them once the first is delivered."""
    await tenant.subscribed_webhook(url=url, max_in_flight=max_in_flight)
    ids = [await post_purchase(tenant, data={"order_id": f"o-{n}"}) for n in range(count)]
    await job_ctx["redis"].flushdb()
    return ids


async def test_one_claimed_delivery_carries_the_webhooks_due_deliveries_one_slot_at_a_time(
    tenant: Tenant, receiver: Receiver, job_ctx: dict[str, Any]
) -> None:
    receiver.default = Answer(200, delay=0.05)
    ids = await purchases_without_jobs(tenant, job_ctx, 4, receiver.url, max_in_flight=1)
    dispatcher: Dispatcher = worker_resources.of(job_ctx).dispatcher

    await asyncio.wait_for(dispatcher.deliver(ids[0]), timeout=20)

    orders = [request.body.split(b'"order_id":"')[1][:3] for request in receiver.requests]
    assert orders == [b"o-0", b"o-1", b"o-2", b"o-3"]  # oldest due first
    assert receiver.most_in_flight == 1
    for delivery_id in ids:
        done = await wait_for_delivery(tenant, delivery_id, "succeeded")
        assert done["attempt_count"] == 1
    assert await job_ctx["redis"].zcard("arq:queue") == 0  # nothing went through Redis


async def test_free_slots_are_filled_beside_the_carrying_attempt(
    tenant: Tenant, receiver: Receiver, job_ctx: dict[str, Any]
) -> None:
    receiver.default = Answer(200, delay=0.2)
    ids = await purchases_without_jobs(tenant, job_ctx, 7, receiver.url, max_in_flight=3)
    dispatcher: Dispatcher = worker_resources.of(job_ctx).dispatcher

    await asyncio.wait_for(dispatcher.deliver(ids[0]), timeout=20)
    await asyncio.wait_for(dispatcher.wait(), timeout=20)

    # The first record found two more slots free and started both beside it: the
    # receiver held three requests at once, never more.
    assert len(receiver.requests) == 7
    assert receiver.most_in_flight == 3
    assert dispatcher.in_flight == 0
    for delivery_id in ids:
        assert (await wait_for_delivery(tenant, delivery_id, "succeeded"))["attempt_count"] == 1


async def test_a_closed_dispatcher_hands_nothing_on(
    tenant: Tenant, receiver: Receiver, job_ctx: dict[str, Any]
) -> None:
    await tenant.subscribed_webhook(url=receiver.url, max_in_flight=1)
    first, second = [await post_purchase(tenant, data={"order_id": f"o-{n}"}) for n in range(2)]
    dispatcher: Dispatcher = worker_resources.of(job_ctx).dispatcher
    dispatcher.close()

    await asyncio.wait_for(dispatcher.deliver(first), timeout=20)

    assert len(receiver.requests) == 1
    assert (await tenant.fetch(f"/deliveries/{second}"))["attempt_count"] == 0
    assert dispatcher.room == 0


async def test_the_worker_concurrency_setting_bounds_the_attempts_in_flight(
    settings: Settings, redis_url: str
) -> None:
    """STOREHOOKS_WORKER_CONCURRENCY is the room a worker's dispatcher starts with."""
    for concurrency in (3, 200):
        pool = await create_pool(RedisSettings.from_dsn(redis_url))
        ctx: dict[str, Any] = {
            "settings": settings.model_copy(update={"worker_concurrency": concurrency}),
            "redis": pool,
        }
        await on_startup(ctx)
        try:
            assert ctx["dispatcher"].room == concurrency
        finally:
            await on_shutdown(ctx)
            await pool.aclose()
