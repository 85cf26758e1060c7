"""API keys and scopes (docs/api.md#authentication-and-scopes, #api-keys): who may call
what, and the /me and /api-keys routes."""

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app import resources
from app.core.db import session_scope, utcnow
from app.core.enums import Scope
from app.core.ids import new_id
from app.core.models import ApiKey
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import WEBHOOK_BODY, Tenant, client_for, me, secret_part
from tests.support.problems import assert_problem
from tests.support.routes import normalize, served_routes

KEY_CREATED_FIELDS = {"id", "name", "scopes", "api_key", "created_at"}
PUBLIC_ENDPOINTS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


# --- helpers -------------------------------------------------------------------------


def assert_unauthorized(response: httpx.Response) -> None:
    """A 401 problem that challenges for a bearer token."""
    assert_problem(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.split(" ")[0] == "Bearer", response.headers


def assert_utc_timestamp(value: str) -> None:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value


async def create_key(client: httpx.AsyncClient, *scopes: str, name: str = "ci") -> dict[str, Any]:
    response = await client.post("/api-keys", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed_key_ids(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/api-keys")
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


# --- the route table ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One route of the contract, the scope it needs (None: any key) and its success code."""

    method: str
    path: str
    scope: Scope | None
    success: int
    body: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def shape(self) -> tuple[str, str]:
        return self.method, normalize(self.path)


CONTRACT_ENDPOINTS = [
    Endpoint("GET", "/me", None, 200),
    Endpoint("GET", "/api-keys", Scope.KEYS_MANAGE, 200),
    Endpoint(
        "POST", "/api-keys", Scope.KEYS_MANAGE, 201, {"name": "ci", "scopes": ["keys:manage"]}
    ),
    Endpoint("DELETE", "/api-keys/{key_id}", Scope.KEYS_MANAGE, 204),
    Endpoint("GET", "/webhooks", Scope.WEBHOOKS_READ, 200),
    Endpoint("POST", "/webhooks", Scope.WEBHOOKS_CREATE, 201, WEBHOOK_BODY),
    Endpoint("GET", "/webhooks/{webhook_id}", Scope.WEBHOOKS_READ, 200),
    Endpoint("PATCH", "/webhooks/{webhook_id}", Scope.WEBHOOKS_UPDATE, 200, {"name": "renamed"}),
    Endpoint("DELETE", "/webhooks/{webhook_id}", Scope.WEBHOOKS_DELETE, 204),
    Endpoint("GET", "/webhooks/{webhook_id}/secret", Scope.WEBHOOKS_UPDATE, 200),
    Endpoint("POST", "/webhooks/{webhook_id}/secret/rotate", Scope.WEBHOOKS_UPDATE, 200),
    Endpoint("POST", "/webhooks/{webhook_id}/test", Scope.WEBHOOKS_TEST, 202),
    Endpoint(
        "POST",
        "/webhooks/{webhook_id}/recover",
        Scope.DELIVERIES_RETRY,
        202,
        {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
    ),
    Endpoint("GET", "/webhooks/{webhook_id}/actions", Scope.ACTIONS_READ, 200),
    Endpoint(
        "POST",
        "/webhooks/{webhook_id}/actions",
        Scope.ACTIONS_WRITE,
        201,
        {"event_type": "subscription_cancelled", "app_id": "app_42"},
    ),
    Endpoint("DELETE", "/webhooks/{webhook_id}/actions/{action_id}", Scope.ACTIONS_WRITE, 204),
    Endpoint("GET", "/actions", Scope.ACTIONS_READ, 200),
    Endpoint("POST", "/events", Scope.EVENTS_WRITE, 202, {"type": "purchase", "app_id": "app_42"}),
    Endpoint("GET", "/events", Scope.EVENTS_READ, 200),
    Endpoint("GET", "/events/{event_id}", Scope.EVENTS_READ, 200),
    Endpoint("GET", "/deliveries", Scope.DELIVERIES_READ, 200),
    Endpoint("GET", "/deliveries/{delivery_id}", Scope.DELIVERIES_READ, 200),
    # The world's delivery is pending, and retrying a pending delivery is a 409.
    Endpoint("POST", "/deliveries/{delivery_id}/retry", Scope.DELIVERIES_RETRY, 409),
    Endpoint("GET", "/notices", Scope.WEBHOOKS_READ, 200),
    Endpoint("GET", "/operations-webhooks", Scope.WEBHOOKS_READ, 200),
    Endpoint("POST", "/operations-webhooks", Scope.WEBHOOKS_CREATE, 201, WEBHOOK_BODY),
    Endpoint("GET", "/operations-webhooks/{operations_webhook_id}", Scope.WEBHOOKS_READ, 200),
    Endpoint(
        "PATCH",
        "/operations-webhooks/{operations_webhook_id}",
        Scope.WEBHOOKS_UPDATE,
        200,
        {"name": "renamed"},
    ),
    Endpoint("DELETE", "/operations-webhooks/{operations_webhook_id}", Scope.WEBHOOKS_DELETE, 204),
    Endpoint(
        "GET", "/operations-webhooks/{operations_webhook_id}/secret", Scope.WEBHOOKS_UPDATE, 200
    ),
    Endpoint(
        "POST",
        "/operations-webhooks/{operations_webhook_id}/secret/rotate",
        Scope.WEBHOOKS_UPDATE,
        200,
    ),
    Endpoint("POST", "/operations-webhooks/{operations_webhook_id}/test", Scope.WEBHOOKS_TEST, 202),
    Endpoint("GET", "/audit-events", Scope.AUDIT_READ, 200),
]


# Walk the routes the app has; routes of the contract it lacks are not walked (a
# separate test below fails when the app has a route this table does not know).
SERVED = served_routes(create_app(Settings()))
ENDPOINTS = [endpoint for endpoint in CONTRACT_ENDPOINTS if endpoint.shape in SERVED]
SCOPED = [endpoint for endpoint in ENDPOINTS if endpoint.scope is not None]


def by_id(endpoints: list[Endpoint]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("endpoint", endpoints, ids=[e.id for e in endpoints])


@pytest.fixture
async def ids(tenant: Tenant) -> dict[str, str]:
    """One of each object, so every route can be called with ids that exist."""
    webhook = await tenant.webhook()
    action = await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    event = await tenant.event()
    assert event["deliveries"] == 1
    deliveries = (await tenant.api.get("/deliveries", params={"event_id": event["id"]})).json()
    # keys:manage alone may revoke it: it holds no scope beyond that, nor is it the last.
    spare_key = await create_key(tenant.api, "keys:manage", name="spare")
    operations = await tenant.api.post("/operations-webhooks", json=WEBHOOK_BODY)
    assert operations.status_code == 201, operations.text
    return {
        "webhook_id": webhook["id"],
        "operations_webhook_id": operations.json()["id"],
        "action_id": action["id"],
        "event_id": event["id"],
        "delivery_id": deliveries["data"][0]["id"],
        "key_id": spare_key["id"],
    }


async def call(
    client: httpx.AsyncClient, endpoint: Endpoint, ids: dict[str, str]
) -> httpx.Response:
    return await client.request(endpoint.method, endpoint.path.format(**ids), json=endpoint.body)


# --- every route: 401 without a key, 403 without its scope, success with it ----------


def test_every_served_route_is_in_the_scope_table() -> None:
    known = {endpoint.shape for endpoint in CONTRACT_ENDPOINTS} | PUBLIC_ENDPOINTS
    assert SERVED - known == set(), "routes without an entry in CONTRACT_ENDPOINTS"


def test_the_routes_the_brief_names_are_served() -> None:
    named = {
        ("GET", "/me"),
        ("GET", "/api-keys"),
        ("POST", "/api-keys"),
        ("DELETE", "/api-keys/{}"),
        ("GET", "/webhooks"),
        ("POST", "/webhooks"),
        ("GET", "/webhooks/{}"),
        ("PATCH", "/webhooks/{}"),
        ("DELETE", "/webhooks/{}"),
        ("GET", "/webhooks/{}/secret"),
        ("POST", "/webhooks/{}/secret/rotate"),
        ("GET", "/webhooks/{}/actions"),
        ("POST", "/webhooks/{}/actions"),
        ("DELETE", "/webhooks/{}/actions/{}"),
        ("GET", "/actions"),
        ("GET", "/events"),
        ("POST", "/events"),
        ("GET", "/events/{}"),
        ("GET", "/deliveries"),
        ("GET", "/deliveries/{}"),
    }
    assert named - SERVED == set()


@by_id(ENDPOINTS)
async def test_route_without_a_key_is_401(
    endpoint: Endpoint, ids: dict[str, str], anonymous: httpx.AsyncClient
) -> None:
    assert_unauthorized(await call(anonymous, endpoint, ids))


@by_id(SCOPED)
async def test_route_with_only_other_scopes_is_403(
    endpoint: Endpoint, ids: dict[str, str], tenant: Tenant
) -> None:
    for scope in Scope:
        if scope == endpoint.scope:
            continue
        async with await tenant.client(scope) as client:
            assert_problem(await call(client, endpoint, ids), 403)


@by_id(ENDPOINTS)
async def test_route_with_exactly_its_scope_succeeds(
    endpoint: Endpoint, ids: dict[str, str], tenant: Tenant
) -> None:
    scopes = [endpoint.scope] if endpoint.scope else list(Scope)
    for scope in scopes:  # /me: each single-scope key is enough
        async with await tenant.client(scope) as client:
            response = await call(client, endpoint, ids)
        assert response.status_code == endpoint.success, (scope, response.text)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_operations_routes_need_no_key(path: str, anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 200, response.text


async def test_missing_key_wins_over_an_invalid_body(anonymous: httpx.AsyncClient) -> None:
    assert_unauthorized(await anonymous.post("/webhooks", json={"name": ""}))


async def test_missing_key_wins_over_a_body_that_is_not_json(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post(
        "/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_unauthorized(response)


# --- which keys are refused -----------------------------------------------------------


MALFORMED_HEADERS = {
    "basic-scheme": "Basic dXNlcjpwYXNzd29yZA==",
    "bearer-without-token": "Bearer",
    "bearer-dot": "Bearer .",
    "bearer-garbage": "Bearer not-a-key",
    "token-without-scheme": "{token}",
    "token-twice": "Bearer {token} {token}",
    # Only an in-process client can send one; no stored key id holds it (PostgreSQL: 500).
    "nul-in-the-key-id": "Bearer key_\x00{token}",
}


async def test_no_authorization_header_is_401(anonymous: httpx.AsyncClient) -> None:
    assert_unauthorized(await anonymous.get("/me"))


@pytest.mark.parametrize("header", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
async def test_malformed_authorization_header_is_401(
    header: str, tenant: Tenant, anonymous: httpx.AsyncClient
) -> None:
    value = header.format(token=tenant.token)
    assert_unauthorized(await anonymous.get("/me", headers={"Authorization": value}))


async def test_unknown_key_is_401(app: FastAPI, tenant: Tenant) -> None:
    # A real secret behind a key id that does not exist.
    owner_key_id = (await me(tenant.api))["key_id"]
    token = tenant.token.replace(owner_key_id, new_id("key"))
    assert token != tenant.token
    async with client_for(app, token) as client:
        assert_unauthorized(await client.get("/me"))


async def test_known_key_with_a_wrong_secret_is_401(app: FastAPI, tenant: Tenant) -> None:
    created = await create_key(tenant.api, "events:read")
    secret = secret_part(created["api_key"], created["id"])
    assert secret != created["api_key"], "expected the token to start with its key id"
    wrong = (
        created["api_key"].removesuffix(secret) + ("A" if secret[0] != "A" else "B") + secret[1:]
    )
    async with client_for(app, wrong) as client:
        assert_unauthorized(await client.get("/me"))
    async with client_for(app, created["api_key"]) as client:
        assert (await client.get("/me")).status_code == 200


async def test_revoked_key_is_401_on_the_next_request(app: FastAPI, tenant: Tenant) -> None:
    created = await create_key(tenant.api, "webhooks:read", "events:read")
    async with client_for(app, created["api_key"]) as client:
        assert (await client.get("/webhooks")).status_code == 200
        response = await tenant.api.delete(f"/api-keys/{created['id']}")
        assert response.status_code == 204
        assert response.content == b""
        assert_unauthorized(await client.get("/webhooks"))
        assert_unauthorized(await client.get("/me"))
    assert (await tenant.api.get("/me")).status_code == 200


async def test_a_key_can_revoke_itself(app: FastAPI, tenant: Tenant) -> None:
    created = await create_key(tenant.api, "keys:manage")
    async with client_for(app, created["api_key"]) as client:
        assert (await client.delete(f"/api-keys/{created['id']}")).status_code == 204
        assert_unauthorized(await client.get("/api-keys"))


# --- /me ------------------------------------------------------------------------------


async def test_me_of_the_owner_key_holds_every_scope(tenant: Tenant) -> None:
    body = await me(tenant.api)
    assert set(body) == {"account_id", "key_id", "subject", "name", "scopes"}
    assert body["subject"] is None and body["name"] == "owner"  # a key, named
    assert body["account_id"] == tenant.account_id
    assert body["key_id"] in await listed_key_ids(tenant.api)
    assert sorted(body["scopes"]) == sorted(scope.value for scope in Scope)


async def test_me_reports_exactly_the_key_and_its_scopes(app: FastAPI, tenant: Tenant) -> None:
    created = await create_key(tenant.api, "deliveries:read", "actions:read")
    async with client_for(app, created["api_key"]) as client:
        body = await me(client)
    assert set(body) == {"account_id", "key_id", "subject", "name", "scopes"}
    assert body["subject"] is None and body["name"] == "ci"  # a key, named
    assert body["account_id"] == tenant.account_id
    assert body["key_id"] == created["id"]
    assert sorted(body["scopes"]) == ["actions:read", "deliveries:read"]


# --- POST /api-keys -------------------------------------------------------------------


async def test_create_key_answers_201_with_the_key_once(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/api-keys", json={"name": "backend", "scopes": ["events:write", "events:read"]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == KEY_CREATED_FIELDS
    assert body["name"] == "backend"
    assert sorted(body["scopes"]) == ["events:read", "events:write"]
    assert isinstance(body["id"], str) and body["id"]
    assert isinstance(body["api_key"], str) and len(secret_part(body["api_key"], body["id"])) >= 32
    assert_utc_timestamp(body["created_at"])


async def test_created_key_holds_exactly_its_scopes(app: FastAPI, tenant: Tenant) -> None:
    created = await create_key(tenant.api, "webhooks:read", "events:read")
    async with client_for(app, created["api_key"]) as client:
        body = await me(client)
        assert body["key_id"] == created["id"]
        assert body["account_id"] == tenant.account_id
        assert sorted(body["scopes"]) == ["events:read", "webhooks:read"]
        assert (await client.get("/webhooks")).status_code == 200
        assert (await client.get("/events")).status_code == 200
        assert_problem(await client.post("/events", json={"type": "purchase", "app_id": "a"}), 403)
        assert_problem(await client.post("/webhooks", json=WEBHOOK_BODY), 403)
        assert_problem(await client.get("/api-keys"), 403)


@pytest.mark.parametrize(
    "requested",
    [["webhooks:read"], ["events:read", "webhooks:read"], ["keys:manage", "deliveries:retry"]],
    ids=["one-missing-scope", "held-and-missing", "manage-and-missing"],
)
async def test_a_key_cannot_grant_a_scope_it_lacks(
    app: FastAPI, tenant: Tenant, requested: list[str]
) -> None:
    manager = await create_key(tenant.api, "keys:manage", "events:read")
    before = await listed_key_ids(tenant.api)
    async with client_for(app, manager["api_key"]) as client:
        response = await client.post("/api-keys", json={"name": "escalate", "scopes": requested})
    assert_problem(response, 403)
    assert await listed_key_ids(tenant.api) == before


async def test_a_key_may_grant_a_subset_of_its_scopes(app: FastAPI, tenant: Tenant) -> None:
    manager = await create_key(tenant.api, "keys:manage", "events:read")
    async with client_for(app, manager["api_key"]) as client:
        created = await create_key(client, "events:read")
    assert created["scopes"] == ["events:read"]


INVALID_KEY_BODIES = {
    "empty-scopes": ({"name": "x", "scopes": []}, "scopes"),
    "unknown-scope": ({"name": "x", "scopes": ["webhooks:admin"]}, "scopes"),
    "missing-name": ({"scopes": ["events:read"]}, "name"),
    "empty-name": ({"name": "", "scopes": ["events:read"]}, "name"),
    "missing-scopes": ({"name": "x"}, "scopes"),
}


@pytest.mark.parametrize(
    ("body", "field_name"), INVALID_KEY_BODIES.values(), ids=INVALID_KEY_BODIES.keys()
)
async def test_create_key_validation_is_422_naming_the_field(
    tenant: Tenant, body: dict[str, Any], field_name: str
) -> None:
    before = await listed_key_ids(tenant.api)
    problem = assert_problem(await tenant.api.post("/api-keys", json=body), 422)
    assert problem["errors"], problem
    for error in problem["errors"]:
        assert set(error) == {"loc", "msg"}
        assert isinstance(error["loc"], list) and isinstance(error["msg"], str)
    assert any(field_name in error["loc"] for error in problem["errors"]), problem
    assert await listed_key_ids(tenant.api) == before


# --- GET /api-keys and DELETE /api-keys/{id} ------------------------------------------


def hex_runs(text: str) -> Iterator[str]:
    return iter(re.findall(r"[0-9a-fA-F]{40,}", text))


async def test_list_keys_never_shows_a_secret_or_a_hash(tenant: Tenant) -> None:
    created = await create_key(tenant.api, "events:read", name="reader")
    response = await tenant.api.get("/api-keys")
    assert response.status_code == 200
    listing = response.json()
    assert set(listing) == {"data", "next_cursor"}
    assert {item["id"] for item in listing["data"]} == {
        created["id"],
        (await me(tenant.api))["key_id"],
    }
    for item in listing["data"]:
        assert "api_key" not in item
        assert not [name for name in item if "hash" in name or "secret" in name], item
    assert secret_part(created["api_key"], created["id"]) not in response.text
    assert secret_part(tenant.token, (await me(tenant.api))["key_id"]) not in response.text
    assert list(hex_runs(response.text)) == []
    reader = next(item for item in listing["data"] if item["id"] == created["id"])
    assert reader["name"] == "reader"
    assert reader["scopes"] == ["events:read"]
    assert_utc_timestamp(reader["created_at"])


async def test_list_keys_leaves_out_revoked_keys(tenant: Tenant) -> None:
    kept = await create_key(tenant.api, "events:read", name="kept")
    revoked = await create_key(tenant.api, "events:read", name="revoked")
    assert (await tenant.api.delete(f"/api-keys/{revoked['id']}")).status_code == 204
    owner = (await me(tenant.api))["key_id"]
    assert await listed_key_ids(tenant.api) == {owner, kept["id"]}


async def test_revoking_an_unknown_key_is_404(tenant: Tenant) -> None:
    assert_problem(await tenant.api.delete(f"/api-keys/{new_id('key')}"), 404)


async def test_revoking_a_revoked_key_again_is_404(tenant: Tenant) -> None:
    created = await create_key(tenant.api, "events:read")
    assert (await tenant.api.delete(f"/api-keys/{created['id']}")).status_code == 204
    assert_problem(await tenant.api.delete(f"/api-keys/{created['id']}"), 404)


async def test_revoking_another_accounts_key_is_404_and_leaves_it_working(
    app: FastAPI, tenant: Tenant, other: Tenant
) -> None:
    theirs = await create_key(other.api, "events:read")
    assert_problem(await tenant.api.delete(f"/api-keys/{theirs['id']}"), 404)
    async with client_for(app, theirs["api_key"]) as client:
        assert (await me(client))["key_id"] == theirs["id"]
    assert theirs["id"] in await listed_key_ids(other.api)


# --- who may revoke whom -------------------------------------------------------------

MANAGE = Scope.KEYS_MANAGE
A, B = Scope.WEBHOOKS_READ, Scope.EVENTS_WRITE
# What matters is whether the target's scopes are a subset of the revoker's, with and
# without keys:manage among the target's; the owner key (every scope) on both sides.
REVOKER_SCOPES = {
    "manage": {MANAGE},
    "manage+A": {MANAGE, A},
    "manage+A+B": {MANAGE, A, B},
    "owner": set(Scope),
}
TARGET_SCOPES = {
    "A": {A},
    "B": {B},
    "A+B": {A, B},
    "manage": {MANAGE},
    "manage+A": {MANAGE, A},
    "manage+A+B": {MANAGE, A, B},
    "owner": set(Scope),
}
REVOCATION_PAIRS = [
    pytest.param(revoker, target, id=f"{revoker_name}-revokes-{target_name}")
    for revoker_name, revoker in REVOKER_SCOPES.items()
    for target_name, target in TARGET_SCOPES.items()
]


@pytest.mark.parametrize(("revoker_scopes", "target_scopes"), REVOCATION_PAIRS)
async def test_a_key_may_revoke_only_keys_whose_scopes_it_holds(
    app: FastAPI, tenant: Tenant, revoker_scopes: set[Scope], target_scopes: set[Scope]
) -> None:
    """204 exactly when the target's scopes are a subset of the revoker's; otherwise a 403
    naming the scopes the revoker lacks, and the target keeps working. (The tenant's owner
    key always holds keys:manage, so no target here is the last one.)"""
    target_token = await tenant.key(*target_scopes)
    async with (
        await tenant.client(*revoker_scopes) as revoker,
        client_for(app, target_token) as target,
    ):
        target_id = (await me(target))["key_id"]
        response = await revoker.delete(f"/api-keys/{target_id}")

        if target_scopes <= revoker_scopes:
            assert response.status_code == 204, response.text
            assert_unauthorized(await target.get("/me"))
            assert target_id not in await listed_key_ids(tenant.api)
        else:
            detail = assert_problem(response, 403)["detail"]
            for scope in target_scopes - revoker_scopes:
                assert scope.value in detail, detail
            assert (await me(target))["key_id"] == target_id
            assert target_id in await listed_key_ids(tenant.api)


async def test_the_last_key_holding_keys_manage_cannot_be_revoked(tenant: Tenant) -> None:
    owner = (await me(tenant.api))["key_id"]
    reader = await create_key(tenant.api, "events:read")

    body = assert_problem(await tenant.api.delete(f"/api-keys/{owner}"), 409)
    assert "keys:manage" in body["detail"], body
    assert await listed_key_ids(tenant.api) == {owner, reader["id"]}
    assert (await me(tenant.api))["key_id"] == owner


async def test_a_managing_key_may_go_while_another_remains(app: FastAPI, tenant: Tenant) -> None:
    owner = (await me(tenant.api))["key_id"]
    second = await create_key(tenant.api, *Scope)
    async with client_for(app, second["api_key"]) as client:
        assert (await client.delete(f"/api-keys/{owner}")).status_code == 204
        assert_unauthorized(await tenant.api.get("/me"))
        assert_problem(await client.delete(f"/api-keys/{second['id']}"), 409)
        assert await listed_key_ids(client) == {second["id"]}


async def test_a_retired_scope_neither_grants_nor_blocks_revocation(tenant: Tenant) -> None:
    """A scope stored on a key but no longer known grants nothing, so it cannot make a key
    unrevocable either."""
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        key = ApiKey(
            id=new_id("key"),
            account_id=tenant.account_id,
            name="legacy",
            scopes=["events:read", "reports:read"],
            secret_hash="0" * 64,
            created_at=utcnow(),
        )
        session.add(key)
    assert (await tenant.api.delete(f"/api-keys/{key.id}")).status_code == 204
    assert key.id not in await listed_key_ids(tenant.api)


async def test_two_managing_keys_revoking_each_other_at_once_leave_one(
    app: FastAPI, tenant: Tenant
) -> None:
    """Both requests authenticate, then race: the account's row serializes them, so the
    second sees it would remove the last managing key (409), or finds its own key already
    revoked (401). Never both 204."""
    owner = (await me(tenant.api))["key_id"]
    second = await create_key(tenant.api, *Scope)
    async with client_for(app, second["api_key"]) as client:
        answers = await asyncio.gather(
            tenant.api.delete(f"/api-keys/{second['id']}"), client.delete(f"/api-keys/{owner}")
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses in ([204, 401], [204, 409]), [answer.text for answer in answers]
    async with session_scope(resources.of(app).sessionmaker) as session:
        live = (
            await session.scalars(
                select(ApiKey.id).where(
                    ApiKey.account_id == tenant.account_id, ApiKey.revoked_at.is_(None)
                )
            )
        ).all()
    assert len(live) == 1, live
