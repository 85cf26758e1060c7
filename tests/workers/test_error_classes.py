"""Error classes (docs/api.md#error-classes): every failed attempt says why in one word
code can act on, the delivery carries its last attempt's, `GET /deliveries` filters by
it, and the attempts metric counts by it. The classes of timeouts, TLS, refused
connections, redirects, private targets, interrupted attempts and unrenderable payloads
are asserted where those failures are tested (test_outcomes.py, test_ssrf_corners.py,
test_policies.py, test_delivery.py); here the rest, end to end."""

import socket

import httpx
import pytest
from arq.worker import Worker
from prometheus_client import REGISTRY

from app.core.enums import ErrorClass
from tests.conftest import Tenant, free_port
from tests.support.problems import error_locs
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery
from workers.deliver import classify_status, describe_failure

MAX_ATTEMPTS = 5  # tests/workers/conftest.py


def attempts_counted(label: str) -> float:
    return REGISTRY.get_sample_value("storehooks_attempts_total", {"outcome": label}) or 0.0


async def failed_delivery(tenant: Tenant, url: str, app_id: str = "app_42") -> dict[str, object]:
    await tenant.subscribed_webhook(url=url, action={"app_id": app_id})
    delivery_id = await post_purchase(tenant, app_id=app_id)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "failed", delivery
    return delivery


async def test_a_name_that_does_not_resolve_is_dns(tenant: Tenant, worker: Worker) -> None:
    before = attempts_counted("dns")
    delivery = await failed_delivery(tenant, "http://nonexistent.invalid/hook")
    assert delivery["last_error_class"] == "dns"
    assert delivery["last_error"] == (
        "Could not resolve the host nonexistent.invalid (Name or service not known)."
    )
    assert attempts_counted("dns") - before == MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        pytest.param(Answer(429), "rate_limited", id="429-without-retry-after"),
        pytest.param(Answer(503), "http_status", id="503-without-retry-after"),
        pytest.param(
            Answer(503, headers={"Retry-After": "0"}), "rate_limited", id="503-retry-after"
        ),
        pytest.param(Answer(500, headers={"Retry-After": "0"}), "http_status", id="500"),
    ],
)
async def test_answers_are_classed_by_status_and_retry_after(
    tenant: Tenant, receiver: Receiver, worker: Worker, answer: Answer, error_class: str
) -> None:
    receiver.default = answer
    delivery = await failed_delivery(tenant, receiver.url)
    assert delivery["last_error_class"] == error_class
    attempts = delivery["attempts"]
    assert isinstance(attempts, list)
    assert [attempt["error_class"] for attempt in attempts] == [error_class] * MAX_ATTEMPTS


async def test_deliveries_are_filtered_by_their_last_error_class(
    tenant: Tenant, other: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.default = Answer(500)
    by_status = await failed_delivery(tenant, receiver.url)
    refused = await failed_delivery(tenant, f"http://127.0.0.1:{free_port()}/hook", "app_43")
    await failed_delivery(other, f"http://127.0.0.1:{free_port()}/hook")  # not ours

    async def listed(**params: str) -> list[object]:
        response = await tenant.api.get("/deliveries", params=params)
        assert response.status_code == 200, response.text
        return [delivery["id"] for delivery in response.json()["data"]]

    assert await listed(status="failed", error_class="connect") == [refused["id"]]
    assert await listed(error_class="http_status") == [by_status["id"]]
    assert await listed(status="pending", error_class="connect") == []
    assert await listed(error_class="tls") == []


async def test_an_unknown_error_class_is_refused_naming_the_parameter(tenant: Tenant) -> None:
    response = await tenant.api.get("/deliveries", params={"error_class": "flaky"})
    assert error_locs(response) == [["query", "error_class"]]


async def test_a_success_counts_as_succeeded_and_has_no_class(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    before = attempts_counted("succeeded")
    await tenant.subscribed_webhook(url=receiver.url)
    delivery = await wait_for_delivery(tenant, await post_purchase(tenant))
    assert delivery["status"] == "succeeded"
    assert delivery["last_error_class"] is None
    assert [attempt["error_class"] for attempt in delivery["attempts"]] == [None]
    assert attempts_counted("succeeded") - before == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, None, ErrorClass.RATE_LIMITED),
        (429, "5", ErrorClass.RATE_LIMITED),
        (503, "Wed, 21 Oct 2026 07:28:00 GMT", ErrorClass.RATE_LIMITED),
        (503, None, ErrorClass.HTTP_STATUS),
        (500, "5", ErrorClass.HTTP_STATUS),
        (302, None, ErrorClass.HTTP_STATUS),
        (204, None, ErrorClass.HTTP_STATUS),
    ],
)
def test_classify_status(status: int, retry_after: str | None, expected: ErrorClass) -> None:
    assert classify_status(status, retry_after) is expected


def test_a_resolver_error_under_the_transport_is_dns() -> None:
    """aiohttp wraps the resolver's gaierror; the class looks through the wrapping."""
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as lookup:
            raise httpx.ConnectError("Cannot connect to host") from lookup
    except httpx.ConnectError as exc:
        error_class, words = describe_failure(exc, timeout=2)
    assert error_class is ErrorClass.DNS
    assert words == "The host name did not resolve: Name or service not known."
