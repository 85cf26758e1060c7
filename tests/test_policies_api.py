"""Delivery policies, the API side (docs/api.md#delivery-policies): the webhook fields
success_statuses, ordered and max_in_flight; the event's ordering_key; notices of webhooks
the service turned off; recovery of a window of failed deliveries; `waiting_for` on a
delivery."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app import resources
from app.core.announcements import Announcer
from app.core.db import utcnow
from app.core.enums import DisabledReason, Scope
from app.core.lifecycle import switch_off
from app.core.models import Delivery
from app.deliveries import service as deliveries_service
from tests.conftest import WEBHOOK_BODY, Tenant
from tests.support.problems import assert_invalid, assert_problem, error_locs

DEFAULT_POLICIES = {"success_statuses": "200", "ordered": False, "max_in_flight": 10}
NOTICE_FIELDS = {
    "id",
    "webhook_id",
    "kind",
    "type",
    "reason",
    "percent",
    "delivery_id",
    "error_class",
    "created_at",
}
NOW = datetime.now(UTC).replace(microsecond=0)


# --- helpers -------------------------------------------------------------------------


def policies(webhook: dict[str, Any]) -> dict[str, Any]:
    return {key: webhook[key] for key in DEFAULT_POLICIES}


def rfc3339(moment: datetime) -> str:
    return moment.isoformat()


async def listed_webhook(tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    response = await tenant.api.get("/webhooks")
    assert response.status_code == 200, response.text
    [found] = [webhook for webhook in response.json()["data"] if webhook["id"] == webhook_id]
    listed: dict[str, Any] = found
    return listed


async def notices(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/notices", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"data", "next_cursor"}
    return body


async def turn_off(tenant: Tenant, webhook_id: str, reason: DisabledReason) -> bool:
    """The workers' own way to turn a webhook off (a 410, or failing for too long)."""
    async with resources.of(tenant.app).engine.begin() as conn:
        announcer = Announcer(conn, utcnow(), attempt_limit=5)
        turned_off: bool = await switch_off(conn, webhook_id, reason, utcnow(), announcer)
    return turned_off


async def deliveries_of(tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = await tenant.api.get("/deliveries", params={"webhook_id": webhook_id})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def delivery_for_event(tenant: Tenant, webhook_id: str) -> str:
    """A new event whose one delivery goes to `webhook_id`; the delivery's id."""
    accepted = await tenant.event()
    response = await tenant.api.get(
        "/deliveries", params={"webhook_id": webhook_id, "event_id": accepted["id"]}
    )
    assert response.status_code == 200, response.text
    [delivery] = response.json()["data"]
    delivery_id: str = delivery["id"]
    return delivery_id


async def set_delivery(tenant: Tenant, delivery_id: str, **values: Any) -> None:
    async with resources.of(tenant.app).engine.begin() as conn:
        result = await conn.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(**values)
        )
        assert result.rowcount == 1


async def failed_delivery(
    tenant: Tenant, webhook_id: str, created_at: datetime, attempt_count: int = 3
) -> str:
    """An event delivery of `webhook_id` that failed after `attempt_count` attempts."""
    delivery_id = await delivery_for_event(tenant, webhook_id)
    await set_delivery(
        tenant,
        delivery_id,
        status="failed",
        attempt_count=attempt_count,
        attempt_limit=attempt_count,
        next_attempt_at=None,
        last_status_code=503,
        last_error="HTTP 503",
        created_at=created_at,
        completed_at=created_at + timedelta(minutes=5),
    )
    return delivery_id


async def row(tenant: Tenant, delivery_id: str) -> Any:
    async with resources.of(tenant.app).engine.connect() as conn:
        return (await conn.execute(select(Delivery).where(Delivery.id == delivery_id))).one()


async def recover(
    client: httpx.AsyncClient, webhook_id: str, since: datetime, until: datetime | None = None
) -> httpx.Response:
    body = {"since": rfc3339(since), "until": None if until is None else rfc3339(until)}
    return await client.post(f"/webhooks/{webhook_id}/recover", json=body)


async def recovered(
    tenant: Tenant, webhook_id: str, since: datetime, until: datetime | None = None
) -> int:
    response = await recover(tenant.api, webhook_id, since, until)
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"deliveries"}
    count: int = body["deliveries"]
    return count


# --- webhook policy fields -------------------------------------------------------------


async def test_a_new_webhook_has_the_default_policies(tenant: Tenant) -> None:
    created = await tenant.webhook()
    assert policies(created) == DEFAULT_POLICIES
    assert policies(await tenant.fetch(f"/webhooks/{created['id']}")) == DEFAULT_POLICIES
    assert policies(await listed_webhook(tenant, created["id"])) == DEFAULT_POLICIES


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"success_statuses": "2xx"}, id="2xx"),
        pytest.param({"success_statuses": "200"}, id="200"),
        pytest.param({"ordered": True}, id="ordered"),
        pytest.param({"max_in_flight": 1}, id="max-in-flight-1"),
        pytest.param({"max_in_flight": 100}, id="max-in-flight-100"),
        pytest.param(
            {"success_statuses": "2xx", "ordered": True, "max_in_flight": 3}, id="all-three"
        ),
    ],
)
async def test_create_stores_the_given_policies(tenant: Tenant, fields: dict[str, Any]) -> None:
    expected = {**DEFAULT_POLICIES, **fields}
    created = await tenant.webhook(**fields)
    assert policies(created) == expected
    assert policies(await tenant.fetch(f"/webhooks/{created['id']}")) == expected
    assert policies(await listed_webhook(tenant, created["id"])) == expected


INVALID_POLICIES = [
    pytest.param("success_statuses", "201", id="statuses-201"),
    pytest.param("success_statuses", "3xx", id="statuses-3xx"),
    pytest.param("success_statuses", "2XX", id="statuses-upper-case"),
    pytest.param("success_statuses", "", id="statuses-empty"),
    pytest.param("success_statuses", 200, id="statuses-number"),
    pytest.param("success_statuses", ["200"], id="statuses-list"),
    pytest.param("ordered", "sometimes", id="ordered-word"),
    pytest.param("ordered", 2, id="ordered-number"),
    pytest.param("ordered", {}, id="ordered-object"),
    pytest.param("max_in_flight", 0, id="in-flight-0"),
    pytest.param("max_in_flight", 101, id="in-flight-101"),
    pytest.param("max_in_flight", -1, id="in-flight-negative"),
    pytest.param("max_in_flight", 1.5, id="in-flight-fraction"),
    pytest.param("max_in_flight", "ten", id="in-flight-word"),
]


@pytest.mark.parametrize(("field", "value"), INVALID_POLICIES)
async def test_create_refuses_an_invalid_policy(tenant: Tenant, field: str, value: Any) -> None:
    response = await tenant.api.post("/webhooks", json={**WEBHOOK_BODY, field: value})
    assert_invalid(response, field)
    listed = await tenant.api.get("/webhooks")
    assert listed.json()["data"] == []


@pytest.mark.parametrize("field", list(DEFAULT_POLICIES))
async def test_create_refuses_a_null_policy(tenant: Tenant, field: str) -> None:
    response = await tenant.api.post("/webhooks", json={**WEBHOOK_BODY, field: None})
    assert_invalid(response, field)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"success_statuses": "2xx"}, id="2xx"),
        pytest.param({"ordered": True}, id="ordered"),
        pytest.param({"max_in_flight": 1}, id="max-in-flight-1"),
        pytest.param({"max_in_flight": 100}, id="max-in-flight-100"),
    ],
)
async def test_patch_changes_one_policy_and_keeps_the_rest(
    tenant: Tenant, change: dict[str, Any]
) -> None:
    created = await tenant.webhook()
    response = await tenant.api.patch(f"/webhooks/{created['id']}", json=change)
    assert response.status_code == 200, response.text
    expected = {**DEFAULT_POLICIES, **change}
    assert policies(response.json()) == expected
    fetched = await tenant.fetch(f"/webhooks/{created['id']}")
    assert policies(fetched) == expected
    assert {key: fetched[key] for key in WEBHOOK_BODY} == WEBHOOK_BODY
    assert fetched["active"] is True


async def test_patch_can_set_the_policies_back(tenant: Tenant) -> None:
    created = await tenant.webhook(success_statuses="2xx", ordered=True, max_in_flight=1)
    response = await tenant.api.patch(f"/webhooks/{created['id']}", json=DEFAULT_POLICIES)
    assert response.status_code == 200, response.text
    assert policies(await tenant.fetch(f"/webhooks/{created['id']}")) == DEFAULT_POLICIES


async def test_patch_without_policies_keeps_them(tenant: Tenant) -> None:
    created = await tenant.webhook(success_statuses="2xx", ordered=True, max_in_flight=7)
    response = await tenant.api.patch(f"/webhooks/{created['id']}", json={"name": "renamed"})
    assert response.status_code == 200, response.text
    assert policies(response.json()) == policies(created)


@pytest.mark.parametrize(("field", "value"), INVALID_POLICIES)
async def test_patch_refuses_an_invalid_policy(tenant: Tenant, field: str, value: Any) -> None:
    created = await tenant.webhook(success_statuses="2xx", ordered=True, max_in_flight=5)
    response = await tenant.api.patch(f"/webhooks/{created['id']}", json={field: value})
    assert_invalid(response, field)
    assert policies(await tenant.fetch(f"/webhooks/{created['id']}")) == policies(created)


@pytest.mark.parametrize("field", list(DEFAULT_POLICIES))
async def test_patch_refuses_a_null_policy(tenant: Tenant, field: str) -> None:
    created = await tenant.webhook(success_statuses="2xx", ordered=True, max_in_flight=5)
    response = await tenant.api.patch(f"/webhooks/{created['id']}", json={field: None})
    assert_invalid(response, field)
    assert policies(await tenant.fetch(f"/webhooks/{created['id']}")) == policies(created)


# --- the event's ordering_key ----------------------------------------------------------


async def test_ordering_key_defaults_to_null(tenant: Tenant) -> None:
    accepted = await tenant.event()
    assert (await tenant.fetch(f"/events/{accepted['id']}"))["ordering_key"] is None


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("cus_7", id="short"),
        pytest.param("k", id="1-char"),
        pytest.param("k" * 200, id="200-chars"),
        pytest.param(None, id="explicit-null"),
    ],
)
async def test_ordering_key_is_stored_as_given(tenant: Tenant, key: str | None) -> None:
    accepted = await tenant.event(ordering_key=key)
    assert (await tenant.fetch(f"/events/{accepted['id']}"))["ordering_key"] == key


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 201, id="201-chars"),
        pytest.param("", id="empty"),
        pytest.param(7, id="number"),
        pytest.param(["cus_7"], id="list"),
    ],
)
async def test_an_invalid_ordering_key_is_refused(tenant: Tenant, key: Any) -> None:
    await tenant.subscribed_webhook()
    response = await tenant.api.post(
        "/events", json={"type": "purchase", "app_id": "app_42", "ordering_key": key}
    )
    assert_invalid(response, "ordering_key")
    listed = await tenant.api.get("/events")
    assert listed.json()["data"] == []
    assert (await tenant.api.get("/deliveries")).json()["data"] == []


# --- waiting_for -----------------------------------------------------------------------


async def test_a_plain_delivery_waits_for_nothing(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await delivery_for_event(tenant, webhook["id"])
    detail = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert "waiting_for" in detail
    assert detail["waiting_for"] is None


async def test_an_unordered_webhook_waits_for_nothing_even_with_a_shared_key(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook(ordered=False)
    await tenant.event(ordering_key="cus_7")
    second = await tenant.event(ordering_key="cus_7")
    [delivery] = [
        d for d in await deliveries_of(tenant, webhook["id"]) if d["event_id"] == second["id"]
    ]
    assert (await tenant.fetch(f"/deliveries/{delivery['id']}"))["waiting_for"] is None


async def test_waiting_for_names_the_earlier_pending_delivery_of_the_same_key(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook(ordered=True)
    first = await tenant.event(ordering_key="cus_7", occurred_at="2026-11-28T10:00:00Z")
    second = await tenant.event(ordering_key="cus_7", occurred_at="2026-11-28T10:00:01Z")
    by_event = {d["event_id"]: d["id"] for d in await deliveries_of(tenant, webhook["id"])}

    assert (await tenant.fetch(f"/deliveries/{by_event[first['id']]}"))["waiting_for"] is None
    detail = await tenant.fetch(f"/deliveries/{by_event[second['id']]}")
    assert detail["waiting_for"] == by_event[first["id"]]


# --- turning a webhook off, and its notice ---------------------------------------------


@pytest.mark.parametrize("reason", [DisabledReason.GONE, DisabledReason.FAILING])
async def test_disable_turns_the_webhook_off_and_records_a_notice(
    tenant: Tenant, reason: DisabledReason
) -> None:
    webhook = await tenant.subscribed_webhook()
    await tenant.event()
    await tenant.event()
    before = datetime.now(UTC)

    assert await turn_off(tenant, webhook["id"], reason) is True

    after = datetime.now(UTC)
    fetched = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert fetched["active"] is False
    assert fetched["disabled_reason"] == reason.value
    assert (await listed_webhook(tenant, webhook["id"]))["disabled_reason"] == reason.value
    statuses = [d["status"] for d in await deliveries_of(tenant, webhook["id"])]
    assert statuses == ["cancelled", "cancelled"]

    body = await notices(tenant.api)
    assert body["next_cursor"] is None
    [notice] = body["data"]
    assert set(notice) == NOTICE_FIELDS
    assert notice["webhook_id"] == webhook["id"]
    assert (notice["kind"], notice["type"]) == ("disabled", "webhook.disabled")
    assert notice["reason"] == reason.value
    assert (notice["percent"], notice["delivery_id"], notice["error_class"]) == (None, None, None)
    assert isinstance(notice["id"], str) and notice["id"]
    created_at = datetime.fromisoformat(notice["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert before <= created_at <= after


async def test_disable_leaves_finished_deliveries_and_other_webhooks_alone(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook()
    bystander = await tenant.subscribed_webhook()
    failed = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))

    assert await turn_off(tenant, webhook["id"], DisabledReason.GONE) is True

    assert (await row(tenant, failed)).status == "failed"
    assert {d["status"] for d in await deliveries_of(tenant, bystander["id"])} == {"pending"}
    assert (await tenant.fetch(f"/webhooks/{bystander['id']}"))["active"] is True


async def test_disabling_a_webhook_already_off_does_nothing(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    assert await turn_off(tenant, webhook["id"], DisabledReason.GONE) is True
    first = await notices(tenant.api)

    assert await turn_off(tenant, webhook["id"], DisabledReason.FAILING) is False

    assert await notices(tenant.api) == first
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["disabled_reason"] == "gone"


async def test_disabling_a_manually_disabled_webhook_records_no_notice(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook(active=False)
    assert await turn_off(tenant, webhook["id"], DisabledReason.GONE) is False
    assert (await notices(tenant.api))["data"] == []
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["disabled_reason"] == "manual"


async def test_reactivating_clears_the_reason_and_keeps_the_notice(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    assert await turn_off(tenant, webhook["id"], DisabledReason.FAILING) is True
    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": True})
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert response.json()["disabled_reason"] is None
    assert [n["webhook_id"] for n in (await notices(tenant.api))["data"]] == [webhook["id"]]
    # Active again, it can be turned off (and noticed) again.
    assert await turn_off(tenant, webhook["id"], DisabledReason.GONE) is True
    reasons = [n["reason"] for n in (await notices(tenant.api))["data"]]
    assert reasons == ["gone", "failing"]


async def test_switching_off_by_patch_ends_pending_deliveries_at_once_without_a_notice(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook()
    bystander = await tenant.subscribed_webhook()
    await tenant.event()
    await tenant.event()

    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})

    assert response.status_code == 200, response.text
    assert (response.json()["active"], response.json()["disabled_reason"]) == (False, "manual")
    ended = await deliveries_of(tenant, webhook["id"])
    assert [d["status"] for d in ended] == ["cancelled", "cancelled"]
    assert {d["last_error"] for d in ended} == {"Not sent: the webhook was turned off (manual)."}
    assert {d["status"] for d in await deliveries_of(tenant, bystander["id"])} == {"pending"}
    assert (await notices(tenant.api))["data"] == []


async def test_a_merchants_switch_records_manual_over_the_services_reason(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    assert await turn_off(tenant, webhook["id"], DisabledReason.TEST_FAILED) is True

    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})

    assert response.status_code == 200, response.text
    assert response.json()["disabled_reason"] == "manual"
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["disabled_reason"] == "manual"


async def test_switching_off_for_a_failed_test_ends_pending_deliveries_and_records_nothing(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook()
    await tenant.event()

    assert await turn_off(tenant, webhook["id"], DisabledReason.TEST_FAILED) is True

    fetched = await tenant.fetch(f"/webhooks/{webhook['id']}")
    assert (fetched["active"], fetched["disabled_reason"]) == (False, "test_failed")
    assert [d["status"] for d in await deliveries_of(tenant, webhook["id"])] == ["cancelled"]
    # The test_failed notice is the failed ping's, recorded by the worker with its delivery
    # (tests/workers/test_operations_webhooks.py); the switch itself records none.
    assert (await notices(tenant.api))["data"] == []


async def test_switching_on_clears_the_reason_and_keeps_ended_deliveries_ended(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook()
    await tenant.event()
    off = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})
    assert off.status_code == 200, off.text

    on = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": True})

    assert on.status_code == 200, on.text
    assert (on.json()["active"], on.json()["disabled_reason"]) == (True, None)
    assert [d["status"] for d in await deliveries_of(tenant, webhook["id"])] == ["cancelled"]


# --- GET /notices ----------------------------------------------------------------------


async def test_notices_start_empty(tenant: Tenant) -> None:
    assert await notices(tenant.api) == {"data": [], "next_cursor": None}


async def test_notices_are_listed_newest_first(tenant: Tenant) -> None:
    webhooks = [await tenant.webhook() for _ in range(3)]
    for webhook in webhooks:
        assert await turn_off(tenant, webhook["id"], DisabledReason.GONE)
    listed = (await notices(tenant.api))["data"]
    assert [n["webhook_id"] for n in listed] == [w["id"] for w in reversed(webhooks)]
    assert len({n["id"] for n in listed}) == 3


async def test_notices_page_with_limit_and_cursor(tenant: Tenant) -> None:
    webhooks = [await tenant.webhook() for _ in range(5)]
    for webhook in webhooks:
        assert await turn_off(tenant, webhook["id"], DisabledReason.FAILING)
    everything = (await notices(tenant.api))["data"]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await notices(tenant.api, **params)
        assert len(page["data"]) <= 2
        seen.extend(page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == everything
    assert [n["webhook_id"] for n in seen] == [w["id"] for w in reversed(webhooks)]


async def test_notices_filter_by_webhook(tenant: Tenant) -> None:
    first, second = await tenant.webhook(), await tenant.webhook()
    assert await turn_off(tenant, first["id"], DisabledReason.GONE)
    assert await turn_off(tenant, second["id"], DisabledReason.FAILING)

    only = (await notices(tenant.api, webhook_id=first["id"]))["data"]
    assert [(n["webhook_id"], n["reason"]) for n in only] == [(first["id"], "gone")]
    assert (await notices(tenant.api, webhook_id="whk_unknown"))["data"] == []


async def test_notices_of_another_account_are_never_shown(tenant: Tenant, other: Tenant) -> None:
    mine = await tenant.webhook()
    theirs = await other.webhook()
    assert await turn_off(tenant, mine["id"], DisabledReason.GONE)
    assert await turn_off(other, theirs["id"], DisabledReason.FAILING)

    assert [n["webhook_id"] for n in (await notices(tenant.api))["data"]] == [mine["id"]]
    assert [n["webhook_id"] for n in (await notices(other.api))["data"]] == [theirs["id"]]
    assert (await notices(tenant.api, webhook_id=theirs["id"]))["data"] == []


async def test_notices_need_webhooks_read(tenant: Tenant) -> None:
    async with await tenant.client(Scope.DELIVERIES_READ, Scope.WEBHOOKS_UPDATE) as client:
        assert_problem(await client.get("/notices"), 403)
    async with await tenant.client(Scope.WEBHOOKS_READ) as client:
        assert await notices(client) == {"data": [], "next_cursor": None}


async def test_notices_need_a_key(anonymous: httpx.AsyncClient) -> None:
    assert_problem(await anonymous.get("/notices"), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": 201}, "limit", id="limit-201"),
        pytest.param({"limit": "many"}, "limit", id="limit-word"),
        pytest.param({"cursor": "not-a-cursor"}, "cursor", id="bad-cursor"),
    ],
)
async def test_notices_refuse_bad_paging(
    tenant: Tenant, params: dict[str, Any], field: str
) -> None:
    response = await tenant.api.get("/notices", params=params)
    assert_invalid(response, field)
    assert any(loc[0] == "query" for loc in error_locs(response))


# --- POST /webhooks/{id}/recover -------------------------------------------------------


async def test_recover_puts_back_exactly_the_failed_event_deliveries_in_the_window(
    tenant: Tenant,
) -> None:
    webhook = await tenant.subscribed_webhook()
    neighbour = await tenant.subscribed_webhook()
    since, until = NOW - timedelta(days=2), NOW - timedelta(days=1)
    inside = [
        await failed_delivery(tenant, webhook["id"], since, attempt_count=3),
        await failed_delivery(tenant, webhook["id"], since + timedelta(hours=6), attempt_count=5),
        await failed_delivery(tenant, webhook["id"], until - timedelta(seconds=1)),
    ]
    too_old = await failed_delivery(tenant, webhook["id"], since - timedelta(seconds=1))
    too_new = await failed_delivery(tenant, webhook["id"], until)
    succeeded = await delivery_for_event(tenant, webhook["id"])
    cancelled = await delivery_for_event(tenant, webhook["id"])
    for delivery_id, status in ((succeeded, "succeeded"), (cancelled, "cancelled")):
        await set_delivery(
            tenant,
            delivery_id,
            status=status,
            attempt_count=1,
            created_at=since + timedelta(hours=1),
            completed_at=since + timedelta(hours=2),
        )
    # Every event above went to the neighbour too; fail one of those, in the window.
    neighbours = (await deliveries_of(tenant, neighbour["id"]))[0]["id"]
    await set_delivery(
        tenant,
        neighbours,
        status="failed",
        attempt_count=3,
        attempt_limit=3,
        created_at=since + timedelta(hours=1),
        completed_at=since + timedelta(hours=2),
    )
    untouched = {
        delivery_id: await row(tenant, delivery_id)
        for delivery_id in (too_old, too_new, succeeded, cancelled, neighbours)
    }
    counts_before = {
        delivery_id: (await row(tenant, delivery_id)).attempt_count for delivery_id in inside
    }
    started = datetime.now(UTC)

    assert await recovered(tenant, webhook["id"], since, until) == 3

    for delivery_id in inside:
        detail = await tenant.fetch(f"/deliveries/{delivery_id}")
        assert detail["status"] == "pending"
        assert detail["attempt_count"] == counts_before[delivery_id]
        assert detail["completed_at"] is None
        assert datetime.fromisoformat(detail["next_attempt_at"]) <= datetime.now(UTC)
        assert datetime.fromisoformat(detail["next_attempt_at"]) >= started - timedelta(seconds=1)
    for delivery_id, before in untouched.items():
        assert await row(tenant, delivery_id) == before


async def test_recovered_deliveries_get_a_fresh_attempt_budget(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=2), 7)

    assert await recovered(tenant, webhook["id"], NOW - timedelta(hours=3)) == 1

    recovered_row = await row(tenant, delivery_id)
    assert recovered_row.status == "pending"
    assert recovered_row.attempt_count == 7
    max_attempts = resources.of(tenant.app).settings.max_attempts
    assert recovered_row.attempt_limit == 7 + max_attempts
    assert recovered_row.completed_at is None


async def test_recover_twice_finds_nothing_the_second_time(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=2))
    assert await recovered(tenant, webhook["id"], NOW - timedelta(hours=3)) == 1
    assert await recovered(tenant, webhook["id"], NOW - timedelta(hours=3)) == 0


async def test_recover_with_nothing_failed_answers_zero(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    pending = await delivery_for_event(tenant, webhook["id"])
    assert await recovered(tenant, webhook["id"], NOW - timedelta(days=1)) == 0
    assert (await row(tenant, pending)).status == "pending"


@pytest.mark.parametrize("until", [pytest.param(None, id="null"), pytest.param(..., id="absent")])
async def test_until_defaults_to_now(tenant: Tenant, until: Any) -> None:
    webhook = await tenant.subscribed_webhook()
    past = await failed_delivery(tenant, webhook["id"], datetime.now(UTC) - timedelta(minutes=1))
    future = await failed_delivery(tenant, webhook["id"], datetime.now(UTC) + timedelta(hours=1))
    body: dict[str, Any] = {"since": rfc3339(NOW - timedelta(days=1))}
    if until is not ...:
        body["until"] = until

    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=body)

    assert response.status_code == 202, response.text
    assert response.json() == {"deliveries": 1}
    assert (await row(tenant, past)).status == "pending"
    assert (await row(tenant, future)).status == "failed"


async def test_test_deliveries_are_not_recovered(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    ping = await tenant.api.post(f"/webhooks/{webhook['id']}/test")
    assert ping.status_code == 202, ping.text
    ping_id = ping.json()["delivery_id"]
    await set_delivery(
        tenant,
        ping_id,
        status="failed",
        attempt_count=1,
        created_at=NOW - timedelta(hours=1),
        completed_at=NOW - timedelta(hours=1),
    )
    event_delivery = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))

    assert await recovered(tenant, webhook["id"], NOW - timedelta(hours=2)) == 1

    assert (await row(tenant, ping_id)).status == "failed"
    assert (await row(tenant, event_delivery)).status == "pending"


async def test_the_window_may_be_given_in_any_offset(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    at = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    delivery_id = await failed_delivery(tenant, webhook["id"], at)
    body = {
        # 09:30Z and 10:30Z, spelled in +02:00.
        "since": "2026-11-28T11:30:00+02:00",
        "until": "2026-11-28T12:30:00+02:00",
    }
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=body)
    assert response.status_code == 202, response.text
    assert response.json() == {"deliveries": 1}
    assert (await row(tenant, delivery_id)).status == "pending"
    # And a window that ends just before it (10:00Z is 11:00+01:00), in +01:00, finds nothing.
    other = await failed_delivery(tenant, webhook["id"], at)
    body = {"since": "2026-11-28T10:00:00+01:00", "until": "2026-11-28T11:00:00+01:00"}
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=body)
    assert response.json() == {"deliveries": 0}
    assert (await row(tenant, other)).status == "failed"


async def test_a_window_of_exactly_14_days_is_accepted(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    until = datetime(2026, 11, 28, tzinfo=UTC)
    oldest = await failed_delivery(tenant, webhook["id"], until - timedelta(days=14))
    assert await recovered(tenant, webhook["id"], until - timedelta(days=14), until) == 1
    assert (await row(tenant, oldest)).status == "pending"


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        pytest.param(NOW, NOW, "until", id="until-equals-since"),
        pytest.param(NOW, NOW - timedelta(seconds=1), "until", id="until-before-since"),
        pytest.param(
            NOW - timedelta(days=14, seconds=1), NOW, "since", id="window-14-days-and-a-second"
        ),
        pytest.param(NOW - timedelta(days=30), NOW - timedelta(days=1), "since", id="30-days"),
        pytest.param(NOW - timedelta(days=15), None, "since", id="15-days-until-now"),
        pytest.param(NOW + timedelta(hours=1), None, "since", id="since-in-the-future"),
    ],
)
async def test_recover_refuses_a_bad_window(
    tenant: Tenant, since: datetime, until: datetime | None, field: str
) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))
    response = await recover(tenant.api, webhook["id"], since, until)
    assert_invalid(response, field)
    assert (await row(tenant, delivery_id)).status == "failed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "since", id="no-since"),
        pytest.param({"since": None}, "since", id="null-since"),
        pytest.param({"since": "2026-11-28T10:00:00"}, "since", id="naive-since"),
        pytest.param({"since": "yesterday"}, "since", id="word-since"),
        pytest.param({"since": "2026-11-28"}, "since", id="date-only-since"),
        pytest.param(
            {"since": "2026-11-28T10:00:00Z", "until": "2026-11-28T11:00:00"},
            "until",
            id="naive-until",
        ),
        pytest.param({"since": "2026-11-28T10:00:00Z", "until": "soon"}, "until", id="word-until"),
        pytest.param(
            {"since": "2026-11-28T10:00:00Z", "status": "failed"}, "status", id="unknown-field"
        ),
    ],
)
async def test_recover_refuses_an_invalid_body(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    webhook = await tenant.subscribed_webhook()
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=body)
    assert_invalid(response, field)


async def test_recover_refuses_a_body_that_is_not_an_object(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    response = await tenant.api.post(f"/webhooks/{webhook['id']}/recover", json=["2026"])
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "reason",
    [pytest.param("manual", id="manual"), pytest.param("gone", id="gone")],
)
async def test_recover_on_an_inactive_webhook_is_a_conflict(tenant: Tenant, reason: str) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))
    if reason == "manual":
        patched = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": False})
        assert patched.status_code == 200, patched.text
    else:
        assert await turn_off(tenant, webhook["id"], DisabledReason.GONE)

    assert_problem(await recover(tenant.api, webhook["id"], NOW - timedelta(days=1)), 409)
    assert (await row(tenant, delivery_id)).status == "failed"


async def test_recover_works_again_once_reactivated(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))
    assert await turn_off(tenant, webhook["id"], DisabledReason.FAILING)
    patched = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": True})
    assert patched.status_code == 200, patched.text

    assert await recovered(tenant, webhook["id"], NOW - timedelta(days=1)) == 1
    assert (await row(tenant, delivery_id)).status == "pending"


async def test_recover_on_another_accounts_webhook_is_not_found(
    tenant: Tenant, other: Tenant
) -> None:
    theirs = await other.subscribed_webhook()
    delivery_id = await failed_delivery(other, theirs["id"], NOW - timedelta(hours=1))
    assert_problem(await recover(tenant.api, theirs["id"], NOW - timedelta(days=1)), 404)
    assert (await row(other, delivery_id)).status == "failed"


async def test_recover_on_an_unknown_or_deleted_webhook_is_not_found(tenant: Tenant) -> None:
    assert_problem(await recover(tenant.api, "whk_unknown", NOW - timedelta(days=1)), 404)
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))
    deleted = await tenant.api.delete(f"/webhooks/{webhook['id']}")
    assert deleted.status_code == 204, deleted.text
    assert_problem(await recover(tenant.api, webhook["id"], NOW - timedelta(days=1)), 404)
    assert (await row(tenant, delivery_id)).status == "failed"


async def test_recover_needs_deliveries_retry(tenant: Tenant) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=1))
    async with await tenant.client(
        Scope.DELIVERIES_READ, Scope.WEBHOOKS_UPDATE, Scope.WEBHOOKS_READ
    ) as client:
        assert_problem(await recover(client, webhook["id"], NOW - timedelta(days=1)), 403)
    assert (await row(tenant, delivery_id)).status == "failed"
    async with await tenant.client(Scope.DELIVERIES_RETRY) as client:
        response = await recover(client, webhook["id"], NOW - timedelta(days=1))
    assert response.status_code == 202, response.text
    assert response.json() == {"deliveries": 1}


async def test_recover_needs_a_key(tenant: Tenant, anonymous: httpx.AsyncClient) -> None:
    webhook = await tenant.subscribed_webhook()
    assert_problem(await recover(anonymous, webhook["id"], NOW - timedelta(days=1)), 401)


async def test_recover_takes_the_oldest_first_up_to_the_limit(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries_service, "RECOVERY_LIMIT", 3)
    monkeypatch.setattr(deliveries_service, "_RECOVERY_CHUNK", 2)
    webhook = await tenant.subscribed_webhook()
    # Created newest first, so the oldest by created_at is not the oldest by id.
    ids = [
        await failed_delivery(tenant, webhook["id"], NOW - timedelta(hours=hours))
        for hours in (1, 2, 3, 4, 5)
    ]
    oldest_three, newest_two = ids[2:], ids[:2]

    assert await recovered(tenant, webhook["id"], NOW - timedelta(days=1)) == 3
    assert [(await row(tenant, d)).status for d in oldest_three] == ["pending"] * 3
    assert [(await row(tenant, d)).status for d in newest_two] == ["failed"] * 2

    assert await recovered(tenant, webhook["id"], NOW - timedelta(days=1)) == 2
    assert [(await row(tenant, d)).status for d in ids] == ["pending"] * 5


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"since": "0001-01-01T00:00:00+01:00", "until": "0001-01-01T00:30:00+01:00"},
            id="before-year-1-in-utc",
        ),
        pytest.param(
            {"since": "9999-12-31T23:00:00-01:00", "until": "9999-12-31T23:30:00-01:00"},
            id="after-year-9999-in-utc",
        ),
    ],
)
async def test_recover_refuses_a_window_outside_the_datetime_range(
    tenant: Tenant, unraised: httpx.AsyncClient, body: dict[str, str]
) -> None:
    webhook = await tenant.subscribed_webhook()
    response = await unraised.post(f"/webhooks/{webhook['id']}/recover", json=body)
    locs = error_locs(response)
    assert any(loc[-1] in ("since", "until") for loc in locs), locs
