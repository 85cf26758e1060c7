"""API-side limits that tests/test_errors.py leaves out: `data` nested 1,000 levels deep
(where Python's own recursion limit lies), and `data` with 100,000 keys, sent with a
Content-Length and chunked. Each is a clear 4xx problem, never a 500; nothing is stored;
and the server answers the next request at once.

(A chunked upload over 256 KiB is tests/test_errors.py::test_a_chunked_body_over_256_kib_is_413;
5,000 and 40,000 levels are tests/test_errors.py::test_deeply_nested_data_is_refused_without_a_500.)
"""

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.problems import assert_problem

LIMIT = 256 * 1024
PROMPT_SECONDS = 1.0  # an idle in-process app answers in milliseconds
JSON = {"Content-Type": "application/json"}


def event_with_data(data: str) -> bytes:
    return ('{"type":"purchase","app_id":"app_42","data":' + data + "}").encode()


def nested(depth: int, open_: str, close: str) -> str:
    return '{"n":' + open_ * depth + "1" + close * depth + "}"


def many_keys(count: int) -> str:
    return json.dumps({f"k{i}": 0 for i in range(count)}, separators=(",", ":"))


async def chunks_of(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def assert_nothing_stored_and_still_prompt(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    health = await client.get("/healthz")
    listing = await client.get("/events")
    assert time.monotonic() - started < PROMPT_SECONDS
    assert health.status_code == 200, health.text
    assert listing.status_code == 200, listing.text
    assert listing.json()["data"] == []


@pytest.mark.parametrize(("open_", "close"), [('{"a":', "}"), ("[", "]")], ids=["objects", "lists"])
async def test_data_nested_1000_levels_is_a_client_error(
    unraised: httpx.AsyncClient, open_: str, close: str
) -> None:
    body = event_with_data(nested(1000, open_, close))
    assert len(body) < LIMIT  # refused for its depth, not its size

    response = await unraised.post("/events", content=body, headers=JSON)

    # The JSON parser itself gives up at this depth (the schema's own 32-level check
    # answers for shallower nesting): malformed JSON like any other, a 422 on the body.
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body"]
    await assert_nothing_stored_and_still_prompt(unraised)


async def test_data_with_100000_keys_is_413(unraised: httpx.AsyncClient) -> None:
    body = event_with_data(many_keys(100_000))
    assert len(body) > 4 * LIMIT

    started = time.monotonic()
    response = await unraised.post("/events", content=body, headers=JSON)
    elapsed = time.monotonic() - started

    assert response.request.headers["content-length"] == str(len(body))
    problem = assert_problem(response, 413)
    assert "256 KiB" in problem["detail"]
    assert elapsed < PROMPT_SECONDS
    await assert_nothing_stored_and_still_prompt(unraised)


async def test_data_with_100000_keys_sent_chunked_is_413(unraised: httpx.AsyncClient) -> None:
    body = event_with_data(many_keys(100_000))

    response = await unraised.post("/events", content=chunks_of(body), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    problem = assert_problem(response, 413)
    assert "256 KiB" in problem["detail"]
    await assert_nothing_stored_and_still_prompt(unraised)


async def test_data_with_as_many_keys_as_fit_in_256_kib_is_accepted_and_readable(
    unraised: httpx.AsyncClient,
) -> None:
    """Just under the size limit, a very wide object is an ordinary event."""
    data = many_keys(24_000)
    body = event_with_data(data)
    assert LIMIT - 16 * 1024 < len(body) <= LIMIT

    started = time.monotonic()
    response = await unraised.post("/events", content=body, headers=JSON)
    assert response.status_code == 202, response.text
    event = await unraised.get(f"/events/{response.json()['id']}")
    assert time.monotonic() - started < 5 * PROMPT_SECONDS

    assert event.status_code == 200, event.text
    assert event.json()["data"] == json.loads(data)
