"""POST /events and the event reads (docs/api.md#events)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app import resources
from app.core.db import session_scope
from app.core.models import Delivery, Event
from app.core.settings import Settings
from app.json_body import JsonRoute
from app.main import create_app
from tests.conftest import Tenant
from tests.support.problems import assert_problem, error_locs
from tests.support.routes import api_routes

EVENT = {"type": "purchase", "app_id": "app_42"}


async def event_ids(tenant: Tenant, **params: str) -> list[str]:
    response = await tenant.api.get("/events", params=params)
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["data"]]


async def delivery_count(tenant: Tenant) -> int:
    response = await tenant.api.get("/deliveries")
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


# --- accepting and reading -------------------------------------------------------


async def test_post_answers_202_with_id_and_delivery_count(tenant: Tenant) -> None:
    await tenant.subscribed_webhook()
    response = await tenant.api.post("/events", json={**EVENT, "sku_id": "gems_100"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "deliveries"}
    assert isinstance(body["id"], str)
    assert body["id"]
    assert body["deliveries"] == 1


async def test_an_event_matching_nothing_has_no_deliveries(tenant: Tenant) -> None:
    response = await tenant.api.post("/events", json=EVENT)
    assert response.status_code == 202
    assert response.json()["deliveries"] == 0


async def test_get_returns_the_event_as_sent(tenant: Tenant) -> None:
    data = {
        "order": {"id": "o-1", "lines": [{"sku": "gems_100", "quantity": 2}, {"sku": "x"}]},
        "amount": "4.99",
        "price": 4.99,
        "count": 3,
        "large": 9007199254740993,
        "negative": -17,
        "customer": "Zoë Ñúñez — 東京 🎮",
        "gift": False,
        "note": None,
    }
    accepted = await tenant.event(
        sku_id="gems_100", occurred_at="2026-11-28T12:00:00+02:00", data=data, ordering_key="cus_7"
    )
    response = await tenant.api.get(f"/events/{accepted['id']}")
    assert response.status_code == 200
    event = response.json()
    created_at = datetime.fromisoformat(event.pop("created_at"))
    assert event == {
        "id": accepted["id"],
        "type": "purchase",
        "app_id": "app_42",
        "sku_id": "gems_100",
        "occurred_at": "2026-11-28T10:00:00Z",
        "ordering_key": "cus_7",
        "data": data,
    }
    assert created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)


async def test_an_app_purchase_has_a_null_sku_and_empty_data(tenant: Tenant) -> None:
    accepted = await tenant.event(type="subscription_cancelled", app_id="app_7")
    event = (await tenant.api.get(f"/events/{accepted['id']}")).json()
    assert event["type"] == "subscription_cancelled"
    assert event["app_id"] == "app_7"
    assert event["sku_id"] is None
    assert event["data"] == {}


async def test_occurred_at_defaults_to_the_time_of_receipt(tenant: Tenant) -> None:
    before = datetime.now(UTC)
    accepted = await tenant.event()
    after = datetime.now(UTC)
    event = (await tenant.api.get(f"/events/{accepted['id']}")).json()
    occurred_at = datetime.fromisoformat(event["occurred_at"])
    assert occurred_at.utcoffset() == timedelta(0)
    assert before <= occurred_at <= after


async def test_an_unknown_event_is_404(tenant: Tenant) -> None:
    assert_problem(await tenant.api.get("/events/evt_nope"), 404)


async def test_another_accounts_event_is_404(tenant: Tenant, other: Tenant) -> None:
    accepted = await other.event()
    response = await tenant.api.get(f"/events/{accepted['id']}")
    assert response.status_code == 404
    assert await event_ids(tenant) == []


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"app_id": "app_42"}, ["body", "type"]),
        ({"type": "refund", "app_id": "app_42"}, ["body", "type"]),
        ({"type": "purchase"}, ["body", "app_id"]),
        ({"type": "purchase", "app_id": ""}, ["body", "app_id"]),
        ({**EVENT, "data": [{"order_id": "o-1"}]}, ["body", "data"]),
        ({**EVENT, "occurred_at": "2026-11-28T10:00:00"}, ["body", "occurred_at"]),
        ({**EVENT, "occurred_at": "yesterday at noon"}, ["body", "occurred_at"]),
        ({**EVENT, "occurred_at": "0001-01-01T00:00:00+01:00"}, ["body", "occurred_at"]),
        ({**EVENT, "customer": "c-1"}, ["body", "customer"]),
        ({**EVENT, "data": {"note": "\ud800"}}, ["body", "data"]),
        ({**EVENT, "data": {"nested": [{"\udfff": 1}]}}, ["body", "data"]),
        ({**EVENT, "data": {"items": {"a][b": 1}}}, ["body", "data"]),
    ],
    ids=[
        "missing-type",
        "unknown-type",
        "missing-app_id",
        "empty-app_id",
        "data-a-list",
        "occurred_at-without-offset",
        "occurred_at-garbage",
        "occurred_at-before-year-1-in-utc",
        "unknown-field",
        "lone-surrogate-in-data",
        "lone-surrogate-in-a-key",
        "closing-bracket-in-a-key",
    ],
)
async def test_invalid_events_are_422_naming_the_field(
    tenant: Tenant, body: dict[str, Any], loc: list[str]
) -> None:
    await tenant.subscribed_webhook()
    # json.dumps escapes what UTF-8 cannot carry ("\\ud800"), as a JSON client may.
    encoded = json.dumps(body)
    response = await tenant.api.post(
        "/events", content=encoded, headers={"Content-Type": "application/json"}
    )
    locs = error_locs(response)
    assert loc in locs, locs
    assert await event_ids(tenant) == []
    assert await delivery_count(tenant) == 0


# --- numbers that could not be kept as sent ---------------------------------------

HEAD = b'{"type": "purchase", "app_id": "app_42", "data": '
HUGE_INTEGER = b"1" * 4301


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        pytest.param(b'{"amount": NaN}', ["body", "data", "amount"], id="nan"),
        pytest.param(b'{"amount": Infinity}', ["body", "data", "amount"], id="infinity"),
        pytest.param(b'{"amount": -Infinity}', ["body", "data", "amount"], id="minus-infinity"),
        pytest.param(b'{"amount": 1e309}', ["body", "data", "amount"], id="1e309"),
        pytest.param(b'{"amount": -1e309}', ["body", "data", "amount"], id="minus-1e309"),
        pytest.param(b'{"a": {"b": [1, 2.5, NaN]}}', ["body", "data", "a", "b", 2], id="nested"),
        pytest.param(
            b'{"\\ud800": NaN}', ["body", "data", "\\ud800"], id="under-a-lone-surrogate-key"
        ),
        pytest.param(
            b'{"amount": ' + HUGE_INTEGER + b"}", ["body", "data", "amount"], id="4301-digits"
        ),
        pytest.param(
            b'{"amount": -' + HUGE_INTEGER + b"}",
            ["body", "data", "amount"],
            id="minus-4301-digits",
        ),
        pytest.param(b'{"amount": 1e-400}', ["body", "data", "amount"], id="underflow-to-zero"),
        pytest.param(
            b'{"amount": 0.12345678901234567890123}',
            ["body", "data", "amount"],
            id="beyond-a-double",
        ),
    ],
)
async def test_numbers_that_cannot_be_kept_are_422_naming_the_field(
    tenant: Tenant, data: bytes, loc: list[str | int]
) -> None:
    """Raw bytes: a client's JSON encoder may refuse to write NaN, a server must still
    answer it. Nothing is stored, where before NaN and 1e309 became null (202) and 4,301
    digits were a bare 400. A key that UTF-8 cannot carry is named by its escape (the
    answer could not be encoded: a 500)."""
    await tenant.subscribed_webhook()
    response = await tenant.api.post(
        "/events", content=HEAD + data + b"}", headers={"Content-Type": "application/json"}
    )
    assert error_locs(response) == [loc]
    assert await event_ids(tenant) == []
    assert await delivery_count(tenant) == 0


async def test_every_such_number_is_named_at_once(tenant: Tenant) -> None:
    body = HEAD + b'{"x": NaN, "y": [Infinity, 1], "z": ' + HUGE_INTEGER + b"}}"
    response = await tenant.api.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_locs(response) == [
        ["body", "data", "x"],
        ["body", "data", "y", 0],
        ["body", "data", "z"],
    ]


@pytest.mark.parametrize(
    "number",
    [
        b"0.1",
        b"-0.0",
        b"1e2",
        b"5e-324",
        b"0.30000000000000004",
        b"9" * 4300,
        b"-" + b"9" * 4300,
        b"123456789012345678901234567890",
    ],
)
async def test_numbers_that_can_be_kept_are_stored_as_sent(tenant: Tenant, number: bytes) -> None:
    body = HEAD + b'{"n": ' + number + b"}}"
    response = await tenant.api.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    stored = await tenant.fetch(f"/events/{response.json()['id']}")
    assert stored["data"]["n"] == json.loads(number)


async def test_a_number_that_cannot_be_kept_in_a_webhook_is_422_too(tenant: Tenant) -> None:
    """Every route that takes a JSON body decodes it alike (not a bare 400)."""
    body = b'{"name": "n", "url": "https://x.example.com/", "http_method": "POST", '
    body += b'"payload_type": "json", "max_in_flight": ' + HUGE_INTEGER + b"}"
    response = await tenant.api.post(
        "/webhooks", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_locs(response) == [["body", "max_in_flight"]]


async def test_without_a_key_such_a_body_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post(
        "/events", content=HEAD + b'{"n": NaN}}', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 401)


# --- keys named twice --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(
            b'{"type": "purchase", "type": "subscription_cancelled", "app_id": "app_42"}',
            ["body", "type"],
            id="top-level",
        ),
        pytest.param(HEAD + b'{"a": {"x": 1, "x": 2}}}', ["body", "data", "a", "x"], id="nested"),
        pytest.param(
            HEAD + b'{"items": [{"q": 1}, {"q": 1, "q": 2}]}}',
            ["body", "data", "items", 1, "q"],
            id="in-a-list",
        ),
        pytest.param(HEAD + b'{"x": 1, "x": 1}}', ["body", "data", "x"], id="same-value"),
        pytest.param(HEAD + b'{"a": 1, "\\u0061": 2}}', ["body", "data", "a"], id="escaped"),
        pytest.param(HEAD + b'{"x": 1, "x": 2, "x": 3}}', ["body", "data", "x"], id="thrice"),
        pytest.param(
            HEAD + b'{"\\ud800": 1, "\\ud800": 2}}',
            ["body", "data", "\\ud800"],
            id="lone-surrogate",
        ),
    ],
)
async def test_a_key_named_twice_in_one_object_is_422_naming_it(
    tenant: Tenant, body: bytes, loc: list[str | int]
) -> None:
    """Python's decoder keeps the last value and drops the first without a word (where
    the client, or a proxy's decoder, may read the first): nothing is stored now."""
    await tenant.subscribed_webhook()
    response = await tenant.api.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_locs(response) == [loc]
    assert response.json()["errors"][0]["msg"].startswith("Duplicate key ")
    assert await event_ids(tenant) == []
    assert await delivery_count(tenant) == 0


async def test_the_same_key_in_different_objects_is_kept(tenant: Tenant) -> None:
    body = HEAD + b'{"x": 1, "a": {"x": 2}, "l": [{"x": 3}, {"x": 4}]}}'
    response = await tenant.api.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    stored = await tenant.fetch(f"/events/{response.json()['id']}")
    assert stored["data"] == {"x": 1, "a": {"x": 2}, "l": [{"x": 3}, {"x": 4}]}


async def test_keys_named_twice_and_numbers_refused_are_named_at_once(tenant: Tenant) -> None:
    body = HEAD + b'{"x": 1, "x": 2, "y": NaN, "z": [{"k": 1, "k": 2}]}}'
    response = await tenant.api.post(
        "/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_locs(response) == [
        ["body", "data", "x"],
        ["body", "data", "y"],
        ["body", "data", "z", 0, "k"],
    ]


async def test_without_a_key_a_body_naming_a_key_twice_is_401(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post(
        "/events", content=HEAD + b'{"x": 1, "x": 2}}', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 401)


# --- idempotency ------------------------------------------------------------------


async def post_with_key(tenant: Tenant, key: str) -> dict[str, Any]:
    response = await tenant.api.post("/events", json=EVENT, headers={"Idempotency-Key": key})
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def test_a_repeated_key_answers_the_first_response_and_creates_nothing(
    tenant: Tenant,
) -> None:
    await tenant.subscribed_webhook()
    first = await post_with_key(tenant, "order-o-1")
    second = await post_with_key(tenant, "order-o-1")
    assert first["deliveries"] == 1
    assert second == first
    assert await event_ids(tenant) == [first["id"]]
    assert await delivery_count(tenant) == 1


async def test_the_same_key_on_another_account_is_a_new_event(
    tenant: Tenant, other: Tenant
) -> None:
    mine = await post_with_key(tenant, "order-o-1")
    theirs = await post_with_key(other, "order-o-1")
    assert theirs["id"] != mine["id"]
    assert await event_ids(tenant) == [mine["id"]]
    assert await event_ids(other) == [theirs["id"]]


async def test_a_different_key_is_a_new_event(tenant: Tenant) -> None:
    first = await post_with_key(tenant, "order-o-1")
    second = await post_with_key(tenant, "order-o-2")
    assert second["id"] != first["id"]
    assert await event_ids(tenant) == [second["id"], first["id"]]


async def test_a_key_older_than_24_hours_is_a_new_event(tenant: Tenant, app: FastAPI) -> None:
    await tenant.subscribed_webhook()
    first = await post_with_key(tenant, "order-o-1")
    async with session_scope(resources.of(app).sessionmaker) as session:
        await session.execute(
            update(Event)
            .where(Event.id == first["id"])
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    second = await post_with_key(tenant, "order-o-1")
    assert second["id"] != first["id"]
    assert second["deliveries"] == 1
    assert await event_ids(tenant) == [second["id"], first["id"]]
    assert await delivery_count(tenant) == 2
    # The new event now owns the key: a repeat answers it, not the aged one.
    assert await post_with_key(tenant, "order-o-1") == second


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(["order-o-1", "order-o-2"], id="two-values"),
        pytest.param(["order-o-1", "order-o-1"], id="one-value-twice"),
        pytest.param(["order-o-2", "order-o-1"], id="the-used-key-second"),
    ],
)
async def test_two_idempotency_key_headers_are_422_naming_the_header(
    tenant: Tenant, keys: list[str]
) -> None:
    """The first header alone was read: a request also naming a used key second (or
    first) was a new event, or a replay hiding one. Now neither: nothing is created."""
    await tenant.subscribed_webhook()
    used = await post_with_key(tenant, "order-o-1")
    headers = [("Idempotency-Key", key) for key in keys]
    response = await tenant.api.post("/events", json=EVENT, headers=headers)
    assert error_locs(response) == [["header", "idempotency-key"]]
    assert "Idempotent-Replayed" not in response.headers
    assert await event_ids(tenant) == [used["id"]]
    assert await delivery_count(tenant) == 1
    # Neither key was taken by the refused request: order-o-2 is still free.
    assert (await post_with_key(tenant, "order-o-2"))["id"] != used["id"]
    assert len(await event_ids(tenant)) == 2


# --- filters -----------------------------------------------------------------------


async def test_list_filters_by_type_and_app_id_exactly(tenant: Tenant) -> None:
    purchase = (await tenant.event(app_id="app_42"))["id"]
    cancelled = (await tenant.event(type="subscription_cancelled", app_id="app_42"))["id"]
    other_app = (await tenant.event(app_id="app_420"))["id"]

    assert await event_ids(tenant) == [other_app, cancelled, purchase]
    assert await event_ids(tenant, type="purchase") == [other_app, purchase]
    assert await event_ids(tenant, type="subscription_cancelled") == [cancelled]
    assert await event_ids(tenant, app_id="app_42") == [cancelled, purchase]
    assert await event_ids(tenant, app_id="app_4") == []
    assert await event_ids(tenant, type="purchase", app_id="app_42") == [purchase]


async def test_list_refuses_an_unknown_type_filter(tenant: Tenant) -> None:
    locs = error_locs(await tenant.api.get("/events", params={"type": "refund"}))
    assert ["query", "type"] in locs, locs


# --- one transaction ---------------------------------------------------------------


async def test_the_event_and_its_deliveries_are_committed_before_the_202(
    tenant: Tenant, app: FastAPI
) -> None:
    first = await tenant.subscribed_webhook()
    second = await tenant.subscribed_webhook(action={"app_id": None, "sku_id": "gems_100"})
    await tenant.webhook()  # no actions: not a match

    accepted = await tenant.event(sku_id="gems_100", data={"order_id": "o-1"})
    assert accepted["deliveries"] == 2

    async with resources.of(app).sessionmaker() as session:
        event = await session.get(Event, accepted["id"])
        deliveries = (
            await session.scalars(select(Delivery).where(Delivery.event_id == accepted["id"]))
        ).all()
    assert event is not None
    assert event.account_id == tenant.account_id
    assert event.data == {"order_id": "o-1"}
    assert sorted(d.webhook_id for d in deliveries) == sorted([first["id"], second["id"]])
    assert {d.status.value for d in deliveries} == {"pending"}


async def test_an_idempotency_key_holding_a_nul_is_422_naming_the_header(tenant: Tenant) -> None:
    # Only an in-process client can send one (HTTP servers refuse it); PostgreSQL cannot
    # store it, so it is refused before anything is looked up.
    await tenant.subscribed_webhook()
    response = await tenant.api.post("/events", json=EVENT, headers={"Idempotency-Key": "a\x00b"})
    assert ["header", "idempotency-key"] in error_locs(response)
    assert await event_ids(tenant) == []


def test_every_route_taking_a_json_body_decodes_it_with_json_body() -> None:
    """A router added without `route_class=JsonRoute` would let NaN through as null."""
    app = create_app(Settings())
    with_body = [route for route in api_routes(app) if route.body_field is not None]
    assert {(route.path, isinstance(route, JsonRoute)) for route in with_body} >= {
        ("/events", True),
        ("/webhooks", True),
    }
    assert [route.path for route in with_body if not isinstance(route, JsonRoute)] == []
