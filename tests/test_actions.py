"""Actions (docs/api.md#actions): binding, listing, unbinding, and which events they
route to which webhooks."""

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.problems import assert_problem, error_locs

ACTION_FIELDS = {"id", "webhook_id", "event_type", "app_id", "sku_id", "created_at"}


# --- helpers -------------------------------------------------------------------------


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def newest_first(items: list[dict[str, Any]]) -> list[str]:
    # Ids sort by creation time, so "newest first" is descending id order.
    return sorted(ids(items), reverse=True)


async def listed(client: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    data: list[dict[str, Any]] = page["data"]
    return data


async def delivered_to(tenant: Tenant, **event: Any) -> tuple[int, list[str]]:
    """Posts an event; answers its 202 `deliveries` count and the webhook ids it reached."""
    accepted = await tenant.event(**event)
    deliveries = await listed(tenant.api, "/deliveries", event_id=accepted["id"])
    assert {d["event_id"] for d in deliveries} <= {accepted["id"]}
    assert all(d["status"] == "pending" and d["kind"] == "event" for d in deliveries)
    return accepted["deliveries"], sorted(d["webhook_id"] for d in deliveries)


# --- create ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "binding",
    [
        pytest.param({"app_id": "app_42"}, id="app-only"),
        pytest.param({"sku_id": "gems_100"}, id="sku-only"),
        pytest.param({"app_id": "app_42", "sku_id": "gems_100"}, id="app-and-sku"),
        pytest.param({"app_id": "app_42", "sku_id": None}, id="explicit-null-sku"),
    ],
)
@pytest.mark.parametrize("event_type", ["purchase", "subscription_cancelled"])
async def test_create_answers_201_with_the_action(
    tenant: Tenant, binding: dict[str, Any], event_type: str
) -> None:
    webhook = await tenant.webhook()

    response = await tenant.api.post(
        f"/webhooks/{webhook['id']}/actions", json={"event_type": event_type, **binding}
    )

    assert response.status_code == 201, response.text
    action = response.json()
    assert set(action) == ACTION_FIELDS
    assert isinstance(action["id"], str) and action["id"]
    assert action["webhook_id"] == webhook["id"]
    assert action["event_type"] == event_type
    assert action["app_id"] == binding.get("app_id")
    assert action["sku_id"] == binding.get("sku_id")
    assert await listed(tenant.api, f"/webhooks/{webhook['id']}/actions") == [action]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"event_type": "purchase"}, {"app_id", "sku_id"}, id="neither-id"),
        pytest.param(
            {"event_type": "purchase", "app_id": None, "sku_id": None},
            {"app_id", "sku_id"},
            id="both-ids-null",
        ),
        pytest.param({"event_type": "refund", "app_id": "app_42"}, {"event_type"}, id="refund"),
        pytest.param({"app_id": "app_42"}, {"event_type"}, id="missing-event-type"),
        pytest.param(
            {"event_type": "purchase", "app_id": "", "sku_id": "gems_100"},
            {"app_id"},
            id="empty-app-id",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "sku_id": ""},
            {"sku_id"},
            id="empty-sku-id",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "webhook_id": "wh_x"},
            {"webhook_id"},
            id="unknown-field",
        ),
    ],
)
async def test_create_rejects_invalid_bodies(
    tenant: Tenant, body: dict[str, Any], fields: set[str]
) -> None:
    webhook = await tenant.webhook()

    response = await tenant.api.post(f"/webhooks/{webhook['id']}/actions", json=body)

    locs = error_locs(response)
    assert any(loc and loc[-1] in fields for loc in locs), locs
    assert await listed(tenant.api, f"/webhooks/{webhook['id']}/actions") == []


async def test_missing_ids_error_names_both_fields(tenant: Tenant) -> None:
    webhook = await tenant.webhook()

    response = await tenant.api.post(
        f"/webhooks/{webhook['id']}/actions", json={"event_type": "purchase"}
    )

    body = assert_problem(response, 422)
    text = " ".join(f"{error['loc']} {error['msg']}" for error in body["errors"])
    assert "app_id" in text and "sku_id" in text, text


async def test_create_on_unknown_or_foreign_webhook_is_404(tenant: Tenant, other: Tenant) -> None:
    theirs = await other.webhook()
    body = {"event_type": "purchase", "app_id": "app_42"}

    assert_problem(await tenant.api.post("/webhooks/wh_nope/actions", json=body), 404)
    assert_problem(await tenant.api.post(f"/webhooks/{theirs['id']}/actions", json=body), 404)
    assert await listed(other.api, f"/webhooks/{theirs['id']}/actions") == []


# --- duplicates ------------------------------------------------------------------------

BINDINGS = [
    pytest.param({"app_id": "app_42"}, id="app-only"),
    pytest.param({"app_id": "app_42", "sku_id": None}, id="app-only-explicit-null-sku"),
    pytest.param({"sku_id": "gems_100"}, id="sku-only"),
    pytest.param({"app_id": "app_42", "sku_id": "gems_100"}, id="app-and-sku"),
]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_duplicate_binding_on_one_webhook_is_409(
    tenant: Tenant, binding: dict[str, Any]
) -> None:
    webhook = await tenant.webhook()
    first = await tenant.action(webhook["id"], event_type="purchase", **binding)

    response = await tenant.api.post(
        f"/webhooks/{webhook['id']}/actions", json={"event_type": "purchase", **binding}
    )

    assert_problem(response, 409)
    assert await listed(tenant.api, f"/webhooks/{webhook['id']}/actions") == [first]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_same_binding_elsewhere_is_allowed(tenant: Tenant, binding: dict[str, Any]) -> None:
    webhook = await tenant.webhook()
    second_webhook = await tenant.webhook()
    await tenant.action(webhook["id"], event_type="purchase", **binding)

    on_other_webhook = await tenant.api.post(
        f"/webhooks/{second_webhook['id']}/actions", json={"event_type": "purchase", **binding}
    )
    other_type = await tenant.api.post(
        f"/webhooks/{webhook['id']}/actions",
        json={"event_type": "subscription_cancelled", **binding},
    )

    assert on_other_webhook.status_code == 201, on_other_webhook.text
    assert other_type.status_code == 201, other_type.text
    assert len(await listed(tenant.api, f"/webhooks/{webhook['id']}/actions")) == 2
    assert len(await listed(tenant.api, f"/webhooks/{second_webhook['id']}/actions")) == 1


async def test_app_only_and_app_with_sku_are_different_bindings(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")

    response = await tenant.api.post(
        f"/webhooks/{webhook['id']}/actions",
        json={"event_type": "purchase", "app_id": "app_42", "sku_id": "gems_100"},
    )

    assert response.status_code == 201, response.text


# --- listing ---------------------------------------------------------------------------


async def test_webhook_actions_lists_exactly_its_own(tenant: Tenant, other: Tenant) -> None:
    webhook = await tenant.webhook()
    neighbour = await tenant.webhook()
    mine = [
        await tenant.action(webhook["id"], event_type="purchase", app_id="app_42"),
        await tenant.action(webhook["id"], event_type="subscription_cancelled", sku_id="sub_1"),
    ]
    theirs = [await tenant.action(neighbour["id"], event_type="purchase", app_id="app_42")]
    foreign = await other.webhook()
    await other.action(foreign["id"], event_type="purchase", app_id="app_42")

    assert ids(await listed(tenant.api, f"/webhooks/{webhook['id']}/actions")) == newest_first(mine)
    assert ids(await listed(tenant.api, f"/webhooks/{neighbour['id']}/actions")) == ids(theirs)
    assert_problem(await tenant.api.get(f"/webhooks/{foreign['id']}/actions"), 404)


# Named actions spread over two webhooks, for the filter table below.
CATALOGUE = {
    "a1": ("first", "purchase", "app_1", None),
    "a2": ("first", "purchase", "app_1", "sku_1"),
    "a3": ("second", "subscription_cancelled", "app_1", "sku_1"),
    "a4": ("second", "purchase", None, "sku_1"),
    "a5": ("first", "subscription_cancelled", "app_2", None),
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, {"a1", "a2", "a3", "a4", "a5"}, id="no-filter"),
        pytest.param({"app_id": "app_1"}, {"a1", "a2", "a3"}, id="app"),
        pytest.param({"sku_id": "sku_1"}, {"a2", "a3", "a4"}, id="sku"),
        pytest.param({"event_type": "purchase"}, {"a1", "a2", "a4"}, id="purchase"),
        pytest.param({"event_type": "subscription_cancelled"}, {"a3", "a5"}, id="cancelled"),
        pytest.param({"app_id": "app_1", "sku_id": "sku_1"}, {"a2", "a3"}, id="app-sku"),
        pytest.param({"app_id": "app_1", "event_type": "purchase"}, {"a1", "a2"}, id="app-type"),
        pytest.param({"sku_id": "sku_1", "event_type": "purchase"}, {"a2", "a4"}, id="sku-type"),
        pytest.param(
            {"app_id": "app_1", "sku_id": "sku_1", "event_type": "purchase"},
            {"a2"},
            id="app-sku-type",
        ),
        pytest.param({"app_id": "app_2", "sku_id": "sku_1"}, set(), id="no-match"),
        pytest.param({"app_id": "app_9"}, set(), id="unknown-app"),
    ],
)
async def test_search_filters_exactly(
    tenant: Tenant, other: Tenant, params: dict[str, str], expected: set[str]
) -> None:
    webhooks = {"first": await tenant.webhook(), "second": await tenant.webhook()}
    created = {
        name: await tenant.action(
            webhooks[hook]["id"], event_type=event_type, app_id=app_id, sku_id=sku_id
        )
        for name, (hook, event_type, app_id, sku_id) in CATALOGUE.items()
    }
    foreign = await other.webhook()
    await other.action(foreign["id"], event_type="purchase", app_id="app_1", sku_id="sku_1")

    found = await listed(tenant.api, "/actions", **params)

    wanted = [created[name] for name in expected]
    assert found == sorted(wanted, key=lambda action: action["id"], reverse=True)


async def test_search_rejects_an_unknown_event_type(tenant: Tenant) -> None:
    locs = error_locs(await tenant.api.get("/actions", params={"event_type": "refund"}))
    assert any(loc[-1] == "event_type" for loc in locs), locs


# --- delete ----------------------------------------------------------------------------


async def test_delete_action_answers_204_and_it_is_gone(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    kept = await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    doomed = await tenant.action(webhook["id"], event_type="purchase", sku_id="gems_100")
    path = f"/webhooks/{webhook['id']}/actions/{doomed['id']}"

    response = await tenant.api.delete(path)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await listed(tenant.api, f"/webhooks/{webhook['id']}/actions") == [kept]
    assert ids(await listed(tenant.api, "/actions")) == [kept["id"]]
    assert_problem(await tenant.api.delete(path), 404)


async def test_delete_action_through_the_wrong_webhook_is_404(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    neighbour = await tenant.webhook()
    action = await tenant.action(neighbour["id"], event_type="purchase", app_id="app_42")

    response = await tenant.api.delete(f"/webhooks/{webhook['id']}/actions/{action['id']}")

    assert_problem(response, 404)
    assert await listed(tenant.api, f"/webhooks/{neighbour['id']}/actions") == [action]


async def test_delete_unknown_action_is_404(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    assert_problem(await tenant.api.delete(f"/webhooks/{webhook['id']}/actions/act_nope"), 404)


async def test_delete_another_accounts_action_is_404(tenant: Tenant, other: Tenant) -> None:
    theirs = await other.webhook()
    action = await other.action(theirs["id"], event_type="purchase", app_id="app_42")
    mine = await tenant.webhook()

    for path in (
        f"/webhooks/{theirs['id']}/actions/{action['id']}",
        f"/webhooks/{mine['id']}/actions/{action['id']}",
    ):
        assert_problem(await tenant.api.delete(path), 404)
    assert await listed(other.api, f"/webhooks/{theirs['id']}/actions") == [action]


# --- matching (docs/api.md#actions: types equal, each non-null id of the action equal) ------------


@pytest.mark.parametrize(
    ("binding", "event", "matches"),
    [
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42"},
            {"app_id": "app_42", "sku_id": "gems_100"},
            True,
            id="app-action-sku-purchase",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42"},
            {"app_id": "app_42"},
            True,
            id="app-action-app-purchase",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42"},
            {"app_id": "app_7", "sku_id": "gems_100"},
            False,
            id="app-action-other-app",
        ),
        pytest.param(
            {"event_type": "purchase", "sku_id": "gems_100"},
            {"app_id": "app_42", "sku_id": "gems_100"},
            True,
            id="sku-action-same-sku",
        ),
        pytest.param(
            {"event_type": "purchase", "sku_id": "gems_100"},
            {"app_id": "app_42", "sku_id": "gems_500"},
            False,
            id="sku-action-other-sku",
        ),
        pytest.param(
            {"event_type": "purchase", "sku_id": "gems_100"},
            {"app_id": "app_42"},
            False,
            id="sku-action-app-purchase",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "sku_id": "gems_100"},
            {"app_id": "app_42", "sku_id": "gems_100"},
            True,
            id="pair-action-same-pair",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "sku_id": "gems_100"},
            {"app_id": "app_7", "sku_id": "gems_100"},
            False,
            id="pair-action-other-app",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "sku_id": "gems_100"},
            {"app_id": "app_42", "sku_id": "gems_500"},
            False,
            id="pair-action-other-sku",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42", "sku_id": "gems_100"},
            {"app_id": "app_42"},
            False,
            id="pair-action-app-purchase",
        ),
        pytest.param(
            {"event_type": "subscription_cancelled", "app_id": "app_42"},
            {"app_id": "app_42", "sku_id": "gems_100"},
            False,
            id="cancel-action-purchase-event",
        ),
        pytest.param(
            {"event_type": "purchase", "app_id": "app_42"},
            {"type": "subscription_cancelled", "app_id": "app_42"},
            False,
            id="purchase-action-cancel-event",
        ),
        pytest.param(
            {"event_type": "subscription_cancelled", "sku_id": "sub_1"},
            {"type": "subscription_cancelled", "app_id": "app_42", "sku_id": "sub_1"},
            True,
            id="cancel-action-cancel-event",
        ),
    ],
)
async def test_matching_rules(
    tenant: Tenant, binding: dict[str, Any], event: dict[str, Any], matches: bool
) -> None:
    webhook = await tenant.webhook()
    await tenant.action(webhook["id"], **binding)

    count, reached = await delivered_to(tenant, **event)

    expected = [webhook["id"]] if matches else []
    assert (count, reached) == (len(expected), expected)


async def test_several_matching_actions_give_one_delivery(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    await tenant.action(webhook["id"], event_type="purchase", sku_id="gems_100")
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42", sku_id="gems_100")

    count, reached = await delivered_to(tenant, app_id="app_42", sku_id="gems_100")

    assert (count, reached) == (1, [webhook["id"]])


async def test_each_matching_webhook_gets_one_delivery(tenant: Tenant) -> None:
    first = await tenant.webhook()
    second = await tenant.webhook()
    bystander = await tenant.webhook()
    await tenant.action(first["id"], event_type="purchase", app_id="app_42")
    await tenant.action(second["id"], event_type="purchase", sku_id="gems_100")
    await tenant.action(second["id"], event_type="purchase", app_id="app_42")
    await tenant.action(bystander["id"], event_type="purchase", app_id="app_7")

    count, reached = await delivered_to(tenant, app_id="app_42", sku_id="gems_100")

    assert (count, reached) == (2, sorted([first["id"], second["id"]]))


async def test_inactive_webhooks_get_no_delivery(tenant: Tenant) -> None:
    active = await tenant.webhook()
    paused = await tenant.webhook()
    for webhook in (active, paused):
        await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    response = await tenant.api.patch(f"/webhooks/{paused['id']}", json={"active": False})
    assert response.status_code == 200, response.text

    count, reached = await delivered_to(tenant, app_id="app_42")

    assert (count, reached) == (1, [active["id"]])
    paused_deliveries = await listed(tenant.api, "/deliveries", webhook_id=paused["id"])
    assert paused_deliveries == []


async def test_reactivated_webhook_matches_again(tenant: Tenant) -> None:
    webhook = await tenant.webhook(active=False)
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    assert (await delivered_to(tenant, app_id="app_42")) == (0, [])

    response = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"active": True})
    assert response.status_code == 200, response.text

    assert (await delivered_to(tenant, app_id="app_42")) == (1, [webhook["id"]])


async def test_another_accounts_actions_never_match(tenant: Tenant, other: Tenant) -> None:
    theirs = await other.webhook()
    await other.action(theirs["id"], event_type="purchase", app_id="app_42")
    mine = await tenant.webhook()
    await tenant.action(mine["id"], event_type="purchase", app_id="app_42")

    count, reached = await delivered_to(tenant, app_id="app_42", sku_id="gems_100")

    assert (count, reached) == (1, [mine["id"]])
    assert await listed(other.api, "/deliveries") == []


async def test_an_account_without_actions_gets_no_delivery(tenant: Tenant, other: Tenant) -> None:
    theirs = await other.webhook()
    await other.action(theirs["id"], event_type="purchase", app_id="app_42")

    assert (await delivered_to(tenant, app_id="app_42")) == (0, [])
    assert await listed(other.api, "/deliveries") == []


async def test_removed_action_no_longer_matches(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    action = await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    path = f"/webhooks/{webhook['id']}/actions/{action['id']}"
    assert (await tenant.api.delete(path)).status_code == 204

    assert (await delivered_to(tenant, app_id="app_42")) == (0, [])
