"""GET /healthz, /readyz, /metrics, /openapi.json and /docs (docs/api.md#operations)."""

from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tenant, client_for
from tests.support.routes import normalize

# Every route of docs/api.md, as (method, path) with the parameters unnamed.
CONTRACT_ROUTES = {
    ("get", "/me"),
    ("post", "/api-keys"),
    ("get", "/api-keys"),
    ("delete", "/api-keys/{}"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("get", "/webhooks/{}"),
    ("patch", "/webhooks/{}"),
    ("delete", "/webhooks/{}"),
    ("get", "/webhooks/{}/secret"),
    ("post", "/webhooks/{}/secret/rotate"),
    ("post", "/webhooks/{}/test"),
    ("post", "/webhooks/{}/actions"),
    ("get", "/webhooks/{}/actions"),
    ("delete", "/webhooks/{}/actions/{}"),
    ("get", "/actions"),
    ("post", "/events"),
    ("get", "/events"),
    ("get", "/events/{}"),
    ("get", "/deliveries"),
    ("get", "/deliveries/{}"),
    ("post", "/deliveries/{}/retry"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


async def openapi(anonymous: httpx.AsyncClient) -> dict[str, Any]:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


# --- health ------------------------------------------------------------------------


async def test_healthz_answers_without_a_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_database_and_redis_answer(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_readyz_is_503_naming_redis_when_redis_is_away(no_redis_app: FastAPI) -> None:
    async with client_for(no_redis_app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503
    assert "redis" in problem["detail"].lower()
    assert "database" not in problem["detail"].lower()
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["redis"] != "ok"


async def test_healthz_stays_200_when_redis_is_away(no_redis_app: FastAPI) -> None:
    async with client_for(no_redis_app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200


# --- metrics -----------------------------------------------------------------------


async def accepted_purchases(client: httpx.AsyncClient) -> float:
    response = await client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "storehooks_events_accepted_total" and sample.labels == {
                "type": "purchase"
            }:
                return sample.value
    return 0.0


async def test_metrics_is_prometheus_text(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {
        family.name: family.type for family in text_string_to_metric_families(response.text)
    }
    assert families["storehooks_events_accepted"] == "counter"
    assert families["storehooks_deliveries_created"] == "counter"


async def test_one_accepted_event_adds_exactly_one(
    tenant: Tenant, anonymous: httpx.AsyncClient
) -> None:
    before = await accepted_purchases(anonymous)
    await tenant.event()
    assert await accepted_purchases(anonymous) == before + 1


async def test_replays_and_refusals_are_not_counted(
    tenant: Tenant, anonymous: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "metrics-1"}
    first = await tenant.api.post(
        "/events", json={"type": "purchase", "app_id": "a"}, headers=headers
    )
    assert first.status_code == 202
    before = await accepted_purchases(anonymous)
    replay = await tenant.api.post(
        "/events", json={"type": "purchase", "app_id": "a"}, headers=headers
    )
    assert replay.status_code == 202
    refused = await tenant.api.post("/events", json={"type": "purchase"})
    assert refused.status_code == 422
    assert await accepted_purchases(anonymous) == before


# --- documentation -----------------------------------------------------------------


async def test_openapi_lists_every_route_of_the_contract(anonymous: httpx.AsyncClient) -> None:
    spec = await openapi(anonymous)
    documented = {
        (method, normalize(path))
        for path, operations in spec["paths"].items()
        for method in operations
    }
    assert sorted(CONTRACT_ROUTES - documented) == []


async def test_openapi_declares_problem_responses_on_one_webhook(
    anonymous: httpx.AsyncClient,
) -> None:
    operations = (await openapi(anonymous))["paths"]["/webhooks/{webhook_id}"]
    declared = {
        (method, status)
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if "application/problem+json" in response.get("content", {})
    }
    expected = {
        (method, status)
        for method in ("get", "patch", "delete")
        for status in ("401", "403", "404")
    }
    assert expected | {("patch", "422")} <= declared


async def test_openapi_problem_responses_carry_the_problem_schema(
    anonymous: httpx.AsyncClient,
) -> None:
    spec = await openapi(anonymous)
    assert set(spec["components"]["schemas"]["Problem"]["properties"]) >= {
        "type",
        "title",
        "status",
        "detail",
        "errors",
    }
    schemaless = [
        (method, path, status)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if "application/problem+json" in response.get("content", {})
        and response["content"]["application/problem+json"].get("schema") != PROBLEM_SCHEMA
    ]
    assert schemaless == []


async def test_openapi_declares_no_error_in_fastapis_default_shape(
    anonymous: httpx.AsyncClient,
) -> None:
    spec = await openapi(anonymous)
    default_shaped = [
        (method, path, status)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
        and "application/problem+json" not in response.get("content", {})
    ]
    assert default_shaped == []


async def test_docs_answer(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # Swagger UI is started by a served script (no inline script under the CSP).
    assert '<script src="/docs/static/swagger-init.js">' in response.text
    start = await anonymous.get("/docs/static/swagger-init.js")
    assert 'url: "/openapi.json"' in start.text
