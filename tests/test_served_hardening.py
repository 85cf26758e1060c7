"""The second round of hardening (docs/security.md), tried against a real `storehooks
serve` over HTTP, as a client would meet it: who may revoke whom, for every pair of the
scope sets of tests/test_auth.py; URLs with control characters; numbers a body cannot keep;
keys named twice in a body, and a repeated Idempotency-Key header.
The rules themselves are tested in depth in-process (tests/test_auth.py,
tests/test_webhooks.py, tests/test_events.py); these check that the served stack answers
the same."""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.enums import Scope
from tests.conftest import free_port, run_cli
from tests.support.problems import assert_problem
from tests.support.processes import Processes, answers_http, wait_until
from tests.test_auth import REVOKER_SCOPES, TARGET_SCOPES


@pytest.fixture
async def owner(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a real `storehooks serve`, holding a new account's owner key."""
    port = free_port()
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": database_url,
        "STOREHOOKS_REDIS_URL": redis_url,
        "STOREHOOKS_RATE_LIMIT_PER_SECOND": "0",
    }
    processes = Processes(environment, tmp_path)
    try:
        processes.storehooks("api", "serve", "--port", str(port))
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(
            wait_until, lambda: answers_http(f"{base_url}/healthz"), 30, "the API did not start"
        )
        result = await asyncio.to_thread(
            run_cli, "accounts", "create", "Acme", "--json", database_url=database_url
        )
        assert result.returncode == 0, result.stderr
        token = json.loads(result.stdout)["api_key"]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
            yield client
    finally:
        processes.stop_all()


async def new_key(owner: httpx.AsyncClient, scopes: set[Scope]) -> tuple[str, str]:
    """(id, token) of a new key holding exactly `scopes`."""
    response = await owner.post(
        "/api-keys", json={"name": "t", "scopes": sorted(scope.value for scope in scopes)}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_every_pair_of_scope_sets_revokes_as_the_subset_rule_says(
    owner: httpx.AsyncClient,
) -> None:
    for revoker_name, revoker_scopes in REVOKER_SCOPES.items():
        for target_name, target_scopes in TARGET_SCOPES.items():
            pair = f"{revoker_name} revokes {target_name}"
            _, revoker = await new_key(owner, revoker_scopes)
            target_id, target = await new_key(owner, target_scopes)

            response = await owner.delete(f"/api-keys/{target_id}", headers=bearer(revoker))

            target_me = await owner.get("/me", headers=bearer(target))
            if target_scopes <= revoker_scopes:
                assert response.status_code == 204, (pair, response.text)
                assert target_me.status_code == 401, pair
            else:
                detail = assert_problem(response, 403)["detail"]
                assert all(scope.value in detail for scope in target_scopes - revoker_scopes)
                assert target_me.status_code == 200, pair


async def test_the_last_managing_key_stays(owner: httpx.AsyncClient) -> None:
    me = (await owner.get("/me")).json()
    body = assert_problem(await owner.delete(f"/api-keys/{me['key_id']}"), 409)
    assert "keys:manage" in body["detail"]
    assert (await owner.get("/me")).status_code == 200


@pytest.mark.parametrize("character", ["\x01", "\x7f", "\x9b"])
async def test_a_url_with_a_control_character_is_refused(
    owner: httpx.AsyncClient, character: str
) -> None:
    body = {
        "name": "orders",
        "url": f"https://hooks.example.com/a{character}b",
        "http_method": "POST",
        "payload_type": "json",
    }
    problem = assert_problem(await owner.post("/webhooks", json=body), 422)
    assert problem["errors"][0]["loc"] == ["body", "url"]
    assert (await owner.get("/webhooks")).json()["data"] == []


@pytest.mark.parametrize(
    "number", [b"NaN", b"Infinity", b"-Infinity", b"1e309", b"1" * 4301], ids=str
)
async def test_a_number_the_body_cannot_keep_is_a_422_naming_it(
    owner: httpx.AsyncClient, number: bytes
) -> None:
    body = b'{"type": "purchase", "app_id": "app_42", "data": {"amount": ' + number + b"}}"
    response = await owner.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "data", "amount"]
    assert (await owner.get("/events")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(
            b'{"type": "purchase", "app_id": "app_42", "data": {"a": {"x": 1, "x": 2}}}',
            ["body", "data", "a", "x"],
            id="nested",
        ),
        pytest.param(
            b'{"type": "purchase", "type": "purchase", "app_id": "app_42"}',
            ["body", "type"],
            id="top-level",
        ),
    ],
)
async def test_a_key_named_twice_is_a_422_naming_it(
    owner: httpx.AsyncClient, body: bytes, loc: list[str]
) -> None:
    response = await owner.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [loc]
    assert problem["errors"][0]["msg"].startswith("Duplicate key ")
    assert (await owner.get("/events")).json()["data"] == []


async def test_two_idempotency_key_headers_are_a_422_naming_the_header(
    owner: httpx.AsyncClient,
) -> None:
    """Through uvicorn's own header parsing: both lines reach the app, which refuses."""
    event = {"type": "purchase", "app_id": "app_42"}
    keys = [("Idempotency-Key", "order-1"), ("Idempotency-Key", "order-2")]
    problem = assert_problem(await owner.post("/events", json=event, headers=keys), 422)
    assert [error["loc"] for error in problem["errors"]] == [["header", "idempotency-key"]]
    assert (await owner.get("/events")).json()["data"] == []
    single = await owner.post("/events", json=event, headers={"Idempotency-Key": "order-1"})
    assert single.status_code == 202, single.text
    assert "Idempotent-Replayed" not in single.headers
