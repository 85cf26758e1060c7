"""Every error is application/problem+json (API.md §3), and the 256 KiB body limit."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Tenant
from tests.support.problems import PROBLEM_FIELDS, assert_problem

LIMIT = 256 * 1024


def event_body(size: int) -> bytes:
    """A valid event of exactly `size` bytes."""
    head = b'{"type":"purchase","app_id":"app_42","data":{"pad":"'
    tail = b'"}}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


async def chunks_of(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
async def unraised(app: FastAPI, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a crash as the 500 answer a real server would send."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://storehooks.test",
        headers={"Authorization": f"Bearer {tenant.token}"},
    ) as client:
        yield client


# --- routing -----------------------------------------------------------------------


async def test_an_unknown_route_is_a_404_problem(anonymous: httpx.AsyncClient) -> None:
    problem = assert_problem(await anonymous.get("/no/such/route"), 404)
    assert set(problem) == PROBLEM_FIELDS


async def test_an_unknown_route_is_a_404_problem_with_a_key_too(tenant: Tenant) -> None:
    problem = assert_problem(await tenant.api.post("/no/such/route", json={}), 404)
    assert set(problem) == PROBLEM_FIELDS


async def test_a_wrong_method_is_a_405_problem(tenant: Tenant) -> None:
    problem = assert_problem(await tenant.api.put("/webhooks", json={}), 405)
    assert set(problem) == PROBLEM_FIELDS


async def test_a_405_lists_every_allowed_method(tenant: Tenant) -> None:
    # RFC 9110 §15.5.6: a 405 carries Allow with the methods the resource supports.
    response = await tenant.api.put("/webhooks", json={})
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert allowed == {"GET", "POST"}


# --- request bodies ----------------------------------------------------------------


async def test_malformed_json_is_a_client_error_problem(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/events", content=b'{"type": "purchase", ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


async def test_a_422_lists_each_error_with_loc_and_msg(tenant: Tenant) -> None:
    response = await tenant.api.post("/events", json={"type": "refund", "occurred_at": "soon"})
    problem = assert_problem(response, 422)
    assert set(problem) == {*PROBLEM_FIELDS, "errors"}
    for error in problem["errors"]:
        assert set(error) == {"loc", "msg"}
        assert isinstance(error["msg"], str)
        assert error["msg"]
    assert sorted(error["loc"] for error in problem["errors"]) == [
        ["body", "app_id"],
        ["body", "occurred_at"],
        ["body", "type"],
    ]


async def test_a_body_over_256_kib_with_content_length_is_413(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/events", content=event_body(LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert set(assert_problem(response, 413)) == PROBLEM_FIELDS
    assert (await tenant.api.get("/events")).json()["data"] == []


async def test_a_chunked_body_over_256_kib_is_413(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/events",
        content=chunks_of(event_body(LIMIT + 1)),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert set(assert_problem(response, 413)) == PROBLEM_FIELDS
    assert (await tenant.api.get("/events")).json()["data"] == []


async def test_a_much_larger_chunked_body_is_413(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/events",
        content=chunks_of(event_body(4 * LIMIT)),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize("size", [LIMIT, LIMIT - 1], ids=["exactly-256-KiB", "just-under"])
async def test_a_body_at_the_limit_is_accepted(tenant: Tenant, size: int) -> None:
    response = await tenant.api.post(
        "/events", content=event_body(size), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_a_chunked_body_of_exactly_256_kib_is_accepted(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/events",
        content=chunks_of(event_body(LIMIT)),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 202, response.text


# --- pathological JSON -------------------------------------------------------------


def nested_event(depth: int, open_: str = '{"a":', close: str = "}") -> str:
    return (
        '{"type":"purchase","app_id":"app_42","data":{"n":'
        + open_ * depth
        + "1"
        + close * depth
        + "}}"
    )


@pytest.mark.parametrize("depth", [5_000, 40_000])
@pytest.mark.parametrize(("open_", "close"), [('{"a":', "}"), ("[", "]")], ids=["objects", "lists"])
async def test_deeply_nested_data_is_refused_without_a_500(
    unraised: httpx.AsyncClient, depth: int, open_: str, close: str
) -> None:
    body = nested_event(depth, open_, close)
    assert len(body) < LIMIT
    response = await unraised.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


@pytest.mark.parametrize("depth", [300, 600])
async def test_nested_data_once_accepted_stays_readable(
    unraised: httpx.AsyncClient, depth: int
) -> None:
    """Either refuse the event up front, or serve it back: never accept what cannot be read."""
    response = await unraised.post(
        "/events", content=nested_event(depth), headers={"Content-Type": "application/json"}
    )
    if response.status_code != 202:
        assert response.status_code in (400, 422), response.text
        assert_problem(response, response.status_code)
        return
    event_id = response.json()["id"]
    single = await unraised.get(f"/events/{event_id}")
    assert single.status_code == 200, single.text
    listing = await unraised.get("/events")
    assert listing.status_code == 200, listing.text
    assert [event["id"] for event in listing.json()["data"]] == [event_id]
