"""The console shows only the controls the signed-in principal's scopes allow (issue 18):
a control whose call the API would refuse is absent from the page, not disabled."""

import pytest
from playwright.async_api import Locator, Page, expect

from tests.console.conftest import Console, sign_in
from tests.support.receivers import Receiver

EVERY_CONTROL = {  # the list's, then the detail page's
    "Add Web Hook", "Edit", "Delete", "Last 24 h",
    "Test", "Reveal", "Rotate", "Actions", "Add action", "Recent changes", "Deliveries",
}  # fmt: skip


async def expect_only(controls: dict[str, Locator], shown: set[str]) -> None:
    for name, control in controls.items():
        await expect(control, name).to_have_count(1 if name in shown else 0)


@pytest.mark.parametrize(
    ("scopes", "shown"),
    [
        (("webhooks:read",), set()),
        (("webhooks:read", "webhooks:update"), {"Edit", "Reveal", "Rotate"}),
        ((), EVERY_CONTROL),  # the account's first key, holding every scope
    ],
    ids=["read", "read-update", "every-scope"],
)
async def test_the_controls_follow_the_scopes(
    page: Page, console: Console, receiver: Receiver, scopes: tuple[str, ...], shown: set[str]
) -> None:
    await console.webhook(receiver.url)
    key = await console.key(*scopes) if scopes else console.api_key
    me = (await console.api.get("/me", headers={"Authorization": f"Bearer {key}"})).json()

    await sign_in(page, key)
    await expect(page.locator(".account .who")).to_have_text(me["name"] or me["key_id"])
    row = page.get_by_role("row").filter(has_text=receiver.url)
    await expect(row).to_contain_text("orders")
    await expect_only(
        {
            "Add Web Hook": page.get_by_role("button", name="Add Web Hook"),
            "Edit": row.get_by_role("link", name="Edit"),
            "Delete": row.get_by_role("button", name="Delete"),
            "Last 24 h": page.get_by_role("columnheader", name="Last 24 h"),
        },
        shown,
    )

    await row.get_by_role("link", name="orders").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    await expect(page.get_by_text(receiver.url)).to_be_visible()
    await expect_only(
        {
            "Edit": page.get_by_role("link", name="Edit", exact=True),
            "Test": page.get_by_role("button", name="Test", exact=True),
            "Reveal": page.get_by_role("button", name="Reveal"),
            "Rotate": page.get_by_role("button", name="Rotate"),
            "Actions": page.get_by_role("region", name="Actions"),
            "Add action": page.get_by_role("button", name="Add action"),
            "Recent changes": page.get_by_role("region", name="Recent changes"),
            "Deliveries": page.get_by_role("region", name="Deliveries"),
        },
        shown,
    )
