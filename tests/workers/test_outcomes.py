"""What each answer (or failure to answer) does to a delivery (docs/api.md#deliveries,
#retries): success only at exactly 200, retries up to MAX_ATTEMPTS, no redirects, timeouts,
TLS and connection failures, the stored response body, Retry-After, and the retry policy as
pure functions."""

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
from arq.worker import Worker

from app.core.retry_policy import backoff_seconds, next_delay, parse_retry_after
from app.core.settings import Settings
from tests.conftest import Tenant, free_port
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery

MAX_ATTEMPTS = 5  # tests/workers/conftest.py


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The short delivery settings, with a test's own overrides (indirect parametrization)."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return settings.model_copy(update=overrides)


def started_at(attempt: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(attempt["started_at"])


def gap_seconds(delivery: dict[str, Any]) -> float:
    """Seconds between the starts of the first and the second attempt."""
    first, second = delivery["attempts"][:2]
    return (started_at(second) - started_at(first)).total_seconds()


async def deliver_to(tenant: Tenant, url: str) -> str:
    await tenant.subscribed_webhook(url=url)
    return await post_purchase(tenant)


async def wait_for_attempt_error(
    tenant: Tenant, delivery_id: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Polls until the first attempt has been recorded with an error."""
    deadline = time.monotonic() + timeout
    while True:
        delivery: dict[str, Any] = (await tenant.api.get(f"/deliveries/{delivery_id}")).json()
        if delivery["attempts"] and delivery["attempts"][0]["error"] is not None:
            return delivery
        assert time.monotonic() < deadline, delivery
        await asyncio.sleep(0.05)


# End to end through the worker


async def test_500_500_200_succeeds_on_the_third_attempt(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.answer(500, 500, 200)
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 3
    assert delivery["last_status_code"] == 200
    assert delivery["completed_at"] is not None
    assert delivery["next_attempt_at"] is None
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    for attempt in attempts:
        assert isinstance(attempt["duration_ms"], int)
        assert attempt["duration_ms"] >= 0
    starts = [started_at(a) for a in attempts]
    assert starts[0] < starts[1] < starts[2]
    assert attempts[2]["error"] is None
    assert all(a["error"] is not None and "500" in a["error"] for a in attempts[:2])
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("status", [201, 204])
async def test_other_2xx_answers_are_failures(
    tenant: Tenant, receiver: Receiver, worker: Worker, status: int
) -> None:
    receiver.default = Answer(status, body=b"")  # a 204 carries no body
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] == status
    assert delivery["completed_at"] is not None
    assert [a["status_code"] for a in delivery["attempts"]] == [status] * MAX_ATTEMPTS
    assert [a["number"] for a in delivery["attempts"]] == list(range(1, MAX_ATTEMPTS + 1))
    assert len(receiver.requests) == MAX_ATTEMPTS
    await asyncio.sleep(1.0)  # longer than the 0.5 s backoff cap: no sixth attempt comes
    assert len(receiver.requests) == MAX_ATTEMPTS
    later = (await tenant.api.get(f"/deliveries/{delivery_id}")).json()
    assert later["attempt_count"] == MAX_ATTEMPTS


async def test_always_500_fails_after_max_attempts(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500, body=b"boom")
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] == 500
    assert "500" in delivery["last_error"]
    assert delivery["next_attempt_at"] is None
    assert delivery["completed_at"] is not None
    assert len(delivery["attempts"]) == MAX_ATTEMPTS
    assert all(a["response_body"] == "boom" for a in delivery["attempts"])
    assert len(receiver.requests) == MAX_ATTEMPTS


async def test_redirects_are_not_followed(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    with Receiver() as elsewhere:
        receiver.default = Answer(302, body=b"", headers={"Location": elsewhere.url})
        delivery_id = await deliver_to(tenant, receiver.url)
        delivery = await wait_for_delivery(tenant, delivery_id)
        assert delivery["status"] == "failed"
        assert delivery["last_status_code"] == 302
        assert "redirect" in delivery["last_error"].lower()
        assert [a["status_code"] for a in delivery["attempts"]] == [302] * MAX_ATTEMPTS
        assert {a["error_class"] for a in delivery["attempts"]} == {"http_status"}
        assert delivery["last_error_class"] == "http_status"
        assert len(receiver.requests) == MAX_ATTEMPTS
        assert elsewhere.requests == []


async def test_a_slow_receiver_times_out_then_a_later_attempt_succeeds(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(delay=3)  # longer than the 2 s delivery timeout
    delivery_id = await deliver_to(tenant, receiver.url)
    failing = await wait_for_attempt_error(tenant, delivery_id)
    assert failing["status"] == "pending"
    assert failing["last_status_code"] is None
    assert "timed out" in failing["last_error"].lower()
    first = failing["attempts"][0]
    assert first["status_code"] is None
    assert "timed out" in first["error"].lower()
    assert (first["error_class"], failing["last_error_class"]) == ("timeout", "timeout")
    assert 1900 <= first["duration_ms"] < 3000

    receiver.default = Answer()
    receiver.answer(200)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 200
    assert delivery["attempts"][-1]["status_code"] == 200
    assert delivery["attempts"][0]["status_code"] is None
    assert delivery["last_error_class"] is None  # succeeded
    assert delivery["attempts"][-1]["error_class"] is None


async def test_a_self_signed_certificate_fails_before_the_request(
    tenant: Tenant, self_signed_receiver: Receiver, worker: Worker
) -> None:
    delivery_id = await deliver_to(tenant, self_signed_receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed"
    assert delivery["last_status_code"] is None
    error = delivery["last_error"].lower()
    assert "tls" in error or "certificate" in error
    assert {a["error_class"] for a in delivery["attempts"]} == {"tls"}
    assert all(a["status_code"] is None for a in delivery["attempts"])
    assert self_signed_receiver.requests == []


async def test_a_refused_connection_is_a_failed_attempt(tenant: Tenant, worker: Worker) -> None:
    delivery_id = await deliver_to(tenant, f"http://127.0.0.1:{free_port()}/hook")
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] is None
    assert delivery["last_error"] == "Could not connect: connection refused."
    assert delivery["last_error_class"] == "connect"
    assert {a["error_class"] for a in delivery["attempts"]} == {"connect"}
    assert all(a["status_code"] is None for a in delivery["attempts"])


async def test_the_response_body_is_stored_cut_at_1_kib(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.answer(Answer(500, body=b"x" * 5000))
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    first, second = delivery["attempts"]
    assert first["status_code"] == 500
    assert len(first["response_body"]) == 1024
    assert first["response_body"] == "x" * 1024
    assert second["response_body"] == "ok"


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        pytest.param({"retry_max_delay_seconds": 3}, 503, id="503"),
        pytest.param({"retry_max_delay_seconds": 3}, 429, id="429"),
    ],
    indirect=["settings"],
)
async def test_retry_after_on_429_or_503_raises_the_delay(
    tenant: Tenant, receiver: Receiver, worker: Worker, status: int
) -> None:
    receiver.answer(Answer(status, headers={"Retry-After": "1.5"}))
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [status, 200]
    assert [a["error_class"] for a in delivery["attempts"]] == ["rate_limited", None]
    assert gap_seconds(delivery) >= 1.4


@pytest.mark.parametrize(
    "settings", [pytest.param({"retry_max_delay_seconds": 3}, id="cap-3s")], indirect=True
)
async def test_retry_after_on_a_500_is_ignored(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.answer(Answer(500, headers={"Retry-After": "2"}))
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert [a["error_class"] for a in delivery["attempts"]] == ["http_status", None]
    # Base 0.2 s with jitter, not the 2 s asked for; the margin is for a loaded machine.
    assert gap_seconds(delivery) < 2.0


async def test_retry_after_is_still_capped(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.answer(Answer(503, headers={"Retry-After": "3"}))  # cap is 0.5 s here
    delivery_id = await deliver_to(tenant, receiver.url)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 200]
    assert gap_seconds(delivery) < 2.0


# The retry policy as pure functions (docs/api.md#retries)

DEFAULTS = Settings(retry_base_seconds=10, retry_max_delay_seconds=14400)


@pytest.mark.parametrize(
    ("failed_attempts", "delay"),
    [
        (1, 10),
        (2, 20),
        (3, 40),
        (4, 80),
        (5, 160),
        (6, 320),
        (7, 640),
        (8, 1280),
        (9, 2560),
        (10, 5120),
        (11, 10240),
        (12, 14400),
        (19, 14400),
        (1000, 14400),
    ],
)
def test_backoff_table_for_the_defaults(failed_attempts: int, delay: float) -> None:
    assert backoff_seconds(failed_attempts, 10, 14400) == delay
    assert next_delay(DEFAULTS, failed_attempts, jitter=lambda: 1.0) == delay
    assert next_delay(DEFAULTS, failed_attempts, jitter=lambda: 0.5) == delay / 2


def test_default_jitter_stays_within_half_and_full() -> None:
    delays = [next_delay(DEFAULTS, 3) for _ in range(500)]
    assert all(20 <= delay <= 40 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("failed_attempts", "retry_after", "delay"),
    [
        (1, 30.0, 30.0),  # raised to Retry-After
        (1, 2.0, 5.0),  # a shorter Retry-After leaves the backoff alone
        (1, 99999.0, 14400.0),  # still capped
        (14, 60.0, 7200.0),
    ],
)
def test_retry_after_raises_the_delay_but_never_past_the_cap(
    failed_attempts: int, retry_after: float, delay: float
) -> None:
    assert next_delay(DEFAULTS, failed_attempts, retry_after, jitter=lambda: 0.5) == delay


@pytest.mark.parametrize(
    ("status", "header", "seconds"),
    [
        (503, "1", 1.0),
        (429, "2.5", 2.5),
        (503, " 7 ", 7.0),
        (429, "0", 0.0),
        (500, "1", None),
        (200, "1", None),
        (302, "1", None),
        (None, "1", None),
        (503, None, None),
        (503, "Wed, 21 Oct 2015 07:28:00 GMT", None),
        (503, "soon", None),
        (503, "", None),
        (503, "-1", None),
    ],
)
def test_parse_retry_after(status: int | None, header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(status, header) == seconds
