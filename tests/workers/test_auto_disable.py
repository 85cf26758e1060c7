"""Automatic disabling (docs/api.md#automatic-disabling): a 410 turns a webhook off at once,
failing every attempt for STOREHOOKS_AUTO_DISABLE_AFTER_HOURS (here shortened to about a
second) turns it off too; either way its pending deliveries end cancelled, a notice is
recorded and a metric counts it. What operations webhooks receive of it:
tests/workers/test_operations_webhooks.py."""

import asyncio
from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.databases import fetch_all
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, running_worker, wait_for_delivery

ABOUT_A_SECOND = 1.2 / 3600  # in hours


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "auto_disable_after_hours": ABOUT_A_SECOND,
            "retry_max_delay_seconds": 0.3,
            "max_attempts": 20,  # ~5 s of retries: the threshold comes first
        }
    )


def disabled_total(reason: str) -> float:
    value = REGISTRY.get_sample_value("storehooks_webhooks_disabled_total", {"reason": reason})
    return value or 0.0


async def notices(tenant: Tenant) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = (await tenant.fetch("/notices"))["data"]
    return listed


async def test_410_turns_the_webhook_off_at_once_with_a_notice(
    tenant: Tenant, receiver: Receiver, settings: Settings
) -> None:
    receiver.default = Answer(410, b"gone")
    before = disabled_total("gone")
    webhook = await tenant.subscribed_webhook(url=receiver.url, ordered=True)
    first = await post_purchase(tenant, ordering_key="k")
    held = await post_purchase(tenant, ordering_key="k")  # waits behind the first
    # The worker starts once both are in (a worker already running could send the first
    # and turn the webhook off before the second was posted, on a loaded machine).
    async with running_worker(settings):
        failed = await wait_for_delivery(tenant, first, "failed")
        cancelled = await wait_for_delivery(tenant, held, "cancelled")
    assert (failed["attempt_count"], failed["last_status_code"]) == (1, 410)
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "gone")
    assert cancelled["attempts"] == []
    assert cancelled["last_error"] == "Not sent: the webhook was turned off (gone)."
    [notice] = await notices(tenant)
    assert {key: notice[key] for key in ("webhook_id", "kind", "reason")} == {
        "webhook_id": webhook["id"],
        "kind": "disabled",
        "reason": "gone",
    }
    assert disabled_total("gone") == before + 1
    assert len(receiver.requests) == 1


async def test_a_webhook_failing_past_the_threshold_turns_off(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.default = Answer(500)
    before = disabled_total("failing")
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery = await post_purchase(tenant)

    ended = await wait_for_delivery(tenant, delivery, "failed", "cancelled")
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "failing")
    # Off at a failed attempt past the threshold, long before the budget was used up.
    assert ended["status"] == "cancelled"
    assert 3 <= len(ended["attempts"]) < 20
    assert all(attempt["status_code"] == 500 for attempt in ended["attempts"])
    first, last = ended["attempts"][0]["started_at"], ended["attempts"][-1]["started_at"]
    assert (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() >= 1.2
    *failing, notice = reversed(await notices(tenant))  # oldest first
    assert (notice["webhook_id"], notice["kind"], notice["reason"]) == (
        webhook["id"],
        "disabled",
        "failing",
    )
    # On its way there it was announced failing at half the time, three quarters, 90 %
    # (one of them may be skipped when a retry lands past the next threshold too).
    percents = [int(str(n["percent"])) for n in failing]
    assert {n["kind"] for n in failing} == {"failing"} and percents == sorted(percents)
    assert set(percents) <= {50, 75, 90} and len(percents) >= 1
    assert disabled_total("failing") == before + 1
    sent = len(receiver.requests)
    await asyncio.sleep(1.0)
    assert len(receiver.requests) == sent  # nothing more goes to a webhook that is off


async def test_a_success_ends_the_failure_streak(
    tenant: Tenant, receiver: Receiver, settings: Settings, worker: object
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    receiver.answer(500, 500)
    first = await post_purchase(tenant)
    await wait_for_delivery(tenant, first, "succeeded")
    [(failing_since,)] = await fetch_all(
        settings.database_url,
        "SELECT failing_since FROM webhooks WHERE id = :id",
        id=webhook["id"],
    )
    assert failing_since is None
    await asyncio.sleep(1.5)  # past the threshold since the first failure
    receiver.answer(500)
    second = await post_purchase(tenant)
    await wait_for_delivery(tenant, second, "succeeded")
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (True, None)
    # A loaded machine may stretch the first streak past half the threshold (0.6 s): a
    # `failing` notice then, and its `recovered`; never a `disabled` one.
    kinds = [notice["kind"] for notice in await notices(tenant)]
    assert set(kinds) <= {"failing", "recovered"}
    assert ("failing" in kinds) == ("recovered" in kinds)


async def test_a_failing_test_ping_is_still_test_failed(
    tenant: Tenant, receiver: Receiver, worker: object
) -> None:
    receiver.default = Answer(410)
    before = disabled_total("test_failed")
    webhook = await tenant.webhook(url=receiver.url)
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/test")
    await wait_for_delivery(tenant, response.json()["delivery_id"], "failed")
    stored = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "test_failed")
    [notice] = await notices(tenant)  # the failed test's own, not a `disabled` one
    assert (notice["kind"], notice["reason"]) == ("test_failed", None)
    assert disabled_total("test_failed") == before + 1
