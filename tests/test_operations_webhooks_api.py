"""/operations-webhooks, the API side (docs/api.md#operations-webhooks): the same fields,
rules and signing as a webhook, a collection of its own (never in /webhooks, no actions,
no events), and notices that carry their facts. What they receive:
tests/workers/test_operations_webhooks.py; scopes: tests/test_auth.py; other accounts:
tests/test_tenancy.py."""

from typing import Any

from tests.conftest import WEBHOOK_BODY, Tenant
from tests.support.problems import assert_problem, error_locs

OPS_BODY = {**WEBHOOK_BODY, "name": "ops alerts", "url": "https://ops.example.com/storehooks"}


async def create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await tenant.api.post("/operations-webhooks", json={**OPS_BODY, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/operations-webhooks/{response.json()['id']}"
    created: dict[str, Any] = response.json()
    return created


async def test_an_operations_webhook_has_a_webhooks_fields_and_secret(tenant: Tenant) -> None:
    created = await create(tenant, payload_type="xml", max_in_flight=3)

    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    shown = await tenant.fetch(f"/operations-webhooks/{created['id']}")
    assert shown == {key: value for key, value in created.items() if key != "secret"}
    assert (shown["payload_type"], shown["max_in_flight"], shown["active"]) == ("xml", 3, True)
    secret = await tenant.fetch(f"/operations-webhooks/{created['id']}/secret")
    assert secret == {
        "signature_scheme": "hmac-sha256",
        "secret": created["secret"],
        "public_key": None,
    }
    rotated = await tenant.api.post(f"/operations-webhooks/{created['id']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] not in (None, created["secret"])


async def test_an_ed25519_operations_webhook_shows_its_public_key_only(tenant: Tenant) -> None:
    created = await create(tenant, signature_scheme="ed25519")
    assert created["secret"] is None
    assert created["public_key"].startswith("whpk_")


async def test_the_two_collections_never_mix(tenant: Tenant) -> None:
    ops = await create(tenant)
    webhook = await tenant.webhook()

    listed = (await tenant.fetch("/operations-webhooks"))["data"]
    assert [item["id"] for item in listed] == [ops["id"]]
    assert [item["id"] for item in (await tenant.fetch("/webhooks"))["data"]] == [webhook["id"]]
    for path in (f"/webhooks/{ops['id']}", f"/webhooks/{ops['id']}/secret"):
        assert_problem(await tenant.api.get(path), 404)
    assert_problem(await tenant.api.get(f"/operations-webhooks/{webhook['id']}"), 404)
    assert_problem(await tenant.api.delete(f"/webhooks/{ops['id']}"), 404)
    assert (await tenant.fetch(f"/operations-webhooks/{ops['id']}"))["active"] is True


async def test_an_operations_webhook_takes_no_actions_and_gets_no_events(tenant: Tenant) -> None:
    ops = await create(tenant)
    action = {"event_type": "purchase", "app_id": "app_42"}

    refused = await tenant.api.post(f"/webhooks/{ops['id']}/actions", json=action)
    assert_problem(refused, 404)
    assert_problem(await tenant.api.get(f"/webhooks/{ops['id']}/actions"), 404)
    assert_problem(
        await tenant.api.post(
            f"/webhooks/{ops['id']}/recover", json={"since": "2026-01-01T00:00:00Z"}
        ),
        404,
    )
    assert (await tenant.fetch("/actions"))["data"] == []
    assert (await tenant.event())["deliveries"] == 0
    assert (await tenant.fetch("/deliveries"))["data"] == []


async def test_invalid_bodies_name_the_field(tenant: Tenant) -> None:
    response = await tenant.api.post("/operations-webhooks", json={**OPS_BODY, "url": "ftp://x"})
    assert error_locs(response) == [["body", "url"]]
    response = await tenant.api.post("/operations-webhooks", json={**OPS_BODY, "events": ["*"]})
    assert error_locs(response) == [["body", "events"]]
    ops = await create(tenant)
    response = await tenant.api.patch(f"/operations-webhooks/{ops['id']}", json={"name": None})
    assert error_locs(response) == [["body", "name"]]


async def test_update_switch_off_and_delete(tenant: Tenant) -> None:
    ops = await create(tenant)
    path = f"/operations-webhooks/{ops['id']}"

    patched = await tenant.api.patch(path, json={"name": "pager", "active": False})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["active"]) == ("pager", False)
    assert patched.json()["disabled_reason"] == "manual"
    assert_problem(await tenant.api.post(f"{path}/test"), 409)  # inactive, as for a webhook
    assert (await tenant.fetch("/notices"))["data"] == []  # the merchant's own switch

    assert (await tenant.api.delete(path)).status_code == 204
    assert_problem(await tenant.api.get(path), 404)
    assert (await tenant.fetch("/operations-webhooks"))["data"] == []


async def test_a_test_ping_is_a_test_delivery_to_it(tenant: Tenant) -> None:
    ops = await create(tenant)
    response = await tenant.api.post(f"/operations-webhooks/{ops['id']}/test")
    assert response.status_code == 202, response.text
    delivery = await tenant.fetch(f"/deliveries/{response.json()['delivery_id']}")
    assert (delivery["webhook_id"], delivery["kind"], delivery["notice_id"]) == (
        ops["id"],
        "test",
        None,
    )


async def test_openapi_names_exactly_the_types_an_operations_endpoint_receives(
    tenant: Tenant,
) -> None:
    """One type per kind of notice; the audit log's `webhook.action_*` are not among them."""
    document = (await tenant.api.get("/openapi.json")).json()
    assert document["components"]["schemas"]["OperationalEventType"]["enum"] == [
        "webhook.disabled",
        "webhook.failing",
        "webhook.recovered",
        "delivery.exhausted",
        "webhook.test_failed",
    ]
