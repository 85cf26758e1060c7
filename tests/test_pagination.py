"""Cursor pagination of every list (docs/api.md#pagination: `?limit=` 1–200, default 50,
newest first)."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Tenant
from tests.support.problems import error_locs

# Each maker creates five items of one list and returns their ids in creation order.
Maker = Callable[[Tenant], Awaitable[list[str]]]


async def make_webhooks(tenant: Tenant) -> list[str]:
    return [(await tenant.webhook(name=f"hook {n}"))["id"] for n in range(5)]


async def make_events(tenant: Tenant) -> list[str]:
    return [(await tenant.event(data={"n": n}))["id"] for n in range(5)]


async def make_deliveries(tenant: Tenant) -> list[str]:
    webhook = await tenant.webhook()
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    ids = []
    for _ in range(5):
        event = await tenant.event()
        listing = (await tenant.api.get("/deliveries", params={"event_id": event["id"]})).json()
        [delivery] = listing["data"]
        ids.append(delivery["id"])
    return ids


async def make_actions(tenant: Tenant) -> list[str]:
    webhook = await tenant.webhook()
    return [
        (await tenant.action(webhook["id"], event_type="purchase", app_id=f"app_{n}"))["id"]
        for n in range(5)
    ]


async def make_api_keys(tenant: Tenant) -> list[str]:
    # The tenant's own key is the first of the five.
    ids = [(await tenant.api.get("/me")).json()["key_id"]]
    for n in range(4):
        response = await tenant.api.post(
            "/api-keys", json={"name": f"key {n}", "scopes": ["events:write"]}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


LISTS: list[tuple[str, Maker]] = [
    ("/webhooks", make_webhooks),
    ("/events", make_events),
    ("/deliveries", make_deliveries),
    ("/actions", make_actions),
    ("/api-keys", make_api_keys),
]
PATHS = [path for path, _maker in LISTS]


async def get_page(tenant: Tenant, path: str, **params: Any) -> dict[str, Any]:
    response = await tenant.api.get(path, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"data", "next_cursor"}
    return page


@pytest.mark.parametrize(("path", "make"), LISTS, ids=PATHS)
async def test_walking_with_limit_2_gives_every_item_once_newest_first(
    tenant: Tenant, path: str, make: Maker
) -> None:
    created = await make(tenant)
    pages = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await get_page(tenant, path, **params)
        pages.append(page)
        if page["next_cursor"] is None:
            break
        assert isinstance(page["next_cursor"], str)
        params = {"limit": 2, "cursor": page["next_cursor"]}
        assert len(pages) < 10, "the walk does not end"

    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert [item["id"] for page in pages for item in page["data"]] == created[::-1]


@pytest.mark.parametrize(("path", "make"), LISTS, ids=PATHS)
async def test_a_list_that_fits_has_no_next_cursor(tenant: Tenant, path: str, make: Maker) -> None:
    created = await make(tenant)
    page = await get_page(tenant, path)
    assert [item["id"] for item in page["data"]] == created[::-1]
    assert page["next_cursor"] is None


@pytest.mark.parametrize(("path", "make"), LISTS, ids=PATHS)
async def test_a_page_exactly_full_ends_the_walk(tenant: Tenant, path: str, make: Maker) -> None:
    created = await make(tenant)
    first = await get_page(tenant, path, limit=3)
    second = await get_page(tenant, path, limit=3, cursor=first["next_cursor"])
    assert [item["id"] for item in first["data"]] == created[:1:-1]
    assert [item["id"] for item in second["data"]] == created[1::-1]
    assert second["next_cursor"] is None
    # limit equal to the number of items: one page, no cursor to an empty page.
    assert (await get_page(tenant, path, limit=5))["next_cursor"] is None


async def test_the_default_limit_is_50(tenant: Tenant) -> None:
    created = [(await tenant.webhook(name=f"hook {n}"))["id"] for n in range(51)]
    first = await get_page(tenant, "/webhooks")
    assert [item["id"] for item in first["data"]] == created[:0:-1]
    assert first["next_cursor"] is not None
    second = await get_page(tenant, "/webhooks", cursor=first["next_cursor"])
    assert [item["id"] for item in second["data"]] == [created[0]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("path", PATHS)
async def test_limit_200_is_accepted(tenant: Tenant, path: str) -> None:
    page = await get_page(tenant, path, limit=200)
    assert page["next_cursor"] is None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1"])
async def test_a_limit_out_of_range_is_422_naming_limit(
    tenant: Tenant, path: str, limit: str
) -> None:
    response = await tenant.api.get(path, params={"limit": limit})
    assert error_locs(response) == [["query", "limit"]]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cursor", ["!!!", "not a cursor"])
async def test_a_garbage_cursor_is_422_naming_cursor(
    tenant: Tenant, path: str, cursor: str
) -> None:
    response = await tenant.api.get(path, params={"cursor": cursor})
    assert error_locs(response) == [["query", "cursor"]]
