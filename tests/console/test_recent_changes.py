"""The web hook's detail page shows its recent changes from the audit log (issue 18, point
3): what changed, by whom, how long ago; only to principals holding `audit:read`."""

import re

from playwright.async_api import Page, expect

from tests.console.conftest import Console, sign_in
from tests.support.receivers import Receiver


async def key_name(console: Console, key: str) -> str:
    """The name the audit log gives the actor of `key`'s changes."""
    me = (await console.api.get("/me", headers={"Authorization": f"Bearer {key}"})).json()
    keys = (await console.get("/api-keys"))["data"]
    name: str = next(found["name"] for found in keys if found["id"] == me["key_id"])
    return name


async def test_the_detail_page_says_who_changed_what(
    page: Page, console: Console, receiver: Receiver
) -> None:
    webhook = await console.webhook(receiver.url)
    await sign_in(page, console.api_key)
    await (
        page.get_by_role("row")
        .filter(has_text=receiver.url)
        .get_by_role("link", name="Edit")
        .click()
    )
    await page.get_by_label("URI End Point").fill(f"{receiver.url}/moved")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()

    actor = re.escape(await key_name(console, console.api_key))
    changes = page.get_by_role("region", name="Recent changes").get_by_role("listitem")
    await expect(changes).to_have_count(2)  # newest first
    await expect(changes.nth(0)).to_have_text(re.compile(rf"^URL changed by {actor}, just now$"))
    await expect(changes.nth(1)).to_have_text(re.compile(rf"^Created by {actor}, just now$"))
    assert (await console.get(f"/webhooks/{webhook['id']}"))["url"].endswith("/moved")

    await page.get_by_label("App ID").fill("app_42")
    await page.get_by_role("button", name="Add action").click()
    await expect(page.get_by_role("cell", name="app_42")).to_be_visible()
    await page.reload()  # the page reads the changes when it opens
    await expect(changes).to_have_count(3)
    await expect(changes.nth(0)).to_have_text(
        re.compile(rf"^Action added \(Purchase\) by {actor}, just now$")
    )

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, await console.key("webhooks:read", "webhooks:update"))
    await page.goto(f"/ui/#/webhooks/{webhook['id']}")
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    await expect(page.get_by_role("region", name="Recent changes")).to_have_count(0)
