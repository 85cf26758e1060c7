"""Reading deliveries and their attempts (docs/api.md#deliveries)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from app import resources
from app.core.db import session_scope
from app.core.enums import ErrorClass
from app.core.ids import new_id
from app.core.models import DeliveryAttempt
from tests.conftest import Tenant
from tests.support.problems import assert_problem, error_locs

DELIVERY_FIELDS = {
    "id",
    "webhook_id",
    "event_id",
    "notice_id",
    "kind",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "last_error_class",
    "created_at",
    "completed_at",
}


async def deliveries(tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = await tenant.api.get("/deliveries", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def one_delivery(tenant: Tenant) -> dict[str, Any]:
    webhook = await tenant.subscribed_webhook()
    accepted = await tenant.event()
    [delivery] = await deliveries(tenant, event_id=accepted["id"])
    assert delivery["webhook_id"] == webhook["id"]
    return delivery


async def test_a_new_event_delivery_has_exactly_the_contract_fields(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    before = datetime.now(UTC)
    accepted = await tenant.event()
    after = datetime.now(UTC)

    [delivery] = await deliveries(tenant)
    assert set(delivery) == DELIVERY_FIELDS
    assert isinstance(delivery["id"], str)
    assert delivery["id"]
    assert delivery["webhook_id"] == webhook["id"]
    assert delivery["event_id"] == accepted["id"]
    assert delivery["kind"] == "event"
    assert delivery["status"] == "pending"
    assert delivery["attempt_count"] == 0
    assert delivery["last_status_code"] is None
    assert delivery["last_error"] is None
    assert delivery["completed_at"] is None
    created_at = datetime.fromisoformat(delivery["created_at"])
    next_attempt_at = datetime.fromisoformat(delivery["next_attempt_at"])
    assert before <= created_at <= after
    assert created_at.utcoffset() == timedelta(0)
    # Due at once: the first attempt is not delayed.
    assert next_attempt_at <= after


async def test_get_adds_an_empty_attempt_list(tenant: Tenant) -> None:
    delivery = await one_delivery(tenant)
    response = await tenant.api.get(f"/deliveries/{delivery['id']}")
    assert response.status_code == 200
    assert response.json() == {**delivery, "attempts": [], "waiting_for": None}


async def test_get_lists_the_attempts_in_order_with_all_their_fields(
    tenant: Tenant, app: FastAPI
) -> None:
    delivery = await one_delivery(tenant)
    # The second attempt is inserted first, so its row id sorts before the first one's.
    async with session_scope(resources.of(app).sessionmaker) as session:
        session.add(
            DeliveryAttempt(
                id=new_id("att"),
                delivery_id=delivery["id"],
                number=2,
                started_at=datetime(2026, 11, 28, 10, 0, 30, tzinfo=UTC),
                duration_ms=None,
                status_code=None,
                error="connection refused",
                error_class=ErrorClass.CONNECT,
                response_body=None,
            )
        )
        await session.flush()
        session.add(
            DeliveryAttempt(
                id=new_id("att"),
                delivery_id=delivery["id"],
                number=1,
                started_at=datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC),
                duration_ms=125,
                status_code=503,
                error=None,
                response_body="upstream busy",
            )
        )

    response = await tenant.api.get(f"/deliveries/{delivery['id']}")
    assert response.status_code == 200
    assert response.json()["attempts"] == [
        {
            "number": 1,
            "started_at": "2026-11-28T10:00:00Z",
            "duration_ms": 125,
            "status_code": 503,
            "error": None,
            "error_class": None,
            "response_body": "upstream busy",
        },
        {
            "number": 2,
            "started_at": "2026-11-28T10:00:30Z",
            "duration_ms": None,
            "status_code": None,
            "error": "connection refused",
            "error_class": "connect",
            "response_body": None,
        },
    ]


async def test_an_unknown_delivery_is_404(tenant: Tenant) -> None:
    assert_problem(await tenant.api.get("/deliveries/dlv_nope"), 404)


async def test_another_accounts_delivery_is_404(tenant: Tenant, other: Tenant) -> None:
    theirs = await one_delivery(other)
    response = await tenant.api.get(f"/deliveries/{theirs['id']}")
    assert response.status_code == 404
    assert await deliveries(tenant) == []


async def test_list_filters_by_webhook_event_and_status_exactly(tenant: Tenant) -> None:
    kept = await tenant.subscribed_webhook()
    deleted = await tenant.subscribed_webhook()
    first = (await tenant.event())["id"]
    second = (await tenant.event())["id"]

    def pairs(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(d["webhook_id"], d["event_id"]) for d in items}

    assert len(await deliveries(tenant)) == 4
    assert pairs(await deliveries(tenant, webhook_id=kept["id"])) == {
        (kept["id"], first),
        (kept["id"], second),
    }
    assert pairs(await deliveries(tenant, event_id=first)) == {
        (kept["id"], first),
        (deleted["id"], first),
    }
    assert pairs(await deliveries(tenant, webhook_id=deleted["id"], event_id=second)) == {
        (deleted["id"], second)
    }
    assert await deliveries(tenant, webhook_id=kept["id"][:-1]) == []
    assert await deliveries(tenant, status="cancelled") == []

    assert (await tenant.api.delete(f"/webhooks/{deleted['id']}")).status_code == 204

    pending = await deliveries(tenant, status="pending")
    cancelled = await deliveries(tenant, status="cancelled")
    assert pairs(pending) == {(kept["id"], first), (kept["id"], second)}
    assert pairs(cancelled) == {(deleted["id"], first), (deleted["id"], second)}
    assert {d["status"] for d in pending} == {"pending"}
    assert {d["status"] for d in cancelled} == {"cancelled"}
    assert await deliveries(tenant, status="succeeded") == []
    # The deleted webhook's history stays readable.
    assert len(await deliveries(tenant, webhook_id=deleted["id"])) == 2


async def test_an_unknown_status_filter_is_422(tenant: Tenant) -> None:
    response = await tenant.api.get("/deliveries", params={"status": "bogus"})
    assert error_locs(response) == [["query", "status"]]
