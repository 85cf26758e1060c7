"""Webhooks (docs/api.md#webhooks, #outbound-safety): CRUD, validation, private
targets, soft delete and the signing secret."""

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app import resources
from app.core.models import Webhook
from app.core.settings import Settings
from tests.conftest import WEBHOOK_BODY, Tenant, running_app, tenant_of
from tests.support.problems import assert_invalid, assert_problem

PUBLIC_FIELDS = {
    "id",
    "name",
    "url",
    "http_method",
    "payload_type",
    "active",
    "disabled_reason",
    "success_statuses",
    "ordered",
    "max_in_flight",
    "signature_scheme",
    "public_key",
    "created_at",
    "updated_at",
}
MISSING = object()
URL_PREFIX = "https://x.example.com/"


def url_of_length(length: int) -> str:
    return URL_PREFIX + "a" * (length - len(URL_PREFIX))


PRIVATE_URLS = [
    pytest.param("http://127.0.0.1/x", id="loopback-v4"),
    pytest.param("http://10.0.0.5/", id="private-10"),
    pytest.param("http://[::1]/", id="loopback-v6"),
    pytest.param("http://169.254.169.254/latest", id="link-local-metadata"),
    pytest.param("http://0.0.0.0/", id="unspecified"),
    pytest.param("http://2130706433/", id="decimal-loopback"),
]
PUBLIC_URLS = [
    pytest.param("http://93.184.216.34/", id="public-literal"),
    pytest.param("https://receiver.example.org/hooks", id="hostname"),
]


# --- helpers -------------------------------------------------------------------------


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def assert_secret(secret: str) -> None:
    prefix = "whsec_"
    assert secret.startswith(prefix), secret
    raw = base64.b64decode(secret.removeprefix(prefix), validate=True)
    assert 24 <= len(raw) <= 64


def public(webhook: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in webhook.items() if key != "secret"}


def without_updated_at(webhook: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in public(webhook).items() if key != "updated_at"}


async def listed_ids(tenant: Tenant) -> list[str]:
    response = await tenant.api.get("/webhooks")
    assert response.status_code == 200, response.text
    return [webhook["id"] for webhook in response.json()["data"]]


async def post_webhook(tenant: Tenant, **changes: Any) -> httpx.Response:
    body = {**WEBHOOK_BODY, **changes}
    body = {key: value for key, value in body.items() if value is not MISSING}
    return await tenant.api.post("/webhooks", json=body)


# --- create ----------------------------------------------------------------------------


async def test_create_answers_201_with_the_webhook_and_its_secret(tenant: Tenant) -> None:
    response = await tenant.api.post("/webhooks", json=WEBHOOK_BODY)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == PUBLIC_FIELDS | {"secret"}
    assert response.headers["location"] == f"/webhooks/{created['id']}"
    assert isinstance(created["id"], str) and created["id"]
    assert {key: created[key] for key in WEBHOOK_BODY} == WEBHOOK_BODY
    assert created["active"] is True
    assert created["disabled_reason"] is None
    assert parse_time(created["created_at"]) <= parse_time(created["updated_at"])
    assert_secret(created["secret"])


async def test_each_webhook_gets_its_own_secret(tenant: Tenant) -> None:
    first = await tenant.webhook()
    second = await tenant.webhook()
    assert first["id"] != second["id"]
    assert first["secret"] != second["secret"]


async def test_created_inactive_is_disabled_manually(tenant: Tenant) -> None:
    created = await tenant.webhook(active=False)
    assert created["active"] is False
    assert created["disabled_reason"] == "manual"
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"name": "n" * 200}, {"name": "n" * 200}, id="name-200-chars"),
        pytest.param({"name": "n"}, {"name": "n"}, id="name-1-char"),
        pytest.param({"url": url_of_length(2048)}, {"url": url_of_length(2048)}, id="url-2048"),
        pytest.param({"url": "http://x.example.com/"}, {"url": "http://x.example.com/"}, id="http"),
        pytest.param({"http_method": "PUT"}, {"http_method": "PUT"}, id="put"),
        pytest.param({"payload_type": "xml"}, {"payload_type": "xml"}, id="xml"),
        pytest.param({"payload_type": "form"}, {"payload_type": "form"}, id="form"),
    ],
)
async def test_create_accepts_boundary_values(
    tenant: Tenant, changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await post_webhook(tenant, **changes)
    assert response.status_code == 201, response.text
    created = response.json()
    assert {key: created[key] for key in expected} == expected
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"name": MISSING}, "name", id="missing-name"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "n" * 201}, "name", id="name-201-chars"),
        pytest.param({"url": MISSING}, "url", id="missing-url"),
        pytest.param({"url": "ftp://x.example.com/"}, "url", id="ftp-url"),
        pytest.param({"url": "https://user:pass@x.example.com/"}, "url", id="userinfo-url"),
        pytest.param({"url": "https://user@x.example.com/"}, "url", id="username-url"),
        pytest.param({"url": "/hooks"}, "url", id="relative-url"),
        pytest.param({"url": url_of_length(2049)}, "url", id="url-2049-chars"),
        pytest.param({"http_method": MISSING}, "http_method", id="missing-method"),
        pytest.param({"http_method": "GET"}, "http_method", id="method-get"),
        pytest.param({"http_method": "post"}, "http_method", id="method-lowercase"),
        pytest.param({"payload_type": MISSING}, "payload_type", id="missing-payload-type"),
        pytest.param({"payload_type": "yaml"}, "payload_type", id="payload-type-yaml"),
        pytest.param({"active": "maybe"}, "active", id="active-not-boolean"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    ],
)
async def test_create_rejects_invalid_fields(
    tenant: Tenant, changes: dict[str, Any], field: str
) -> None:
    response = await post_webhook(tenant, **changes)
    assert_invalid(response, field)
    assert await listed_ids(tenant) == []


async def test_create_rejects_malformed_json(tenant: Tenant) -> None:
    response = await tenant.api.post(
        "/webhooks",
        content=b'{"name": "orders", "url": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)
    assert await listed_ids(tenant) == []


# --- reads never show the secret -------------------------------------------------------


async def test_get_one_omits_the_secret(tenant: Tenant) -> None:
    created = await tenant.webhook()

    response = await tenant.api.get(f"/webhooks/{created['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == public(created)
    assert set(response.json()) == PUBLIC_FIELDS
    assert "secret" not in response.text
    assert created["secret"].removeprefix("whsec_") not in response.text


async def test_list_omits_the_secret_and_is_newest_first(tenant: Tenant) -> None:
    first = await tenant.webhook(name="first")
    second = await tenant.webhook(name="second")

    response = await tenant.api.get("/webhooks")

    assert response.status_code == 200, response.text
    page = response.json()
    assert page == {"data": [public(second), public(first)], "next_cursor": None}
    assert "secret" not in response.text
    assert "whsec_" not in response.text


async def test_unknown_webhook_is_404(tenant: Tenant) -> None:
    assert_problem(await tenant.api.get("/webhooks/wh_does_not_exist"), 404)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        pytest.param("GET", "", None, id="get"),
        pytest.param("PATCH", "", {"name": "stolen"}, id="patch"),
        pytest.param("DELETE", "", None, id="delete"),
        pytest.param("GET", "/secret", None, id="read-secret"),
        pytest.param("POST", "/secret/rotate", None, id="rotate-secret"),
    ],
)
async def test_another_accounts_webhook_is_404(
    tenant: Tenant, other: Tenant, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    theirs = await other.webhook()

    response = await tenant.api.request(method, f"/webhooks/{theirs['id']}{suffix}", json=body)

    assert_problem(response, 404)
    assert public(await other.fetch(f"/webhooks/{theirs['id']}")) == public(theirs)
    secret = (await other.api.get(f"/webhooks/{theirs['id']}/secret")).json()
    assert secret["secret"] == theirs["secret"]


# --- outbound safety (docs/api.md#outbound-safety) ------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_create_refuses_private_targets(tenant: Tenant, url: str) -> None:
    assert_invalid(await post_webhook(tenant, url=url), "url")
    assert await listed_ids(tenant) == []


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_patch_refuses_private_targets(tenant: Tenant, url: str) -> None:
    created = await tenant.webhook()

    assert_invalid(await tenant.api.patch(f"/webhooks/{created['id']}", json={"url": url}), "url")
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


@pytest.mark.parametrize("url", PUBLIC_URLS)
async def test_public_targets_are_accepted(tenant: Tenant, url: str) -> None:
    created = await tenant.webhook(url=url)
    assert created["url"] == url

    other = await tenant.webhook()
    response = await tenant.api.patch(f"/webhooks/{other['id']}", json={"url": url})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url


CONTROL_CHARACTERS = [chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))]


async def test_urls_with_control_characters_are_refused_at_create_and_update(
    tenant: Tenant,
) -> None:
    """Every C0 and C1 control character and DEL, in the host, the path or the query: no
    client could ever send such a URL, so it is refused like white space (a 422 on url)."""
    created = await tenant.webhook()
    for char in CONTROL_CHARACTERS:
        for url in (
            f"https://x.exa{char}mple.com/",
            f"{URL_PREFIX}a{char}b",
            f"{URL_PREFIX}?q={char}",
        ):
            assert_invalid(await post_webhook(tenant, url=url), "url")
            patched = await tenant.api.patch(f"/webhooks/{created['id']}", json={"url": url})
            assert_invalid(patched, "url")
    assert await listed_ids(tenant) == [created["id"]]
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


async def test_urls_with_printable_neighbours_of_control_characters_are_accepted(
    tenant: Tenant,
) -> None:
    """The characters just past each control range (U+007E, U+00A0 is white space, so U+00A1)
    are still accepted and kept exactly as given."""
    for url in (f"{URL_PREFIX}~", f"{URL_PREFIX}\u00a1"):
        assert (await tenant.webhook(url=url))["url"] == url


@pytest.fixture
async def permissive_tenant(database_url: str, redis_url: str) -> AsyncIterator[Tenant]:
    """A tenant of an app started with STOREHOOKS_ALLOW_PRIVATE_NETWORKS=true."""
    settings = Settings(database_url=database_url, redis_url=redis_url, allow_private_networks=True)
    async with running_app(settings) as application, tenant_of(application, "Lab") as tenant:
        yield tenant


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_targets_are_accepted_when_allowed(
    permissive_tenant: Tenant, url: str
) -> None:
    created = await permissive_tenant.webhook(url=url)
    assert created["url"] == url

    other = await permissive_tenant.webhook()
    response = await permissive_tenant.api.patch(f"/webhooks/{other['id']}", json={"url": url})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url


async def test_allowing_private_networks_still_validates_urls(permissive_tenant: Tenant) -> None:
    assert_invalid(await post_webhook(permissive_tenant, url="ftp://127.0.0.1/"), "url")


# --- update ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": "renamed"}, id="name"),
        pytest.param({"url": "https://elsewhere.example.net/in"}, id="url"),
        pytest.param({"http_method": "PUT"}, id="method"),
        pytest.param({"payload_type": "xml"}, id="payload-type"),
        pytest.param({"name": "both", "payload_type": "form"}, id="name-and-payload-type"),
        pytest.param(
            {
                "name": "all",
                "url": "http://93.184.216.34/all",
                "http_method": "PUT",
                "payload_type": "form",
            },
            id="all-but-active",
        ),
    ],
)
async def test_patch_changes_only_the_given_fields(tenant: Tenant, changes: dict[str, Any]) -> None:
    created = await tenant.webhook()

    response = await tenant.api.patch(f"/webhooks/{created['id']}", json=changes)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert set(updated) == PUBLIC_FIELDS
    assert without_updated_at(updated) == {**without_updated_at(created), **changes}
    assert parse_time(updated["updated_at"]) >= parse_time(created["updated_at"])
    assert await tenant.fetch(f"/webhooks/{created['id']}") == updated


async def test_patch_active_false_then_true(tenant: Tenant) -> None:
    created = await tenant.webhook()
    path = f"/webhooks/{created['id']}"

    off = await tenant.api.patch(path, json={"active": False})
    assert off.status_code == 200, off.text
    assert (off.json()["active"], off.json()["disabled_reason"]) == (False, "manual")
    assert without_updated_at(off.json()) == {
        **without_updated_at(created),
        "active": False,
        "disabled_reason": "manual",
    }

    on = await tenant.api.patch(path, json={"active": True})
    assert on.status_code == 200, on.text
    assert (on.json()["active"], on.json()["disabled_reason"]) == (True, None)
    assert without_updated_at(on.json()) == without_updated_at(created)
    assert await tenant.fetch(f"/webhooks/{created['id']}") == on.json()


@pytest.mark.parametrize("field", ["name", "url", "http_method", "payload_type", "active"])
async def test_patch_refuses_explicit_null(tenant: Tenant, field: str) -> None:
    created = await tenant.webhook()

    response = await tenant.api.patch(f"/webhooks/{created['id']}", json={field: None})

    assert_invalid(response, field)
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"url": "ftp://x.example.com/"}, "url", id="ftp-url"),
        pytest.param({"http_method": "GET"}, "http_method", id="method-get"),
        pytest.param({"payload_type": "yaml"}, "payload_type", id="payload-type-yaml"),
        pytest.param({"secret": "whsec_AAAA"}, "secret", id="read-only-secret"),
        pytest.param({"disabled_reason": None}, "disabled_reason", id="read-only-reason"),
    ],
)
async def test_patch_validates_like_create(
    tenant: Tenant, changes: dict[str, Any], field: str
) -> None:
    created = await tenant.webhook()

    assert_invalid(await tenant.api.patch(f"/webhooks/{created['id']}", json=changes), field)
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


async def test_patch_with_empty_body_changes_nothing(tenant: Tenant) -> None:
    created = await tenant.webhook()

    response = await tenant.api.patch(f"/webhooks/{created['id']}", json={})

    assert response.status_code == 200, response.text
    assert without_updated_at(response.json()) == without_updated_at(created)
    assert parse_time(response.json()["updated_at"]) >= parse_time(created["updated_at"])


ACTIVE_TWICE = "Duplicate key 'active': a JSON object may name each key once."


async def test_patch_naming_active_twice_is_422_and_changes_nothing(tenant: Tenant) -> None:
    """The last `active` won: this switched the webhook off, though a client reading the
    first would think it left on."""
    created = await tenant.webhook()

    response = await tenant.api.patch(
        f"/webhooks/{created['id']}",
        content=b'{"active": true, "active": false}',
        headers={"Content-Type": "application/json"},
    )

    body = assert_problem(response, 422)
    assert body["errors"] == [{"loc": ["body", "active"], "msg": ACTIVE_TWICE}]
    assert public(await tenant.fetch(f"/webhooks/{created['id']}")) == public(created)


async def test_create_naming_active_twice_is_422_and_creates_nothing(tenant: Tenant) -> None:
    body = b'{"name": "orders", "url": "https://hooks.example.com/store", "http_method": '
    body += b'"POST", "payload_type": "json", "active": false, "active": true}'

    response = await tenant.api.post(
        "/webhooks", content=body, headers={"Content-Type": "application/json"}
    )

    assert assert_problem(response, 422)["errors"] == [
        {"loc": ["body", "active"], "msg": ACTIVE_TWICE}
    ]
    assert await listed_ids(tenant) == []


# --- delete ----------------------------------------------------------------------------


async def test_delete_answers_204_and_the_webhook_is_gone(tenant: Tenant) -> None:
    kept = await tenant.webhook(name="kept")
    doomed = await tenant.webhook(name="doomed")
    path = f"/webhooks/{doomed['id']}"

    response = await tenant.api.delete(path)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await tenant.api.get(path), 404)
    assert_problem(await tenant.api.patch(path, json={"name": "again"}), 404)
    assert_problem(await tenant.api.delete(path), 404)
    assert_problem(await tenant.api.get(f"{path}/secret"), 404)
    assert_problem(await tenant.api.get(f"{path}/actions"), 404)
    assert await listed_ids(tenant) == [kept["id"]]


async def test_delete_takes_the_actions_with_it(tenant: Tenant) -> None:
    kept = await tenant.webhook(name="kept")
    doomed = await tenant.webhook(name="doomed")
    kept_action = await tenant.action(kept["id"], event_type="purchase", app_id="app_42")
    await tenant.action(doomed["id"], event_type="purchase", app_id="app_42")
    await tenant.action(doomed["id"], event_type="subscription_cancelled", sku_id="sub_1")

    assert (await tenant.api.delete(f"/webhooks/{doomed['id']}")).status_code == 204

    listing = await tenant.api.get("/actions")
    assert listing.status_code == 200, listing.text
    assert [action["id"] for action in listing.json()["data"]] == [kept_action["id"]]


async def test_events_after_delete_create_no_delivery(tenant: Tenant) -> None:
    doomed = await tenant.webhook()
    await tenant.action(doomed["id"], event_type="purchase", app_id="app_42")
    assert (await tenant.api.delete(f"/webhooks/{doomed['id']}")).status_code == 204

    accepted = await tenant.event(app_id="app_42")

    assert accepted["deliveries"] == 0
    listing = await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})
    assert listing.json() == {"data": [], "next_cursor": None}


async def test_delete_cancels_pending_deliveries_and_keeps_history(tenant: Tenant) -> None:
    doomed = await tenant.webhook()
    await tenant.action(doomed["id"], event_type="purchase", app_id="app_42")
    accepted = await tenant.event(app_id="app_42")
    assert accepted["deliveries"] == 1
    before = (await tenant.api.get("/deliveries", params={"webhook_id": doomed["id"]})).json()
    [pending] = before["data"]
    assert (pending["status"], pending["completed_at"]) == ("pending", None)

    assert (await tenant.api.delete(f"/webhooks/{doomed['id']}")).status_code == 204

    listing = await tenant.api.get("/deliveries", params={"webhook_id": doomed["id"]})
    assert listing.status_code == 200, listing.text
    [cancelled] = listing.json()["data"]
    assert cancelled["id"] == pending["id"]
    assert cancelled["event_id"] == accepted["id"]
    assert cancelled["webhook_id"] == doomed["id"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["completed_at"] is not None
    assert parse_time(cancelled["completed_at"]) >= parse_time(pending["created_at"])

    detail = await tenant.api.get(f"/deliveries/{pending['id']}")
    assert detail.status_code == 200, detail.text
    assert detail.json() == {**cancelled, "attempts": [], "waiting_for": None}


# --- secret ----------------------------------------------------------------------------


async def test_read_secret_returns_the_one_from_create(tenant: Tenant) -> None:
    created = await tenant.webhook()

    response = await tenant.api.get(f"/webhooks/{created['id']}/secret")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "signature_scheme": "hmac-sha256",
        "secret": created["secret"],
        "public_key": None,
    }


async def test_rotate_secret_keeps_the_old_one_for_24_hours(app: FastAPI, tenant: Tenant) -> None:
    created = await tenant.webhook()
    old = created["secret"]

    response = await tenant.api.post(f"/webhooks/{created['id']}/secret/rotate")
    rotated_at = datetime.now(UTC)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"signature_scheme": "hmac-sha256", "secret": body["secret"], "public_key": None}
    new = body["secret"]
    assert_secret(new)
    assert new != old
    current = await tenant.api.get(f"/webhooks/{created['id']}/secret")
    assert current.json() == body

    async with resources.of(app).sessionmaker() as session:
        row = await session.get(Webhook, created["id"])
    assert row is not None
    assert row.secret == new
    assert row.previous_secret == old
    assert row.previous_secret_expires_at is not None
    expected = rotated_at + timedelta(hours=24)
    assert abs(row.previous_secret_expires_at - expected) <= timedelta(minutes=1)


async def test_rotating_twice_keeps_only_the_latest_previous(app: FastAPI, tenant: Tenant) -> None:
    created = await tenant.webhook()
    path = f"/webhooks/{created['id']}/secret/rotate"
    middle = (await tenant.api.post(path)).json()["secret"]
    latest = (await tenant.api.post(path)).json()["secret"]

    assert len({created["secret"], middle, latest}) == 3
    async with resources.of(app).sessionmaker() as session:
        row = await session.get(Webhook, created["id"])
    assert row is not None
    assert (row.secret, row.previous_secret) == (latest, middle)


async def test_secret_routes_are_404_for_unknown_webhook(tenant: Tenant) -> None:
    assert_problem(await tenant.api.get("/webhooks/wh_nope/secret"), 404)
    assert_problem(await tenant.api.post("/webhooks/wh_nope/secret/rotate"), 404)
