"""Accounts are walled off (docs/api.md#conventions): another account's id answers 404
exactly as an id that does not exist, changes nothing, and never shows up in a list."""

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.core.ids import new_id
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import WEBHOOK_BODY, Tenant, client_for, me
from tests.support.problems import assert_problem
from tests.support.routes import normalize, served_routes

ID_PREFIXES = {
    "webhook_id": "wh",
    "operations_webhook_id": "wh",
    "action_id": "act",
    "event_id": "evt",
    "delivery_id": "dlv",
    "key_id": "key",
}


@dataclass
class World:
    """One account's objects: a webhook with an action, an event with its delivery, a key."""

    tenant: Tenant
    app_id: str
    ids: dict[str, str]
    key_token: str


async def populate(tenant: Tenant, name: str, app_id: str) -> World:
    webhook = await tenant.webhook(name=name)
    action = await tenant.action(webhook["id"], event_type="purchase", app_id=app_id)
    event = await tenant.event(app_id=app_id)
    assert event["deliveries"] == 1
    deliveries = await tenant.api.get("/deliveries", params={"event_id": event["id"]})
    [delivery] = deliveries.json()["data"]
    key = await tenant.api.post("/api-keys", json={"name": "spare", "scopes": ["events:read"]})
    assert key.status_code == 201, key.text
    operations = await tenant.api.post(
        "/operations-webhooks", json={**WEBHOOK_BODY, "name": f"{name} ops"}
    )
    assert operations.status_code == 201, operations.text
    return World(
        tenant=tenant,
        app_id=app_id,
        ids={
            "webhook_id": webhook["id"],
            "action_id": action["id"],
            "event_id": event["id"],
            "delivery_id": delivery["id"],
            "key_id": key.json()["id"],
            "operations_webhook_id": operations.json()["id"],
        },
        key_token=key.json()["api_key"],
    )


@pytest.fixture
async def a(tenant: Tenant) -> World:
    return await populate(tenant, "A orders", "app_a")


@pytest.fixture
async def b(other: Tenant) -> World:
    return await populate(other, "B orders", "app_b")


async def snapshot(world: World) -> dict[str, Any]:
    """Everything of the account that a foreign request could have changed."""
    api, ids = world.tenant.api, world.ids
    reads = {
        "webhook": f"/webhooks/{ids['webhook_id']}",
        "secret": f"/webhooks/{ids['webhook_id']}/secret",
        "actions": f"/webhooks/{ids['webhook_id']}/actions",
        "event": f"/events/{ids['event_id']}",
        "delivery": f"/deliveries/{ids['delivery_id']}",
        "keys": "/api-keys",
        "webhooks": "/webhooks",
        "operations_webhook": f"/operations-webhooks/{ids['operations_webhook_id']}",
        "operations_secret": f"/operations-webhooks/{ids['operations_webhook_id']}/secret",
        "operations_webhooks": "/operations-webhooks",
    }
    state: dict[str, Any] = {}
    for name, path in reads.items():
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        state[name] = response.json()
    async with client_for(world.tenant.app, world.key_token) as client:
        state["spare_key_works"] = (await client.get("/me")).status_code == 200
    return state


# --- routes that take an id -------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request of B's that names A's object; `own` fills path ids with B's own objects."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = field(default=None, hash=False)
    own: tuple[str, ...] = ()


PROBES = [
    Probe("get-webhook", "GET", "/webhooks/{webhook_id}"),
    Probe(
        "patch-webhook",
        "PATCH",
        "/webhooks/{webhook_id}",
        {"name": "hijacked", "url": "https://evil.example.com/x", "active": False},
    ),
    Probe("delete-webhook", "DELETE", "/webhooks/{webhook_id}"),
    Probe("read-secret", "GET", "/webhooks/{webhook_id}/secret"),
    Probe("rotate-secret", "POST", "/webhooks/{webhook_id}/secret/rotate"),
    Probe("test-webhook", "POST", "/webhooks/{webhook_id}/test"),
    Probe(
        "recover-webhook",
        "POST",
        "/webhooks/{webhook_id}/recover",
        {"since": "2026-01-01T00:00:00Z", "until": None},
    ),
    Probe("list-actions", "GET", "/webhooks/{webhook_id}/actions"),
    Probe(
        "create-action",
        "POST",
        "/webhooks/{webhook_id}/actions",
        {"event_type": "subscription_cancelled", "app_id": "app_b"},
    ),
    Probe("delete-action", "DELETE", "/webhooks/{webhook_id}/actions/{action_id}"),
    Probe(
        "delete-action-under-own-webhook",
        "DELETE",
        "/webhooks/{webhook_id}/actions/{action_id}",
        own=("webhook_id",),
    ),
    Probe("get-event", "GET", "/events/{event_id}"),
    Probe("get-delivery", "GET", "/deliveries/{delivery_id}"),
    Probe("retry-delivery", "POST", "/deliveries/{delivery_id}/retry"),
    Probe("revoke-key", "DELETE", "/api-keys/{key_id}"),
    Probe("get-operations-webhook", "GET", "/operations-webhooks/{operations_webhook_id}"),
    Probe(
        "patch-operations-webhook",
        "PATCH",
        "/operations-webhooks/{operations_webhook_id}",
        {"url": "https://evil.example.com/ops", "active": False},
    ),
    Probe("delete-operations-webhook", "DELETE", "/operations-webhooks/{operations_webhook_id}"),
    Probe("read-operations-secret", "GET", "/operations-webhooks/{operations_webhook_id}/secret"),
    Probe(
        "rotate-operations-secret",
        "POST",
        "/operations-webhooks/{operations_webhook_id}/secret/rotate",
    ),
    Probe("test-operations-webhook", "POST", "/operations-webhooks/{operations_webhook_id}/test"),
    # An id of the other collection is no operations webhook, even the caller's own.
    Probe(
        "own-webhook-as-operations-webhook",
        "GET",
        "/operations-webhooks/{webhook_id}",
        own=("webhook_id",),
    ),
]


SERVED = served_routes(create_app(Settings()))
SERVED_PROBES = [p for p in PROBES if (p.method, normalize(p.path)) in SERVED]


def test_every_served_route_with_an_id_has_a_probe() -> None:
    probed = {(probe.method, normalize(probe.path)) for probe in PROBES}
    with_ids = {endpoint for endpoint in SERVED if "{}" in endpoint[1]}
    assert with_ids - probed == set()


def path_ids(probe: Probe, target: World, caller: World, *, made_up: bool) -> dict[str, str]:
    ids = {}
    for name, value in target.ids.items():
        if name in probe.own:
            ids[name] = caller.ids[name]
        else:
            ids[name] = new_id(ID_PREFIXES[name]) if made_up else value
    return ids


def anonymized(detail: str, ids: dict[str, str]) -> str:
    for value in ids.values():
        detail = detail.replace(value, "<id>")
    return detail


@pytest.mark.parametrize("probe", SERVED_PROBES, ids=[p.name for p in SERVED_PROBES])
async def test_foreign_id_is_404_like_a_missing_one_and_changes_nothing(
    probe: Probe, a: World, b: World
) -> None:
    before = await snapshot(a)
    real_ids = path_ids(probe, a, b, made_up=False)
    fake_ids = path_ids(probe, a, b, made_up=True)
    api = b.tenant.api

    foreign = assert_problem(
        await api.request(probe.method, probe.path.format(**real_ids), json=probe.body), 404
    )
    missing = assert_problem(
        await api.request(probe.method, probe.path.format(**fake_ids), json=probe.body), 404
    )

    assert foreign["title"] == missing["title"]
    assert foreign["type"] == missing["type"]
    assert anonymized(foreign["detail"], real_ids) == anonymized(missing["detail"], fake_ids)
    assert await snapshot(a) == before


async def test_b_keeps_its_own_objects_after_probing(a: World, b: World) -> None:
    # The probes above must not have hit B's own objects instead.
    before = await snapshot(b)
    for probe in SERVED_PROBES:
        ids = path_ids(probe, a, b, made_up=False)
        await b.tenant.api.request(probe.method, probe.path.format(**ids), json=probe.body)
    assert await snapshot(b) == before


async def test_foreign_patch_leaves_the_name(a: World, b: World) -> None:
    path = f"/webhooks/{a.ids['webhook_id']}"
    assert_problem(await b.tenant.api.patch(path, json={"name": "hijacked"}), 404)
    assert_problem(await b.tenant.api.delete(path), 404)
    response = await a.tenant.api.get(path)
    assert response.status_code == 200
    assert response.json()["name"] == "A orders"
    assert response.json()["active"] is True


# --- lists --------------------------------------------------------------------------------


def item_ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


async def owner_key_id(world: World) -> str:
    key_id: str = (await me(world.tenant.api))["key_id"]
    return key_id


LISTS: dict[str, tuple[str, dict[str, str], str]] = {
    "webhooks": ("/webhooks", {}, "webhook_id"),
    "operations-webhooks": ("/operations-webhooks", {}, "operations_webhook_id"),
    "actions": ("/actions", {}, "action_id"),
    "events": ("/events", {}, "event_id"),
    "deliveries": ("/deliveries", {}, "delivery_id"),
}


@pytest.mark.parametrize(("path", "params", "kind"), LISTS.values(), ids=LISTS.keys())
async def test_lists_show_only_the_callers_items(
    a: World, b: World, path: str, params: dict[str, str], kind: str
) -> None:
    assert item_ids(await b.tenant.api.get(path, params=params)) == {b.ids[kind]}
    assert item_ids(await a.tenant.api.get(path, params=params)) == {a.ids[kind]}


async def test_key_list_shows_only_the_callers_keys(a: World, b: World) -> None:
    assert item_ids(await b.tenant.api.get("/api-keys")) == {b.ids["key_id"], await owner_key_id(b)}
    assert item_ids(await a.tenant.api.get("/api-keys")) == {a.ids["key_id"], await owner_key_id(a)}


FOREIGN_FILTERS = {
    "deliveries-by-webhook": ("/deliveries", "webhook_id", "webhook_id", "delivery_id"),
    "deliveries-by-event": ("/deliveries", "event_id", "event_id", "delivery_id"),
    "actions-by-app": ("/actions", "app_id", "app_id", "action_id"),
    "events-by-app": ("/events", "app_id", "app_id", "event_id"),
    "events-by-webhook": ("/events", "webhook_id", "webhook_id", "event_id"),
}


@pytest.mark.parametrize(
    ("path", "param", "source", "kind"), FOREIGN_FILTERS.values(), ids=FOREIGN_FILTERS.keys()
)
async def test_filtering_by_foreign_values_finds_nothing(
    a: World, b: World, path: str, param: str, source: str, kind: str
) -> None:
    def value(world: World) -> str:
        return world.app_id if source == "app_id" else world.ids[source]

    response = await b.tenant.api.get(path, params={param: value(a)})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "next_cursor": None}
    # The same filter finds the item for its owner, so the empty answer means something.
    assert item_ids(await a.tenant.api.get(path, params={param: value(a)})) == {a.ids[kind]}
