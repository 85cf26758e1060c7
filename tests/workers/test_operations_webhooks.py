"""Operations webhooks (docs/api.md#operations-webhooks): a real receiver as an account's
operations endpoint gets webhook.failing at 50/75/90 %, webhook.disabled with its reason,
webhook.recovered, delivery.exhausted and webhook.test_failed, each signed like any
notification and each also a notice; an operations endpoint's own failures send nothing
(no loops), and another account's endpoint gets nothing."""

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook as Verifier

from app import resources
from app.core.db import utcnow
from app.core.models import Webhook
from app.core.settings import Settings
from tests.conftest import WEBHOOK_BODY, Tenant, free_port
from tests.support.databases import fetch_all
from tests.support.receivers import Answer, Received, Receiver
from tests.workers.conftest import post_purchase, received, wait_for_delivery

QUIET_SECONDS = 1.5  # three times the retry cap: a further attempt would have come by then


@pytest.fixture
def max_attempts() -> int:
    """Enough for the failing streaks below; a test parametrizes it to use a budget up."""
    return 50


@pytest.fixture
def settings(settings: Settings, max_attempts: int) -> Settings:
    return settings.model_copy(
        update={
            "auto_disable_after_hours": 1.0,  # moved through by setting failing_since
            "retry_max_delay_seconds": 0.3,
            "max_attempts": max_attempts,
        }
    )


@pytest.fixture
def operations() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def operations_webhook(tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    body = {**WEBHOOK_BODY, "name": "ops", "url": url, **fields}
    response = await tenant.api.post("/operations-webhooks", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/operations-webhooks/{response.json()['id']}"
    created: dict[str, Any] = response.json()
    return created


def verified(endpoint: dict[str, Any], request: Received) -> dict[str, Any]:
    """The payload of a JSON notification, after its signature and md5 are checked."""
    Verifier(endpoint["secret"]).verify(request.body, request.headers)
    body = json.loads(request.body)
    assert set(body) == {"payload", "md5"}
    payload: dict[str, Any] = body["payload"]
    return payload


async def payloads(
    endpoint: dict[str, Any], receiver: Receiver, count: int
) -> list[dict[str, Any]]:
    return [verified(endpoint, request) for request in await received(receiver, count)]


async def notices(tenant: Tenant) -> list[dict[str, Any]]:
    """Oldest first."""
    listed: list[dict[str, Any]] = (await tenant.fetch("/notices"))["data"]
    return listed[::-1]


async def failing_for(tenant: Tenant, webhook_id: str, hours: float) -> None:
    """Moves the failure clock: the webhook has failed since `hours` ago."""
    async with resources.of(tenant.app).engine.begin() as connection:
        await connection.execute(
            update(Webhook)
            .where(Webhook.id == webhook_id)
            .values(failing_since=utcnow() - timedelta(hours=hours))
        )


async def until_failing(settings: Settings, webhook_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [(since,)] = await fetch_all(
            settings.database_url,
            "SELECT failing_since FROM webhooks WHERE id = :id",
            id=webhook_id,
        )
        if since is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook's failure clock never started")


def assert_sent_as(payload: dict[str, Any], notice: dict[str, Any]) -> None:
    """An operational event is its notice: the same id, type and facts."""
    assert payload["notice_id"] == notice["id"]
    assert payload["type"] == notice["type"]
    assert payload["webhook_id"] == notice["webhook_id"]
    facts = {
        key: notice[key]
        for key in ("reason", "percent", "delivery_id", "error_class")
        if notice[key] is not None
    }
    assert payload["data"] == facts
    assert isinstance(payload["epoch_timestamp"], int)


async def test_failing_is_announced_at_50_75_and_90_percent_then_disabled(
    tenant: Tenant, operations: Receiver, receiver: Receiver, settings: Settings, worker: object
) -> None:
    endpoint = await operations_webhook(tenant, operations.url)
    receiver.default = Answer(500)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery = await post_purchase(tenant)
    await until_failing(settings, webhook["id"])

    for count, hours in enumerate((0.55, 0.8, 0.95), start=1):
        await failing_for(tenant, webhook["id"], hours)
        await received(operations, count)
    await failing_for(tenant, webhook["id"], 1.1)
    sent = await payloads(endpoint, operations, 4)

    assert [(p["type"], p["data"].get("percent")) for p in sent] == [
        ("webhook.failing", 50),
        ("webhook.failing", 75),
        ("webhook.failing", 90),
        ("webhook.disabled", None),
    ]
    assert sent[0]["data"] == {"percent": 50, "error_class": "http_status"}
    assert sent[3]["data"] == {"reason": "failing"}
    assert {p["webhook_id"] for p in sent} == {webhook["id"]}
    listed = await notices(tenant)
    assert [n["kind"] for n in listed] == ["failing", "failing", "failing", "disabled"]
    for payload, notice in zip(sent, listed, strict=True):
        assert_sent_as(payload, notice)
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "failing")
    assert (await wait_for_delivery(tenant, delivery))["status"] == "cancelled"
    # Each went out as a delivery of its own, kind operational, naming its notice.
    ops_deliveries = (
        await tenant.api.get("/deliveries", params={"webhook_id": endpoint["id"]})
    ).json()["data"][::-1]
    assert [(d["kind"], d["status"], d["event_id"]) for d in ops_deliveries] == [
        ("operational", "succeeded", None)
    ] * 4
    assert [d["notice_id"] for d in ops_deliveries] == [n["id"] for n in listed]
    assert [r.headers["webhook-id"] for r in operations.requests] == [
        d["id"] for d in ops_deliveries
    ]
    await asyncio.sleep(QUIET_SECONDS)
    assert len(operations.requests) == 4


async def test_recovered_follows_a_failing_notice_at_the_first_success(
    tenant: Tenant, operations: Receiver, receiver: Receiver, settings: Settings, worker: object
) -> None:
    endpoint = await operations_webhook(tenant, operations.url)
    receiver.default = Answer(500)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery = await post_purchase(tenant)
    await until_failing(settings, webhook["id"])
    await failing_for(tenant, webhook["id"], 0.6)
    await received(operations, 1)
    receiver.default = Answer(200)

    await wait_for_delivery(tenant, delivery, "succeeded")
    failing, recovered = await payloads(endpoint, operations, 2)

    assert failing["type"] == "webhook.failing"
    assert recovered["type"] == "webhook.recovered"
    assert recovered["data"] == {"delivery_id": delivery}
    assert [n["kind"] for n in await notices(tenant)] == ["failing", "recovered"]
    assert_sent_as(recovered, (await notices(tenant))[1])
    [(since, told)] = await fetch_all(
        settings.database_url,
        "SELECT failing_since, failing_notified_percent FROM webhooks WHERE id = :id",
        id=webhook["id"],
    )
    assert (since, told) == (None, 0)  # a new streak is announced afresh


@pytest.mark.parametrize("max_attempts", [3])
async def test_a_delivery_that_used_its_last_attempt_is_exhausted(
    tenant: Tenant, operations: Receiver, receiver: Receiver, worker: object
) -> None:
    endpoint = await operations_webhook(tenant, operations.url)
    receiver.default = Answer(503)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery = await post_purchase(tenant)

    failed = await wait_for_delivery(tenant, delivery, "failed")
    [payload] = await payloads(endpoint, operations, 1)

    assert failed["attempt_count"] == 3
    assert payload["type"] == "delivery.exhausted"
    assert payload["webhook_id"] == webhook["id"]
    assert payload["data"] == {"delivery_id": delivery, "error_class": "http_status"}
    [notice] = await notices(tenant)
    assert (notice["kind"], notice["type"]) == ("delivery_exhausted", "delivery.exhausted")
    assert_sent_as(payload, notice)
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["active"] is True


async def test_a_failed_test_ping_is_test_failed(
    tenant: Tenant, operations: Receiver, receiver: Receiver, worker: object
) -> None:
    endpoint = await operations_webhook(tenant, operations.url)
    receiver.default = Answer(500)
    webhook = await tenant.webhook(url=receiver.url)
    ping = (await tenant.api.post(f"/webhooks/{webhook['id']}/test")).json()["delivery_id"]

    await wait_for_delivery(tenant, ping, "failed")
    [payload] = await payloads(endpoint, operations, 1)

    assert payload["type"] == "webhook.test_failed"
    assert payload["data"] == {"delivery_id": ping, "error_class": "http_status"}
    [notice] = await notices(tenant)  # test_failed only: no webhook.disabled beside it
    assert_sent_as(payload, notice)
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "test_failed")


async def test_gone_is_disabled_with_its_reason_in_the_endpoints_own_format(
    tenant: Tenant, operations: Receiver, receiver: Receiver, worker: object
) -> None:
    endpoint = await operations_webhook(tenant, operations.url, payload_type="form")
    receiver.default = Answer(410)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    await post_purchase(tenant)

    [request] = await received(operations, 1)

    Verifier(endpoint["secret"]).verify(request.body, request.headers, json_parse=False)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.body.decode()))
    [notice] = await notices(tenant)
    assert form == {
        "payload[type]": "webhook.disabled",
        "payload[epoch_timestamp]": form["payload[epoch_timestamp]"],
        "payload[notice_id]": notice["id"],
        "payload[webhook_id]": webhook["id"],
        "payload[data][reason]": "gone",
        "md5": form["md5"],
    }
    assert (notice["kind"], notice["reason"]) == ("disabled", "gone")


async def test_an_operations_endpoints_own_failures_send_nothing(
    tenant: Tenant, receiver: Receiver, settings: Settings, worker: object
) -> None:
    """Its exhausted delivery, its failing streak and its own switch-off are notices only:
    the number of deliveries stays what the webhook's one failure made."""
    dead = f"http://127.0.0.1:{free_port()}/ops"  # nothing listens: connection refused
    endpoint = await operations_webhook(tenant, dead)
    second = await operations_webhook(tenant, dead)  # would ping-pong with the first
    receiver.default = Answer(410)
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    await post_purchase(tenant)
    await until_failing(settings, endpoint["id"])
    for hours in (0.6, 1.1):  # failing, then turned off
        await failing_for(tenant, endpoint["id"], hours)
        await failing_for(tenant, second["id"], hours)
        await asyncio.sleep(QUIET_SECONDS)

    listed = await notices(tenant)
    about = {(n["webhook_id"], n["kind"], n["reason"]) for n in listed}
    assert (webhook["id"], "disabled", "gone") in about
    for ops in (endpoint, second):
        assert (ops["id"], "failing", None) in about
        assert (ops["id"], "disabled", "failing") in about  # never off silently
        stored = await tenant.fetch(f"/operations-webhooks/{ops['id']}")
        assert (stored["active"], stored["disabled_reason"]) == (False, "failing")
    everything = (await tenant.api.get("/deliveries", params={"limit": 200})).json()["data"]
    assert sorted(d["kind"] for d in everything) == ["event", "operational", "operational"]
    assert {d["status"] for d in everything if d["kind"] == "operational"} == {"cancelled"}
    count = len(listed)
    await asyncio.sleep(QUIET_SECONDS)
    assert len(await notices(tenant)) == count


async def test_another_accounts_operations_endpoint_hears_nothing(
    tenant: Tenant,
    other: Tenant,
    operations: Receiver,
    receiver: Receiver,
    worker: object,
) -> None:
    with Receiver() as theirs_receiver:
        mine = await operations_webhook(tenant, operations.url)
        await operations_webhook(other, theirs_receiver.url)
        switched_off = await operations_webhook(tenant, theirs_receiver.url, active=False)
        receiver.default = Answer(500)
        webhook = await tenant.webhook(url=receiver.url)
        ping = (await tenant.api.post(f"/webhooks/{webhook['id']}/test")).json()["delivery_id"]
        await wait_for_delivery(tenant, ping, "failed")

        [payload] = await payloads(mine, operations, 1)
        await asyncio.sleep(QUIET_SECONDS)

        assert payload["type"] == "webhook.test_failed"
        assert theirs_receiver.requests == []  # neither B's endpoint nor A's inactive one
        assert await other.fetch("/notices") == {"data": [], "next_cursor": None}
        assert (
            await tenant.api.get("/deliveries", params={"webhook_id": switched_off["id"]})
        ).json()["data"] == []
