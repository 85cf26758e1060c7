"""The audit log (docs/api.md#audit-log): every change made through the API leaves one
entry naming who made it, what, to which object and the fields before and after, in the
change's own transaction; no secret ever; a refused change leaves none; read with
`audit:read`, filtered, paged, and walled off by account."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app import resources
from app.audit import recorder
from app.audit.recorder import NEVER_RECORDED, diff
from app.auth.dependencies import Principal, authenticate
from app.core.enums import Scope
from app.core.models import ApiKey, AuditEntry, Delivery, Webhook
from tests.conftest import WEBHOOK_BODY, Tenant, client_for, me
from tests.support.problems import assert_problem

ENTRY_FIELDS = {
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "changes",
}
NEW_URL = "https://hooks.example.com/moved"


async def entries(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """Every entry the client's account may see (with `params`), newest first, all pages."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/audit-events", params=page_params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        for entry in body["data"]:
            assert set(entry) == ENTRY_FIELDS, entry
        found += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


async def last_entry(tenant: Tenant) -> dict[str, Any]:
    return (await entries(tenant.api))[0]


async def owner(tenant: Tenant) -> dict[str, str]:
    """The actor fields of the tenant's owner key."""
    return {
        "actor_type": "api_key",
        "actor_id": (await me(tenant.api))["key_id"],
        "actor_name": "owner",
    }


def about(entry: dict[str, Any]) -> tuple[str, str, str]:
    return entry["action"], entry["target_type"], entry["target_id"]


def actor(entry: dict[str, Any]) -> dict[str, str]:
    return {name: entry[name] for name in ("actor_type", "actor_id", "actor_name")}


async def fail_delivery(tenant: Tenant, delivery_id: str, created_at: datetime) -> None:
    async with resources.of(tenant.app).engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(
                status="failed",
                attempt_count=3,
                attempt_limit=3,
                next_attempt_at=None,
                created_at=created_at,
                completed_at=created_at + timedelta(minutes=5),
            )
        )


async def event_delivery(tenant: Tenant, webhook_id: str) -> str:
    event = await tenant.event()
    response = await tenant.api.get(
        "/deliveries", params={"webhook_id": webhook_id, "event_id": event["id"]}
    )
    [delivery] = response.json()["data"]
    delivery_id: str = delivery["id"]
    return delivery_id


# --- what each route records -----------------------------------------------------------


async def test_a_webhook_created_records_its_fields_before_null(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.created", "webhook", webhook["id"])
    assert actor(entry) == await owner(tenant)
    assert entry["changes"] == {
        "name": {"before": None, "after": "orders"},
        "url": {"before": None, "after": WEBHOOK_BODY["url"]},
        "http_method": {"before": None, "after": "POST"},
        "payload_type": {"before": None, "after": "json"},
        "active": {"before": None, "after": True},
        "success_statuses": {"before": None, "after": "200"},
        "ordered": {"before": None, "after": False},
        "max_in_flight": {"before": None, "after": 10},
        "signature_scheme": {"before": None, "after": "hmac-sha256"},
    }
    occurred = datetime.fromisoformat(entry["occurred_at"])
    assert abs(occurred - datetime.now(UTC)) < timedelta(minutes=1)
    assert entry["id"].startswith("aud_")


async def test_a_patch_records_only_the_fields_it_changed(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    response = await tenant.api.patch(
        f"/webhooks/{webhook['id']}", json={"url": NEW_URL, "name": "orders"}
    )
    assert response.status_code == 200, response.text
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.updated", "webhook", webhook["id"])
    assert entry["changes"] == {"url": {"before": WEBHOOK_BODY["url"], "after": NEW_URL}}

    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})
    assert response.status_code == 200, response.text
    assert (await last_entry(tenant))["changes"] == {
        "active": {"before": True, "after": False},
        "disabled_reason": {"before": None, "after": "manual"},
    }


async def test_a_switch_to_ed25519_records_the_public_key_and_no_private_key(
    tenant: Tenant,
) -> None:
    webhook = await tenant.webhook()
    response = await tenant.api.patch(
        f"/webhooks/{webhook['id']}", json={"signature_scheme": "ed25519"}
    )
    assert response.status_code == 200, response.text
    changes = (await last_entry(tenant))["changes"]
    assert changes == {
        "signature_scheme": {"before": "hmac-sha256", "after": "ed25519"},
        "public_key": {"before": None, "after": response.json()["public_key"]},
    }


async def test_a_rotation_records_that_it_happened_and_no_secret(tenant: Tenant) -> None:
    hmac = await tenant.webhook()
    ed25519 = await tenant.webhook(signature_scheme="ed25519")
    assert (await tenant.api.post(f"/webhooks/{hmac['id']}/secret/rotate")).status_code == 200
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.secret_rotated", "webhook", hmac["id"])
    assert entry["changes"] == {}

    rotated = await tenant.api.post(f"/webhooks/{ed25519['id']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.secret_rotated", "webhook", ed25519["id"])
    assert entry["changes"] == {
        "public_key": {"before": ed25519["public_key"], "after": rotated.json()["public_key"]}
    }


async def test_a_deleted_webhook_records_its_fields_after_null_and_stays_readable(
    tenant: Tenant,
) -> None:
    webhook = await tenant.webhook()
    assert (await tenant.api.delete(f"/webhooks/{webhook['id']}")).status_code == 204
    history = await entries(tenant.api, target_id=webhook["id"])
    assert [entry["action"] for entry in history] == ["webhook.deleted", "webhook.created"]
    deleted = history[0]["changes"]
    assert deleted["url"] == {"before": WEBHOOK_BODY["url"], "after": None}
    assert all(change["after"] is None for change in deleted.values())
    assert set(deleted) == set(history[1]["changes"])


async def test_a_test_ping_records_its_delivery(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/test")
    assert response.status_code == 202, response.text
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.tested", "webhook", webhook["id"])
    assert entry["changes"] == {
        "delivery_id": {"before": None, "after": response.json()["delivery_id"]}
    }


async def test_a_recovery_records_its_window_and_count(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    since = datetime.now(UTC) - timedelta(days=2)
    await fail_delivery(tenant, await event_delivery(tenant, webhook["id"]), since)
    body = {"since": (since - timedelta(hours=1)).isoformat()}
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=body)
    assert response.status_code == 202, response.text
    entry = await last_entry(tenant)
    assert about(entry) == ("webhook.recovered", "webhook", webhook["id"])
    recorded_since = entry["changes"].pop("since")
    assert recorded_since["before"] is None
    assert datetime.fromisoformat(recorded_since["after"]) == since - timedelta(hours=1)
    assert entry["changes"] == {"deliveries": {"before": None, "after": 1}}  # until not sent


async def test_a_retry_records_the_delivery_state_it_changed(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await event_delivery(tenant, webhook["id"])
    await fail_delivery(tenant, delivery_id, datetime.now(UTC) - timedelta(hours=1))
    before = await tenant.fetch(f"/deliveries/{delivery_id}")
    response = await tenant.api.post(f"/deliveries/{delivery_id}/retry")
    assert response.status_code == 202, response.text
    after = await tenant.fetch(f"/deliveries/{delivery_id}")
    entry = await last_entry(tenant)
    assert about(entry) == ("delivery.retried", "delivery", delivery_id)
    changes = entry["changes"]
    assert set(changes) == {"status", "next_attempt_at", "completed_at"}
    assert changes["status"] == {"before": "failed", "after": "pending"}
    assert changes["next_attempt_at"]["before"] is None
    assert changes["completed_at"]["after"] is None

    def same_time(recorded: str, shown: str) -> bool:
        return datetime.fromisoformat(recorded) == datetime.fromisoformat(shown)

    assert same_time(changes["next_attempt_at"]["after"], after["next_attempt_at"])
    assert same_time(changes["completed_at"]["before"], before["completed_at"])


async def test_actions_added_and_removed_are_in_their_webhooks_history(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    action = await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    added = await last_entry(tenant)
    assert about(added) == ("webhook.action_added", "webhook", webhook["id"])
    binding = {"id": action["id"], "event_type": "purchase", "app_id": "app_42"}
    assert added["changes"] == {"action": {"before": None, "after": binding}}
    response = await tenant.api.delete(f"/webhooks/{webhook['id']}/actions/{action['id']}")
    assert response.status_code == 204, response.text
    removed = await last_entry(tenant)
    assert about(removed) == ("webhook.action_removed", "webhook", webhook["id"])
    assert removed["changes"] == {"action": {"before": binding, "after": None}}
    history = await entries(tenant.api, target_id=webhook["id"])
    assert [entry["action"] for entry in history] == [
        "webhook.action_removed",
        "webhook.action_added",
        "webhook.created",
    ]


async def test_api_keys_created_and_revoked_record_name_and_scopes(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/api-keys", json={"name": "ci", "scopes": ["events:read", "webhooks:read"]}
    )
    assert response.status_code == 201, response.text
    key_id = response.json()["id"]
    created = await last_entry(tenant)
    assert about(created) == ("api_key.created", "api_key", key_id)
    assert created["changes"] == {
        "name": {"before": None, "after": "ci"},
        "scopes": {"before": None, "after": ["events:read", "webhooks:read"]},
    }
    assert (await tenant.api.delete(f"/api-keys/{key_id}")).status_code == 204
    revoked = await last_entry(tenant)
    assert about(revoked) == ("api_key.revoked", "api_key", key_id)
    assert revoked["changes"] == {
        "name": {"before": "ci", "after": None},
        "scopes": {"before": ["events:read", "webhooks:read"], "after": None},
    }


async def test_operations_webhooks_are_their_own_target_type(tenant: Tenant) -> None:
    response = await tenant.api.post("/operations-webhooks", json=WEBHOOK_BODY)
    assert response.status_code == 201, response.text
    ops = response.json()["id"]
    path = f"/operations-webhooks/{ops}"
    assert (await tenant.api.patch(path, json={"url": NEW_URL})).status_code == 200
    assert (await tenant.api.post(f"{path}/secret/rotate")).status_code == 200
    assert (await tenant.api.post(f"{path}/test")).status_code == 202
    assert (await tenant.api.delete(path)).status_code == 204
    history = await entries(tenant.api, target_id=ops)
    assert [about(entry) for entry in history] == [
        (f"operations_webhook.{verb}", "operations_webhook", ops)
        for verb in ("deleted", "tested", "secret_rotated", "updated", "created")
    ]
    assert history[3]["changes"] == {"url": {"before": WEBHOOK_BODY["url"], "after": NEW_URL}}
    assert history[2]["changes"] == {}


async def test_the_actor_is_the_key_that_made_the_change(app: FastAPI, tenant: Tenant) -> None:
    created = await tenant.api.post(
        "/api-keys", json={"name": "deploy bot", "scopes": ["webhooks:create"]}
    )
    bot = created.json()
    async with client_for(app, bot["api_key"]) as client:
        assert (await client.post("/webhooks", json=WEBHOOK_BODY)).status_code == 201
    entry = await last_entry(tenant)
    assert entry["action"] == "webhook.created"
    assert actor(entry) == {
        "actor_type": "api_key",
        "actor_id": bot["id"],
        "actor_name": "deploy bot",
    }


@pytest.fixture
async def as_dana(app: FastAPI, tenant: Tenant) -> AsyncIterator[None]:
    """Every request of `app` made by Dana, a person signed in at the identity provider."""
    dana = Principal(
        account_id=tenant.account_id, scopes=frozenset(Scope), subject="user-1", name="Dana"
    )

    async def signed_in() -> Principal:
        return dana

    app.dependency_overrides[authenticate] = signed_in
    yield
    app.dependency_overrides.pop(authenticate)


async def test_a_person_is_recorded_by_subject_and_name(tenant: Tenant, as_dana: None) -> None:
    webhook = await tenant.webhook()
    assert (
        await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"name": "x"})
    ).status_code == 200
    changes = await entries(tenant.api, actor="user-1")
    assert [entry["action"] for entry in changes] == ["webhook.updated", "webhook.created"]
    for entry in changes:
        assert actor(entry) == {"actor_type": "user", "actor_id": "user-1", "actor_name": "Dana"}


# --- never a secret ------------------------------------------------------------------------


async def stored_secrets(tenant: Tenant) -> set[str]:
    """Every signing secret and private key the account's webhooks hold or held."""
    async with resources.of(tenant.app).engine.connect() as conn:
        rows = await conn.execute(
            select(Webhook.secret, Webhook.previous_secret).where(
                Webhook.account_id == tenant.account_id
            )
        )
        return {value for row in rows for value in row if value is not None}


async def test_no_secret_appears_in_any_entry(tenant: Tenant) -> None:
    shown: set[str] = set()
    for scheme in ("hmac-sha256", "ed25519"):
        webhook = await tenant.webhook(signature_scheme=scheme)
        shown.add(webhook["secret"])
        for _ in range(2):
            rotated = await tenant.api.post(f"/webhooks/{webhook['id']}/secret/rotate")
            shown.add(rotated.json()["secret"])
        other = "ed25519" if scheme == "hmac-sha256" else "hmac-sha256"
        patched = await tenant.api.patch(
            f"/webhooks/{webhook['id']}", json={"signature_scheme": other}
        )
        assert patched.status_code == 200, patched.text
        shown.add((await tenant.fetch(f"/webhooks/{webhook['id']}/secret"))["secret"])
    ops = await tenant.api.post("/operations-webhooks", json=WEBHOOK_BODY)
    shown.add(ops.json()["secret"])
    rotated = await tenant.api.post(f"/operations-webhooks/{ops.json()['id']}/secret/rotate")
    shown.add(rotated.json()["secret"])
    key = await tenant.api.post("/api-keys", json={"name": "k", "scopes": ["events:read"]})
    token = key.json()["api_key"]
    assert (await tenant.api.delete(f"/api-keys/{key.json()['id']}")).status_code == 204
    signing = {value for value in shown | await stored_secrets(tenant) if value}
    assert len(signing) >= 8
    keys = {token, token.split(".", 1)[1], tenant.token, tenant.token.split(".", 1)[1]}

    found = await entries(tenant.api)
    log = json.dumps(found)
    assert "webhook.secret_rotated" in log and "api_key.created" in log
    for secret in signing | keys:
        assert secret not in log
    for secret in signing:  # nor its key material without the whsec_/whsk_ prefix
        assert secret.split("_", 1)[1][:24] not in log
    for entry in found:
        assert not set(entry["changes"]) & NEVER_RECORDED, entry


def test_diff_keeps_changed_fields_and_drops_secrets_whatever_it_is_given() -> None:
    before = {"name": "a", "url": "u", "secret": "whsec_1", "previous_secret": None}
    after = {"name": "a", "url": "v", "secret": "whsec_2", "api_key": "key_x.y", "new": 1}
    assert diff(before, after) == {
        "url": {"before": "u", "after": "v"},
        "new": {"before": None, "after": 1},
    }
    assert diff({}, {}) == {}


# --- a refused change leaves nothing; the entry and the change commit together ---------


async def count_entries(tenant: Tenant) -> int:
    async with resources.of(tenant.app).engine.connect() as conn:
        rows = await conn.execute(
            select(AuditEntry.id).where(AuditEntry.account_id == tenant.account_id)
        )
        return len(rows.all())


async def test_a_refused_change_leaves_no_entry(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    [action] = (await tenant.api.get(f"/webhooks/{webhook['id']}/actions")).json()["data"]
    inactive = await tenant.webhook(active=False)
    pending = await event_delivery(tenant, webhook["id"])
    owner_id = (await me(tenant.api))["key_id"]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    manager = await tenant.key(Scope.KEYS_MANAGE)
    async with client_for(tenant.app, manager) as narrow:
        refused: list[tuple[httpx.Response, int]] = [
            (await narrow.post("/api-keys", json={"name": "x", "scopes": ["events:read"]}), 403),
            (await narrow.delete(f"/api-keys/{owner_id}"), 403),
        ]
    # Now the owner key is the last one holding keys:manage, which stays (409).
    async with resources.of(tenant.app).engine.begin() as conn:
        revoke = update(ApiKey).where(ApiKey.id == manager.split(".", 1)[0])
        await conn.execute(revoke.values(revoked_at=datetime.now(UTC)))
    refused += [
        (await tenant.api.post("/webhooks", json={**WEBHOOK_BODY, "url": "ftp://x"}), 422),
        (await tenant.api.post("/webhooks", json={**WEBHOOK_BODY, "url": "http://10.0.0.1/"}), 422),
        (await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"name": None}), 422),
        (await tenant.api.patch("/webhooks/wh_missing", json={"name": "x"}), 404),
        (await tenant.api.delete("/webhooks/wh_missing"), 404),
        (await tenant.api.post("/webhooks/wh_missing/secret/rotate"), 404),
        (await tenant.api.post(f"/webhooks/{inactive['id']}/test"), 409),
        (
            await tenant.api.post(f"/webhooks/{inactive['id']}/recover", json={"since": yesterday}),
            409,
        ),
        (
            await tenant.api.post(
                f"/webhooks/{webhook['id']}/recover", json={"since": "3000-01-01T00:00:00Z"}
            ),
            422,
        ),
        (
            await tenant.api.post(
                f"/webhooks/{webhook['id']}/actions",
                json={"event_type": "purchase", "app_id": "app_42"},
            ),
            409,
        ),
        (await tenant.api.delete(f"/webhooks/{inactive['id']}/actions/{action['id']}"), 404),
        (await tenant.api.post(f"/deliveries/{pending}/retry"), 409),
        (await tenant.api.post("/api-keys", json={"name": "", "scopes": ["events:read"]}), 422),
        (await tenant.api.delete(f"/api-keys/{owner_id}"), 409),
        (await tenant.api.post("/operations-webhooks", json={"name": "x"}), 422),
        (await tenant.api.delete(f"/operations-webhooks/{webhook['id']}"), 404),
    ]
    for response, status in refused:
        assert_problem(response, status)
    assert [entry["action"] for entry in await entries(tenant.api)] == [
        "webhook.created",  # inactive
        "webhook.action_added",
        "webhook.created",  # webhook
    ]


async def test_the_entry_and_the_change_commit_together(
    tenant: Tenant, unraised: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry that cannot be written takes its change down with it: a second entry with
    the id of the first fails the commit, and the webhook keeps its url."""
    webhook = await tenant.webhook()
    [first] = await entries(tenant.api)
    monkeypatch.setattr(recorder, "new_id", lambda prefix: first["id"])
    response = await unraised.patch(f"/webhooks/{webhook['id']}", json={"url": NEW_URL})
    assert response.status_code == 500
    monkeypatch.undo()
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["url"] == WEBHOOK_BODY["url"]
    assert await count_entries(tenant) == 1


# --- reading: scope, filters, pages, accounts -------------------------------------------------


async def test_reading_needs_audit_read(tenant: Tenant, anonymous: httpx.AsyncClient) -> None:
    assert_problem(await anonymous.get("/audit-events"), 401)
    others = [scope for scope in Scope if scope is not Scope.AUDIT_READ]
    async with await tenant.client(*others) as client:
        problem = assert_problem(await client.get("/audit-events"), 403)
    assert "audit:read" in problem["detail"]
    async with await tenant.client(Scope.AUDIT_READ) as client:
        assert (await client.get("/audit-events")).status_code == 200


async def test_filters_by_target_and_by_actor(app: FastAPI, tenant: Tenant) -> None:
    first = await tenant.webhook(name="first")
    second = await tenant.webhook(name="second")
    bot = (
        await tenant.api.post("/api-keys", json={"name": "bot", "scopes": ["webhooks:update"]})
    ).json()
    async with client_for(app, bot["api_key"]) as client:
        assert (
            await client.patch(f"/webhooks/{first['id']}", json={"name": "1"})
        ).status_code == 200
        assert (
            await client.patch(f"/webhooks/{second['id']}", json={"name": "2"})
        ).status_code == 200
    owner_id = (await me(tenant.api))["key_id"]

    def summary(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(entry["action"], entry["target_id"]) for entry in found]

    assert summary(await entries(tenant.api, target_id=first["id"])) == [
        ("webhook.updated", first["id"]),
        ("webhook.created", first["id"]),
    ]
    assert summary(await entries(tenant.api, actor=bot["id"])) == [
        ("webhook.updated", second["id"]),
        ("webhook.updated", first["id"]),
    ]
    assert summary(await entries(tenant.api, actor=owner_id)) == [
        ("api_key.created", bot["id"]),
        ("webhook.created", second["id"]),
        ("webhook.created", first["id"]),
    ]
    assert summary(await entries(tenant.api, target_id=second["id"], actor=bot["id"])) == [
        ("webhook.updated", second["id"])
    ]
    assert await entries(tenant.api, target_id="wh_missing") == []
    assert await entries(tenant.api, actor="nobody\x00") == []


@pytest.mark.parametrize(
    ("param", "value"),
    [("target_id", "w" * 65), ("actor", "a" * 256), ("limit", "0"), ("cursor", "nope")],
)
async def test_an_invalid_filter_is_422_naming_it(tenant: Tenant, param: str, value: str) -> None:
    problem = assert_problem(await tenant.api.get("/audit-events", params={param: value}), 422)
    assert problem["errors"][0]["loc"] == ["query", param]


async def test_pages_run_newest_first_without_skips_or_repeats(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    for number in range(6):
        patched = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"name": f"n{number}"})
        assert patched.status_code == 200
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = (await tenant.api.get("/audit-events", params=params)).json()
        seen += [entry["id"] for entry in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7
    assert seen == sorted(seen, reverse=True)
    everything = await entries(tenant.api)
    assert [entry["id"] for entry in everything] == seen
    assert everything[0]["changes"] == {"name": {"before": "n4", "after": "n5"}}


async def test_an_account_sees_only_its_own_entries(tenant: Tenant, other: Tenant) -> None:
    mine = await tenant.webhook()
    theirs = await other.webhook()
    assert [entry["target_id"] for entry in await entries(tenant.api)] == [mine["id"]]
    assert [entry["target_id"] for entry in await entries(other.api)] == [theirs["id"]]
    assert await entries(other.api, target_id=mine["id"]) == []
    assert await entries(other.api, actor=(await me(tenant.api))["key_id"]) == []
    # A foreign change attempt is a 404 and leaves nothing in either log.
    assert_problem(await other.api.patch(f"/webhooks/{mine['id']}", json={"name": "x"}), 404)
    assert await count_entries(tenant) == 1 and await count_entries(other) == 1
