"""The OpenAPI document as generators read it (issue 14, point 6): hand-picked
operationIds, a named schema for every body and answer, named enum members, the
response headers the routes send, PATCH fields that may be left out but not be null,
and `required` saying which fields a body must carry and an answer always has."""

import re
from typing import Any

import httpx
import pytest

from app.core.enums import SuccessStatuses
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import Tenant

DOCUMENT: dict[str, Any] = create_app(Settings()).openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
OPERATIONS = {
    (method, path): operation
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
}
OPERATION_IDS = {
    ("get", "/me"): "getMe",
    ("post", "/api-keys"): "createApiKey",
    ("get", "/api-keys"): "listApiKeys",
    ("delete", "/api-keys/{key_id}"): "revokeApiKey",
    ("post", "/webhooks"): "createWebhook",
    ("get", "/webhooks"): "listWebhooks",
    ("get", "/webhooks/{webhook_id}"): "getWebhook",
    ("patch", "/webhooks/{webhook_id}"): "updateWebhook",
    ("delete", "/webhooks/{webhook_id}"): "deleteWebhook",
    ("get", "/webhooks/{webhook_id}/secret"): "getWebhookSecret",
    ("post", "/webhooks/{webhook_id}/secret/rotate"): "rotateWebhookSecret",
    ("post", "/webhooks/{webhook_id}/test"): "testWebhook",
    ("post", "/webhooks/{webhook_id}/recover"): "recoverDeliveries",
    ("post", "/webhooks/{webhook_id}/actions"): "createAction",
    ("get", "/webhooks/{webhook_id}/actions"): "listWebhookActions",
    ("get", "/actions"): "searchActions",
    ("delete", "/webhooks/{webhook_id}/actions/{action_id}"): "deleteAction",
    ("post", "/events"): "createEvent",
    ("get", "/events"): "listEvents",
    ("get", "/events/{event_id}"): "getEvent",
    ("get", "/deliveries"): "listDeliveries",
    ("get", "/deliveries/{delivery_id}"): "getDelivery",
    ("post", "/deliveries/{delivery_id}/retry"): "retryDelivery",
    ("get", "/notices"): "listNotices",
    ("post", "/operations-webhooks"): "createOperationsWebhook",
    ("get", "/operations-webhooks"): "listOperationsWebhooks",
    ("get", "/operations-webhooks/{webhook_id}"): "getOperationsWebhook",
    ("patch", "/operations-webhooks/{webhook_id}"): "updateOperationsWebhook",
    ("delete", "/operations-webhooks/{webhook_id}"): "deleteOperationsWebhook",
    ("get", "/operations-webhooks/{webhook_id}/secret"): "getOperationsWebhookSecret",
    ("post", "/operations-webhooks/{webhook_id}/secret/rotate"): "rotateOperationsWebhookSecret",
    ("post", "/operations-webhooks/{webhook_id}/test"): "testOperationsWebhook",
    ("get", "/audit-events"): "listAuditEvents",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
}


def test_every_operation_has_its_hand_picked_id() -> None:
    """Changing one breaks every generated client: this list changes only on purpose."""
    found = {key: operation.get("operationId") for key, operation in OPERATIONS.items()}
    assert found == OPERATION_IDS


def bodies() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, media type, schema) of every request body and answer of the document."""
    found = []
    for (method, path), operation in OPERATIONS.items():
        body = operation.get("requestBody", {}).get("content", {})
        found += [(f"{method} {path} body", media, item["schema"]) for media, item in body.items()]
        for status, answer in operation["responses"].items():
            for media, item in answer.get("content", {}).items():
                found.append((f"{method} {path} {status}", media, item.get("schema", {})))
    return found


def test_every_json_body_and_answer_is_a_named_schema() -> None:
    for where, media, schema in bodies():
        if media == "text/plain":
            assert schema == {"type": "string"}, where
            continue
        assert set(schema) == {"$ref"}, (where, schema)
        assert schema["$ref"].removeprefix("#/components/schemas/") in SCHEMAS, where


def test_every_schema_name_is_a_plain_class_name() -> None:
    """Not made up from a route (HealthzHealthzGetResponse...) nor from a generic
    (Page_WebhookOut_): a page of webhooks is a WebhookPage."""
    assert [name for name in SCHEMAS if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", name)] == []
    assert {"WebhookPage", "DeliveryPage", "Health", "Readiness"} <= set(SCHEMAS)


def test_every_enum_names_its_members() -> None:
    assert SCHEMAS["SuccessStatuses"]["x-enum-varnames"] == ["ONLY_200", "ANY_2XX"]
    for name, schema in SCHEMAS.items():
        if "enum" in schema:
            names = schema.get("x-enum-varnames")
            assert names is not None and len(names) == len(schema["enum"]), name
    assert [member.name for member in SuccessStatuses] == ["ONLY_200", "ANY_2XX"]


@pytest.mark.parametrize(
    ("method", "path", "status", "header", "required"),
    [
        ("post", "/webhooks", "201", "Location", True),
        ("post", "/operations-webhooks", "201", "Location", True),
        ("post", "/events", "202", "Idempotent-Replayed", False),
        ("get", "/webhooks", "429", "Retry-After", True),
        ("post", "/events", "401", "WWW-Authenticate", True),
    ],
)
def test_response_headers_are_declared(
    method: str, path: str, status: str, header: str, required: bool
) -> None:
    declared = OPERATIONS[(method, path)]["responses"][status]["headers"][header]
    assert declared["required"] is required
    assert declared["description"]


def test_every_keyed_operation_declares_retry_after_on_its_429() -> None:
    for key, operation in OPERATIONS.items():
        if operation.get("security"):
            assert "Retry-After" in operation["responses"]["429"]["headers"], key
        else:
            assert operation["security"] == [], key  # said outright, for linters


def test_a_patch_field_may_be_left_out_but_is_never_nullable() -> None:
    schema = SCHEMAS["WebhookUpdate"]
    assert "required" not in schema
    assert set(schema["properties"]) == set(SCHEMAS["WebhookCreate"]["properties"])
    for name, field in schema["properties"].items():
        assert "anyOf" not in field and "default" not in field, (name, field)
        assert field.get("type") != "null", name
        assert "$ref" in field or "type" in field, name


def test_request_fields_with_defaults_are_not_required() -> None:
    assert sorted(SCHEMAS["WebhookCreate"]["required"]) == [
        "http_method",
        "name",
        "payload_type",
        "url",
    ]
    assert SCHEMAS["EventCreate"]["required"] == ["type", "app_id"]


def test_answer_fields_are_all_required_but_the_problem_errors() -> None:
    """Every field of an answer is always sent (null where it has no value), so every
    one is required; a problem's `errors` comes only with a 422."""
    answers = {
        schema["$ref"].removeprefix("#/components/schemas/")
        for where, _media, schema in bodies()
        if "body" not in where and "$ref" in schema
    }
    for name in answers - {"Problem"}:
        schema = SCHEMAS[name]
        assert sorted(schema["required"]) == sorted(schema["properties"]), name
    problem = SCHEMAS["Problem"]
    assert sorted(problem["required"]) == ["detail", "status", "title", "type"]
    assert "default" not in problem["properties"]["errors"]


async def test_a_null_in_a_patch_is_still_refused_and_an_absent_field_kept(
    tenant: Tenant,
) -> None:
    """The schema change is only in the document: the server's behaviour is the same."""
    webhook = await tenant.webhook()
    refused = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": None})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "active"]
    kept = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"ordered": True})
    assert kept.status_code == 200
    assert {key: kept.json()[key] for key in ("ordered", "active", "name")} == {
        "ordered": True,
        "active": True,
        "name": "orders",
    }


async def test_the_served_answers_carry_the_declared_headers(tenant: Tenant) -> None:
    created = await tenant.api.post(
        "/webhooks",
        json={
            "name": "orders",
            "url": "https://hooks.example.com/store",
            "http_method": "POST",
            "payload_type": "json",
        },
    )
    assert created.headers["Location"] == f"/webhooks/{created.json()['id']}"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=tenant.app), base_url="http://storehooks.test"
    ) as anonymous:
        assert (await anonymous.get("/me")).headers["WWW-Authenticate"] == "Bearer"
