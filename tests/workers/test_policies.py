"""Delivery policies (docs/api.md#delivery-policies) with a real worker, Redis and
receivers: the success rule, ordered delivery per key (one worker, two workers, a crash
mid-sequence), the in-flight limit and first attempts ahead of a dead endpoint's backlog,
and recovery."""

import asyncio
import itertools
import json
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from app import resources
from app.core import queue
from app.core.db import read_only, utcnow
from app.core.enums import DeliveryKind, DeliveryStatus
from app.core.ids import new_id
from app.core.models import Delivery
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.databases import fetch_all
from tests.support.receivers import Answer, Received, Receiver
from tests.workers.conftest import post_purchase, received, running_worker, wait_for_delivery
from workers import resources as worker_resources
from workers.sweeper import sweep


def order_id(request: Received) -> str:
    order: str = json.loads(request.body)["payload"]["data"]["order_id"]
    return order


def successes(requests: list[Received]) -> list[str]:
    return [order_id(request) for request in requests if request.answered == 200]


def assert_in_order(requests: list[Received], orders: list[str]) -> None:
    """No request for an order arrives before the previous order has succeeded."""
    timeline = [(order_id(request), request.answered) for request in requests]
    for earlier, later in itertools.pairwise(orders):
        done = timeline.index((earlier, 200))
        first_try = next(i for i, (order, _) in enumerate(timeline) if order == later)
        assert first_try > done, f"{later} was sent before {earlier} succeeded: {timeline}"


# --- success_statuses -------------------------------------------------------------------


async def test_2xx_accepts_204_while_200_does_not(tenant: Tenant, worker: object) -> None:
    with Receiver() as lenient_receiver, Receiver() as strict_receiver:
        lenient_receiver.default = strict_receiver.default = Answer(204, b"")
        lenient = await tenant.subscribed_webhook(url=lenient_receiver.url, success_statuses="2xx")
        strict = await tenant.subscribed_webhook(url=strict_receiver.url)
        assert strict["success_statuses"] == "200"
        accepted = await tenant.event()
        listing = await tenant.fetch(f"/deliveries?event_id={accepted['id']}")
        by_webhook = {delivery["webhook_id"]: delivery["id"] for delivery in listing["data"]}

        done = await wait_for_delivery(tenant, by_webhook[lenient["id"]], "succeeded")
        assert (done["attempt_count"], done["last_status_code"]) == (1, 204)
        failed = await wait_for_delivery(tenant, by_webhook[strict["id"]], "failed")
        assert failed["attempt_count"] == 5
        assert {attempt["status_code"] for attempt in failed["attempts"]} == {204}
        assert failed["last_error"] == (
            "The receiver answered HTTP 204; only 200 counts as success."
        )


# --- ordered delivery -------------------------------------------------------------------


async def test_ordered_events_of_one_key_arrive_in_order_while_another_key_goes_on(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.answer_when(b'"o-1"', 500, 500)  # the first event fails twice
    webhook = await tenant.subscribed_webhook(url=receiver.url, ordered=True)
    first = await post_purchase(tenant, ordering_key="cus_1", data={"order_id": "o-1"})
    second = await post_purchase(tenant, ordering_key="cus_1", data={"order_id": "o-2"})
    third = await post_purchase(tenant, ordering_key="cus_1", data={"order_id": "o-3"})
    await post_purchase(tenant, ordering_key="cus_2", data={"order_id": "o-4"})

    held = await tenant.fetch(f"/deliveries/{third}")
    assert (held["status"], held["waiting_for"]) == ("pending", second)
    assert (await tenant.fetch(f"/deliveries/{second}"))["waiting_for"] == first

    requests = await received(receiver, 6)
    timeline = [(order_id(request), request.answered) for request in requests]
    assert [entry for entry in timeline if entry[0] != "o-4"] == [
        ("o-1", 500),
        ("o-1", 500),
        ("o-1", 200),
        ("o-2", 200),
        ("o-3", 200),
    ]
    # The other key was not held up by the first one's retries.
    assert timeline.index(("o-4", 200)) < timeline.index(("o-1", 200))
    done = await wait_for_delivery(tenant, third, "succeeded")
    assert done["waiting_for"] is None
    assert webhook["ordered"] is True


async def test_an_unordered_webhook_does_not_hold_anything_back(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.answer_when(b'"o-1"', 500, 500)
    await tenant.subscribed_webhook(url=receiver.url)  # ordered: false
    await post_purchase(tenant, ordering_key="cus_1", data={"order_id": "o-1"})
    second = await post_purchase(tenant, ordering_key="cus_1", data={"order_id": "o-2"})
    assert (await tenant.fetch(f"/deliveries/{second}"))["waiting_for"] is None
    timeline = [(order_id(r), r.answered) for r in await received(receiver, 4)]
    assert timeline.index(("o-2", 200)) < timeline.index(("o-1", 200))


async def test_ordered_across_two_workers(
    tenant: Tenant, receiver: Receiver, settings: Settings, worker: object
) -> None:
    keys = ["cus_a", "cus_b", "cus_c"]
    orders = {key: [f"{key}-{n}" for n in range(8)] for key in keys}
    for key in keys:  # each key's first event fails once, its fourth twice
        receiver.answer_when(f'"{key}-0"'.encode(), 500)
        receiver.answer_when(f'"{key}-3"'.encode(), 503, 500)
    await tenant.subscribed_webhook(url=receiver.url, ordered=True)
    async with running_worker(settings):
        for n in range(8):
            for key in keys:
                await tenant.event(ordering_key=key, data={"order_id": orders[key][n]})
        requests = await received(receiver, 24 + 9)
    for key in keys:
        mine = [request for request in requests if order_id(request).startswith(key)]
        assert successes(mine) == orders[key]
        assert_in_order(mine, orders[key])


async def test_a_crash_mid_sequence_does_not_reorder(
    tenant: Tenant, receiver: Receiver, settings: Settings, job_ctx: dict[str, Any]
) -> None:
    """A worker claims the first delivery and dies before its outcome: the next ones stay
    held until the first one's lease runs out and it is sent again."""
    await tenant.subscribed_webhook(url=receiver.url, ordered=True)
    ids = [
        await post_purchase(tenant, ordering_key="sub_9", data={"order_id": f"o-{n}"})
        for n in range(1, 4)
    ]
    crashed = await worker_resources.of(job_ctx).bookkeeper.claim(ids[0])
    assert crashed is not None and crashed.number == 1  # claimed, never sent or recorded

    async with running_worker(settings):
        await asyncio.sleep(1.5)
        assert receiver.requests == []  # the rest wait for the first
        assert (await tenant.fetch(f"/deliveries/{ids[1]}"))["waiting_for"] == ids[0]
        async with worker_resources.of(job_ctx).engine.begin() as connection:  # the lease runs out
            await connection.execute(
                update(Delivery)
                .where(Delivery.id == ids[0])
                .values(next_attempt_at=utcnow(), leased_until=utcnow())
            )
        await sweep(job_ctx)
        requests = await received(receiver, 3)
    assert [order_id(request) for request in requests] == ["o-1", "o-2", "o-3"]
    first = await wait_for_delivery(tenant, ids[0], "succeeded")
    assert [attempt["error"] is not None for attempt in first["attempts"]] == [True, False]
    assert first["attempts"][0]["error"].startswith("Interrupted")
    assert [attempt["error_class"] for attempt in first["attempts"]] == ["interrupted", None]


async def test_switching_ordering_off_releases_what_it_held(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.default = Answer(500)
    webhook = await tenant.subscribed_webhook(url=receiver.url, ordered=True)
    await post_purchase(tenant, ordering_key="k", data={"order_id": "o-1"})
    second = await post_purchase(tenant, ordering_key="k", data={"order_id": "o-2"})
    await received(receiver, 1)
    await asyncio.sleep(0.3)
    assert "o-2" not in [order_id(request) for request in receiver.requests]
    receiver.default = Answer(200)
    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"ordered": False})
    assert response.status_code == 200, response.text
    done = await wait_for_delivery(tenant, second, "succeeded")
    assert done["waiting_for"] is None


# --- max_in_flight and fair sharing -------------------------------------------------------


async def test_max_in_flight_holds_across_workers(
    tenant: Tenant, settings: Settings, worker: object
) -> None:
    with Receiver() as slow:
        slow.default = Answer(200, delay=0.3)
        await tenant.subscribed_webhook(url=slow.url, max_in_flight=3)
        async with running_worker(settings):
            for n in range(24):
                await tenant.event(data={"order_id": f"o-{n}"})
            requests = await received(slow, 24)
        assert sorted(order_id(request) for request in requests) == sorted(
            f"o-{n}" for n in range(24)
        )
        assert slow.most_in_flight == 3


async def backlog(tenant: Tenant, settings: Settings, webhook_id: str, count: int) -> None:
    """`count` due retries of the webhook, in the database and in the queue."""
    now = utcnow()
    accepted = await tenant.event(data={"order_id": "seed"})
    rows = [
        {
            "id": new_id("dlv"),
            "account_id": tenant.account_id,
            "webhook_id": webhook_id,
            "event_id": accepted["id"],
            "kind": DeliveryKind.EVENT,
            "status": DeliveryStatus.PENDING,
            "attempt_count": 1,
            "attempt_limit": 20,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(count)
    ]
    async with resources.of(tenant.app).engine.begin() as connection:
        await connection.execute(insert(Delivery), rows)
    await queue.enqueue(
        resources.of(tenant.app).redis, [queue.Attempt(row["id"], 2) for row in rows]
    )


async def most_leased(tenant: Tenant, webhook_id: str, done: asyncio.Event) -> int:
    """Samples the webhook's attempts in flight (leased, still pending) until `done`;
    returns the most seen at once."""
    most = 0
    while not done.is_set():
        async with read_only(resources.of(tenant.app).engine).connect() as connection:
            leased = await connection.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.webhook_id == webhook_id)
                .where(Delivery.status == DeliveryStatus.PENDING)
                .where(Delivery.leased_until > utcnow())
            )
        most = max(most, leased or 0)
        await asyncio.sleep(0.02)
    return most


async def arrival_times(tenant: Tenant, receiver: Receiver, events: int) -> list[float]:
    """Seconds from POST /events to arrival, for `events` events sent one by one."""
    seconds = []
    for n in range(events):
        before = len(receiver.requests)
        started = time.monotonic()
        await tenant.event(app_id="app_healthy", data={"order_id": f"h-{n}"})
        await received(receiver, before + 1)
        seconds.append(time.monotonic() - started)
    return seconds


async def test_a_dead_endpoints_backlog_does_not_hold_up_a_healthy_one(
    tenant: Tenant, settings: Settings, worker: object
) -> None:
    with Receiver() as healthy, Receiver() as dead:
        dead.default = Answer(503, delay=1.0)  # hangs a second, then fails
        await tenant.subscribed_webhook(url=healthy.url, action={"app_id": "app_healthy"})
        stuck = await tenant.subscribed_webhook(url=dead.url, max_in_flight=10)
        quiet = await arrival_times(tenant, healthy, 10)

        await backlog(tenant, settings, stuck["id"], 10_000)
        measured = asyncio.Event()
        leased = asyncio.create_task(most_leased(tenant, stuck["id"], measured))
        busy = await arrival_times(tenant, healthy, 20)
        measured.set()
        most_at_once = await leased

        [(still_pending,)] = await fetch_all(
            settings.database_url,
            "SELECT count(*) FROM deliveries WHERE webhook_id = :id AND status = 'pending'",
            id=stuck["id"],
        )
        print(
            f"\nhealthy hook, event to arrival: median {statistics.median(quiet) * 1000:.0f} ms"
            f" without a backlog, {statistics.median(busy) * 1000:.0f} ms"
            f" (max {max(busy) * 1000:.0f} ms) beside 10,000 due retries to a dead endpoint"
        )
        # Every healthy event went through while the dead endpoint's backlog was still
        # there, and the dead endpoint never had more than its 10 attempts at once (as
        # the database counts them: the receiver may still be closing a request that
        # the worker has given up on).
        assert len(healthy.requests) == 30
        assert still_pending >= 9_000
        assert most_at_once == 10


# --- recovery -----------------------------------------------------------------------------


async def test_recover_sends_exactly_the_failed_deliveries_of_the_window(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.default = Answer(500)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    ids = [await post_purchase(tenant, data={"order_id": f"o-{n}"}) for n in range(3)]
    for delivery_id in ids:
        await wait_for_delivery(tenant, delivery_id, "failed")
    old = utcnow() - timedelta(days=20)
    async with resources.of(tenant.app).engine.begin() as connection:  # o-0 failed long ago
        await connection.execute(
            update(Delivery).where(Delivery.id == ids[0]).values(created_at=old)
        )
    receiver.requests.clear()
    receiver.default = Answer(200)

    since = (utcnow() - timedelta(days=1)).isoformat()
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json={"since": since})
    assert response.status_code == 202, response.text
    assert response.json() == {"deliveries": 2}
    for delivery_id in ids[1:]:
        done = await wait_for_delivery(tenant, delivery_id, "succeeded")
        assert done["attempt_count"] == 6  # five failed, then one more with a fresh budget
    await asyncio.sleep(0.5)
    assert sorted(order_id(request) for request in receiver.requests) == ["o-1", "o-2"]
    assert (await tenant.fetch(f"/deliveries/{ids[0]}"))["status"] == "failed"
