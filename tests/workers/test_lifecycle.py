"""A delivery's life beyond the happy path (docs/api.md#deliveries, #outbound-safety): test
pings, a webhook turned off or deleted mid-retry, manual retries, duplicated jobs, a queue
rebuilt by the sweeper, and targets that resolve into a private network."""

import asyncio
import hashlib
import json
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.jobs import Job, JobStatus
from arq.worker import Worker
from pydantic import ValidationError
from sqlalchemy import update

from app.core.db import utcnow
from app.core.enums import Scope
from app.core.models import Delivery
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.problems import assert_problem, error_locs
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, received, wait_for_delivery
from workers import resources as worker_resources
from workers.dispatcher import deliver
from workers.settings import worker_options
from workers.sweeper import sweep

# Three times the retry cap (0.5 s): a further attempt would have arrived by then.
QUIET_SECONDS = 1.5


async def ping(tenant: Tenant, webhook_id: str) -> str:
    response = await tenant.api.post(f"/webhooks/{webhook_id}/test")
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"delivery_id"}
    delivery_id: str = body["delivery_id"]
    return delivery_id


async def flush_redis(redis_url: str) -> None:
    """Redis loses everything, as after a restart without persistence."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushall()
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


# --- test pings ---------------------------------------------------------------------------


async def test_a_ping_reaches_the_receiver_and_the_webhook_stays_active(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.webhook(url=receiver.url)
    before = int(time.time())
    delivery_id = await ping(tenant, webhook["id"])

    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert delivery["kind"] == "test"
    assert delivery["event_id"] is None
    assert delivery["webhook_id"] == webhook["id"]
    assert delivery["attempt_count"] == 1
    assert delivery["last_status_code"] == 200

    [request] = receiver.requests
    assert request.headers["webhook-id"] == delivery_id
    body = json.loads(request.body)
    assert set(body) == {"payload", "md5"}
    payload = body["payload"]
    assert set(payload) == {"type", "epoch_timestamp"}
    assert payload["type"] == "ping"
    assert type(payload["epoch_timestamp"]) is int
    assert before <= payload["epoch_timestamp"] <= time.time()
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body["md5"] == hashlib.md5(canonical.encode()).hexdigest()

    after = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert after["active"] is True
    assert after["disabled_reason"] is None


async def test_a_failed_ping_is_not_retried_and_turns_the_webhook_off(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500)
    webhook = await tenant.webhook(url=receiver.url)
    delivery_id = await ping(tenant, webhook["id"])

    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed"
    assert delivery["kind"] == "test"
    assert delivery["last_status_code"] == 500
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.requests) == 1
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["attempt_count"] == 1
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500]

    after = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert after["active"] is False
    assert after["disabled_reason"] == "test_failed"


async def test_a_ping_on_an_inactive_webhook_is_a_conflict(
    tenant: Tenant, receiver: Receiver
) -> None:
    webhook = await tenant.webhook(url=receiver.url, active=False)

    assert_problem(await tenant.api.post(f"/webhooks/{webhook['id']}/test"), 409)

    listing = (await tenant.api.get("/deliveries", params={"webhook_id": webhook["id"]})).json()
    assert listing["data"] == []


# --- a webhook turned off or deleted while its delivery is retrying -----------------------


async def test_turning_a_webhook_off_mid_retry_cancels_the_delivery(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    # Slow failures: attempt 1 is still in flight when the PATCH lands, so exactly one
    # request is expected whatever the retry jitter.
    receiver.default = Answer(500, delay=0.5)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    await received(receiver, 1)

    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})
    assert response.status_code == 200, response.text
    assert response.json()["disabled_reason"] == "manual"

    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "cancelled"
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.requests) == 1
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "cancelled"
    assert delivery["attempt_count"] == 1
    assert delivery["completed_at"] is not None
    assert delivery["next_attempt_at"] is None


async def test_deleting_a_webhook_cancels_its_pending_delivery(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500, delay=0.5)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    await received(receiver, 1)

    response = await tenant.api.delete(f"/webhooks/{webhook['id']}")
    assert response.status_code == 204, response.text

    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "cancelled"
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.requests) == 1
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")  # the history stays readable
    assert delivery["status"] == "cancelled"
    assert delivery["attempt_count"] == 1
    assert delivery["next_attempt_at"] is None
    assert (await tenant.api.get(f"/webhooks/{webhook['id']}")).status_code == 404


# --- manual retry -------------------------------------------------------------------------


async def test_a_failed_delivery_retried_by_hand_gets_a_fresh_budget_and_succeeds(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500)
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    failed = await wait_for_delivery(tenant, delivery_id)
    assert failed["status"] == "failed"
    assert failed["attempt_count"] == 5
    assert len(receiver.requests) == 5

    async with await tenant.client(Scope.DELIVERIES_READ) as reader:
        assert_problem(await reader.post(f"/deliveries/{delivery_id}/retry"), 403)
    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "failed"

    # A slow 200: attempt 6 is still in flight while the delivery is read back as pending.
    receiver.default = Answer(200, delay=0.5)
    async with await tenant.client(Scope.DELIVERIES_RETRY) as retrier:
        response = await retrier.post(f"/deliveries/{delivery_id}/retry")
    assert response.status_code == 202, response.text
    assert response.json() == {"delivery_id": delivery_id}
    pending = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert pending["status"] == "pending"
    assert pending["completed_at"] is None

    done = await wait_for_delivery(tenant, delivery_id, "succeeded", "failed", "cancelled")
    assert done["status"] == "succeeded"
    assert done["attempt_count"] == 6
    assert done["last_status_code"] == 200
    assert [attempt["number"] for attempt in done["attempts"]] == [1, 2, 3, 4, 5, 6]
    assert [attempt["status_code"] for attempt in done["attempts"]] == [500] * 5 + [200]
    requests = await received(receiver, 6)
    assert len(requests) == 6
    assert {request.headers["webhook-id"] for request in requests} == {delivery_id}


async def test_a_succeeded_delivery_cannot_be_retried(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"

    assert_problem(await tenant.api.post(f"/deliveries/{delivery_id}/retry"), 409)

    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1


async def test_a_pending_delivery_cannot_be_retried(tenant: Tenant) -> None:
    await tenant.subscribed_webhook(url="https://hooks.example.com/store")
    delivery_id = await post_purchase(tenant)  # no worker runs: it stays pending

    assert_problem(await tenant.api.post(f"/deliveries/{delivery_id}/retry"), 409)

    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "pending"
    assert delivery["attempt_count"] == 0


async def test_a_failed_ping_cannot_be_retried_on_the_webhook_it_turned_off(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500)
    webhook = await tenant.webhook(url=receiver.url)
    delivery_id = await ping(tenant, webhook["id"])
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "failed"
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["active"] is False

    assert_problem(await tenant.api.post(f"/deliveries/{delivery_id}/retry"), 409)
    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "failed"

    # Turned back on, the ping may be retried: once more, still without retries.
    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": True})
    assert response.status_code == 200, response.text
    response = await tenant.api.post(f"/deliveries/{delivery_id}/retry")
    assert response.status_code == 202, response.text
    await received(receiver, 2)
    delivery = await wait_for_delivery(tenant, delivery_id, "failed")
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.requests) == 2
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "failed"
    assert [attempt["number"] for attempt in delivery["attempts"]] == [1, 2]
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["disabled_reason"] == "test_failed"


async def test_a_cancelled_delivery_of_a_deleted_webhook_cannot_be_retried(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook(url="https://hooks.example.com/store")
    delivery_id = await post_purchase(tenant)
    assert (await tenant.api.delete(f"/webhooks/{webhook['id']}")).status_code == 204
    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "cancelled"

    assert_problem(await tenant.api.post(f"/deliveries/{delivery_id}/retry"), 409)

    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "cancelled"


async def test_retrying_an_unknown_delivery_is_not_found(tenant: Tenant) -> None:
    assert_problem(await tenant.api.post("/deliveries/dlv_does_not_exist/retry"), 404)


async def test_retrying_another_accounts_delivery_is_not_found(
    tenant: Tenant, other: Tenant
) -> None:
    webhook = await other.webhook()
    await other.action(webhook["id"], event_type="purchase", app_id="app_42")
    delivery_id = await post_purchase(other)
    assert (await other.api.delete(f"/webhooks/{webhook['id']}")).status_code == 204
    # Cancelled: the owner would get 409, the stranger must see nothing at all.
    assert (await other.fetch(f"/deliveries/{delivery_id}"))["status"] == "cancelled"

    assert_problem(await tenant.api.post(f"/deliveries/{delivery_id}/retry"), 404)

    assert (await other.fetch(f"/deliveries/{delivery_id}"))["status"] == "cancelled"


# --- jobs that run twice ------------------------------------------------------------------


async def test_a_duplicated_job_sends_its_attempt_once(
    tenant: Tenant, receiver: Receiver, job_ctx: dict[str, Any]
) -> None:
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    # POST /events queued the first attempt's job under the delivery's id.
    assert await Job(delivery_id, job_ctx["redis"]).status() == JobStatus.queued

    await asyncio.gather(deliver(job_ctx, delivery_id), deliver(job_ctx, delivery_id))

    assert len(receiver.requests) == 1
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1
    assert [attempt["number"] for attempt in delivery["attempts"]] == [1]

    await deliver(job_ctx, delivery_id)  # a late re-run after success

    assert len(receiver.requests) == 1
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "succeeded"
    assert len(delivery["attempts"]) == 1


# --- the sweeper rebuilds the queue from the database -------------------------------------


@pytest.fixture
async def lost_job(tenant: Tenant, receiver: Receiver, settings: Settings) -> str:
    """A purchase the API accepted and queued, whose job Redis then lost; no worker yet."""
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant)
    await flush_redis(settings.redis_url)
    return delivery_id


async def test_a_worker_starting_after_redis_lost_its_jobs_still_delivers(
    tenant: Tenant, receiver: Receiver, lost_job: str, worker: Worker
) -> None:
    # `lost_job` comes before `worker` in the signature, so Redis is flushed before the
    # worker starts; only the sweeper's start-up run can find the delivery.
    # Promptly: at start-up, not at a later tick of the sweeper's 5-second cron.
    delivery = await wait_for_delivery(tenant, lost_job, timeout=3.0)
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1
    [request] = receiver.requests
    assert request.headers["webhook-id"] == lost_job


async def test_sweep_requeues_each_due_pending_delivery_once(
    tenant: Tenant, settings: Settings, job_ctx: dict[str, Any]
) -> None:
    hooks = [
        await tenant.subscribed_webhook(url=f"https://hooks.example.com/{name}")
        for name in ("a", "b", "gone")
    ]
    accepted = await tenant.event()
    assert accepted["deliveries"] == 3
    listing = (await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})).json()
    by_webhook = {row["webhook_id"]: row["id"] for row in listing["data"]}
    assert (await tenant.api.delete(f"/webhooks/{hooks[2]['id']}")).status_code == 204
    pending = [by_webhook[hooks[0]["id"]], by_webhook[hooks[1]["id"]]]

    assert await sweep(job_ctx) == 0  # POST /events queued them already

    await flush_redis(settings.redis_url)
    assert await sweep(job_ctx) == 2  # the cancelled delivery is not among them
    assert await sweep(job_ctx) == 0
    for delivery_id in pending:
        assert await Job(delivery_id, job_ctx["redis"]).status() == JobStatus.queued
    gone = Job(by_webhook[hooks[2]["id"]], job_ctx["redis"])
    assert await gone.status() == JobStatus.not_found


async def test_sweep_leaves_a_webhook_with_attempts_in_flight_to_their_hand_off(
    tenant: Tenant, settings: Settings, job_ctx: dict[str, Any]
) -> None:
    await tenant.subscribed_webhook(url="https://hooks.example.com/busy")
    first = await post_purchase(tenant, data={"order_id": "o-1"})
    second = await post_purchase(tenant, data={"order_id": "o-2"})
    assert await worker_resources.of(job_ctx).bookkeeper.claim(first) is not None  # in flight now
    await flush_redis(settings.redis_url)

    # The record of the attempt in flight will hand `second` on; a job would be
    # turned away.
    assert await sweep(job_ctx) == 0

    async with worker_resources.of(
        job_ctx
    ).engine.begin() as connection:  # the attempt's lease runs out
        await connection.execute(
            update(Delivery).where(Delivery.id == first).values(leased_until=utcnow())
        )
    assert await sweep(job_ctx) == 1  # nothing in flight: `second` is queued again
    assert await Job(second, job_ctx["redis"]).status() == JobStatus.queued


# --- outbound safety (docs/api.md#outbound-safety) ----------------------------------------


class TestPrivateNetworksRefused:
    """The same app and worker, with STOREHOOKS_ALLOW_PRIVATE_NETWORKS false."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Two attempts are enough to see every attempt refused, and keep the test quick.
        return settings.model_copy(update={"allow_private_networks": False, "max_attempts": 2})

    async def test_a_host_name_resolving_to_loopback_is_refused_at_each_attempt(
        self, tenant: Tenant, receiver: Receiver, worker: Worker
    ) -> None:
        # A name, not an IP literal: creation cannot know where it resolves, so it passes.
        await tenant.subscribed_webhook(url=f"http://localhost:{receiver.port}/hook")
        delivery_id = await post_purchase(tenant)

        delivery = await wait_for_delivery(tenant, delivery_id)
        assert delivery["status"] == "failed"
        assert delivery["attempt_count"] == 2
        assert delivery["last_status_code"] is None
        error = delivery["last_error"]
        assert "127.0.0.1" in error or "::1" in error, error
        assert "loopback" in error or "private" in error, error
        for attempt in delivery["attempts"]:
            assert attempt["status_code"] is None
            assert "127.0.0.1" in attempt["error"] or "::1" in attempt["error"]
        assert receiver.requests == []

    @pytest.mark.parametrize(
        "host", ["127.0.0.1", "[::1]", "10.0.0.1", "169.254.169.254", "2130706433"]
    )
    async def test_an_ip_literal_in_a_refused_range_is_refused_at_create_and_update(
        self, tenant: Tenant, receiver: Receiver, host: str
    ) -> None:
        url = f"http://{host}:{receiver.port}/"
        body = {"name": "inside", "url": url, "http_method": "POST", "payload_type": "json"}

        assert error_locs(await tenant.api.post("/webhooks", json=body)) == [["body", "url"]]
        listing = (await tenant.api.get("/webhooks")).json()
        assert listing["data"] == []

        webhook = await tenant.webhook()
        response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"url": url})
        assert error_locs(response) == [["body", "url"]]
        assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["url"] == webhook["url"]


@pytest.mark.parametrize(("interval", "seconds"), [(5, set(range(0, 60, 5))), (20, {0, 20, 40})])
def test_the_sweep_interval_setting_schedules_the_sweeper(
    settings: Settings, interval: int, seconds: set[int]
) -> None:
    """STOREHOOKS_SWEEP_INTERVAL_SECONDS: the seconds of each minute the sweeper runs at."""
    options = worker_options(settings.model_copy(update={"sweep_interval_seconds": interval}))
    (sweeper,) = [job for job in options["cron_jobs"] if job.coroutine is sweep]
    assert sweeper.second == seconds
    assert sweeper.run_at_startup


@pytest.mark.parametrize("interval", [0, 7, 61])
def test_a_sweep_interval_that_does_not_divide_a_minute_is_refused(interval: int) -> None:
    with pytest.raises(ValidationError, match="sweep_interval_seconds"):
        Settings(sweep_interval_seconds=interval)
