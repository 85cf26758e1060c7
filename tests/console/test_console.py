"""The web console at /ui, in Debian's Chromium, against a real API, worker, Redis and
receiver (docs/api.md; issue 7). Each test does what a merchant does and checks what the
API then holds and what the receiver got."""

import asyncio
import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.console.conftest import SCREENSHOTS, Console, sign_in
from tests.support.receivers import Answer, Receiver

READ_ONLY = ("webhooks:read", "actions:read", "deliveries:read")


async def wait_for_deliveries(
    console: Console, webhook_id: str, status: str, count: int = 1
) -> list[dict[str, Any]]:
    """The webhook's deliveries once `count` of them have `status`."""
    for _ in range(300):
        listed = (await console.get(f"/deliveries?webhook_id={webhook_id}"))["data"]
        if sum(delivery["status"] == status for delivery in listed) >= count:
            return [delivery for delivery in listed if delivery["status"] == status]
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {count} {status} deliveries of {webhook_id}: {listed}")


async def open_new_webhook(page: Page, console: Console, url: str) -> dict[str, Any]:
    """Creates a webhook "orders" with the API, signs in and opens its detail page."""
    webhook = await console.webhook(url)
    await sign_in(page, console.api_key)
    await page.get_by_role("link", name="orders").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    return webhook


async def test_sign_in_keeps_the_key_in_the_tab_only(page: Page, console: Console) -> None:
    await page.goto("/ui/")
    await page.get_by_label("API key").fill("key_nope.nope")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "That API key is not valid, or it has been revoked."
    )

    await sign_in(page, console.api_key)
    assert console.api_key not in page.url
    assert await page.evaluate("sessionStorage.getItem('storehooks.apiKey')") == console.api_key
    assert await page.evaluate("localStorage.length") == 0
    await expect(page.get_by_text(console.account_id)).to_be_visible()

    await page.reload()  # the same tab keeps the session
    await expect(page.get_by_role("heading", name="Web Hooks", exact=True)).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_add_a_web_hook_with_a_field_error_then_edit_it(
    page: Page, console: Console, receiver: Receiver
) -> None:
    await sign_in(page, console.api_key)
    await page.get_by_role("button", name="Add Web Hook").click()
    await page.get_by_label("Name").fill("orders")
    await page.get_by_label("URI End Point").fill("not a url")
    await page.get_by_label("HTTP Method to use").select_option("PUT")
    await page.get_by_label("Content Payload Type").select_option("xml")
    await page.get_by_role("button", name="Save").click()

    url_field = page.get_by_label("URI End Point")
    await expect(url_field).to_have_attribute("aria-invalid", "true")
    await expect(url_field).to_have_accessible_description(
        "http or https; with https the receiver’s certificate must be valid. "
        "must be an absolute http or https URL"
    )
    await expect(page.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")
    assert (await console.get("/webhooks"))["data"] == []

    await url_field.fill(receiver.url)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    [created] = (await console.get("/webhooks"))["data"]
    assert (created["name"], created["url"], created["http_method"], created["payload_type"]) == (
        "orders",
        receiver.url,
        "PUT",
        "xml",
    )
    assert created["active"] is True

    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Name").fill("orders v2")
    await page.get_by_label("Content Payload Type").select_option("form")
    await page.get_by_label("Active").uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="orders v2", level=1)).to_be_visible()
    await expect(page.get_by_text("Inactive · turned off")).to_be_visible()
    edited = await console.get(f"/webhooks/{created['id']}")
    assert (edited["name"], edited["payload_type"], edited["http_method"]) == (
        "orders v2",
        "form",
        "PUT",
    )
    assert (edited["active"], edited["disabled_reason"]) == (False, "manual")


async def test_the_delivery_policies_in_the_form(
    page: Page, console: Console, receiver: Receiver
) -> None:
    webhook = await open_new_webhook(page, console, receiver.url)
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_text("Delivery policies").click()
    await page.get_by_label("Answers that count as delivered").select_option("2xx")
    await page.get_by_label("Ordered").check()
    await page.get_by_label("At most in flight").fill("101")
    await page.get_by_role("button", name="Save").click()
    limit = page.get_by_label("At most in flight")
    await expect(limit).to_have_attribute("aria-invalid", "true")
    assert (await console.get(f"/webhooks/{webhook['id']}"))["max_in_flight"] == 10

    await limit.fill("3")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("in event order per ordering key")).to_be_visible()
    stored = await console.get(f"/webhooks/{webhook['id']}")
    assert (stored["success_statuses"], stored["ordered"], stored["max_in_flight"]) == (
        "2xx",
        True,
        3,
    )


async def test_an_action_then_an_event_and_its_delivery_appears(
    page: Page, console: Console, receiver: Receiver
) -> None:
    webhook = await open_new_webhook(page, console, receiver.url)

    await page.get_by_label("Event").select_option("purchase")
    await page.get_by_label("App ID").fill("app_42")
    await page.get_by_role("button", name="Add action").click()
    actions = page.get_by_role("region", name="Actions")
    await expect(actions.get_by_role("cell", name="app_42")).to_be_visible()
    [action] = (await console.get(f"/webhooks/{webhook['id']}/actions"))["data"]
    assert (action["event_type"], action["app_id"], action["sku_id"]) == (
        "purchase",
        "app_42",
        None,
    )

    await page.get_by_label("App ID").fill("app_42")  # the same binding again: 409
    await page.get_by_role("button", name="Add action").click()
    await expect(actions.get_by_role("alert")).to_have_text(
        "This webhook already has an action for that event type, app and SKU."
    )

    response = await console.api.post("/events", json={"type": "purchase", "app_id": "app_42"})
    assert response.status_code == 202, response.text
    event_id = response.json()["id"]
    deliveries = page.get_by_role("region", name="Deliveries")
    row = deliveries.get_by_role("row").filter(has_text=event_id)
    await expect(row.get_by_text("succeeded")).to_be_visible()
    [received] = receiver.wait_for(1)
    assert json.loads(received.body)["payload"]["event_id"] == event_id

    await row.get_by_role("button", name="Attempts").click()
    attempts = deliveries.get_by_role("table", name="Attempts of delivery")
    await expect(attempts.get_by_role("cell", name="200", exact=True)).to_be_visible()
    await expect(attempts.get_by_role("cell", name="ok", exact=True)).to_be_visible()

    await page.get_by_role("link", name="‹ Web Hooks").click()
    listed = page.get_by_role("row").filter(has_text=receiver.url)
    await expect(listed).to_contain_text("1 succeeded · 0 failed · 0 pending")

    await actions_removed(page, console, webhook["id"])


async def actions_removed(page: Page, console: Console, webhook_id: str) -> None:
    await page.get_by_role("link", name="orders").click()
    await page.get_by_role("button", name="Remove action").click()
    await expect(page.get_by_text("No actions")).to_be_visible()
    assert (await console.get(f"/webhooks/{webhook_id}/actions"))["data"] == []


async def test_test_on_a_failing_receiver_turns_the_web_hook_inactive(
    page: Page, console: Console, receiver: Receiver
) -> None:
    receiver.default = Answer(500, b"boom")
    webhook = await open_new_webhook(page, console, receiver.url)

    await page.get_by_role("button", name="Test").click()
    await expect(page.get_by_role("status").filter(has_text="Test")).to_have_text(
        "Test failed: the receiver answered 500. The web hook is now inactive."
    )
    await expect(page.get_by_text("Inactive · test failed")).to_be_visible()
    await expect(page.get_by_role("button", name="Test")).to_be_disabled()
    [ping] = receiver.wait_for(1)
    assert json.loads(ping.body)["payload"]["type"] == "ping"
    stored = await console.get(f"/webhooks/{webhook['id']}")
    assert (stored["active"], stored["disabled_reason"]) == (False, "test_failed")


async def test_test_on_a_healthy_receiver_succeeds(
    page: Page, console: Console, receiver: Receiver
) -> None:
    webhook = await open_new_webhook(page, console, receiver.url)
    await page.get_by_role("button", name="Test").click()
    await expect(page.get_by_role("status").filter(has_text="Test")).to_have_text(
        "Test succeeded: the receiver answered 200."
    )
    assert (await console.get(f"/webhooks/{webhook['id']}"))["active"] is True


async def test_retry_sends_a_failed_delivery_again(
    page: Page, console: Console, receiver: Receiver
) -> None:
    receiver.answer(500, 500)  # both attempts of MAX_ATTEMPTS=2 fail, then 200
    webhook = await console.webhook(receiver.url)
    await console.api.post(
        f"/webhooks/{webhook['id']}/actions", json={"event_type": "purchase", "app_id": "app_42"}
    )
    await sign_in(page, console.api_key)
    await page.get_by_role("link", name="orders").click()
    await console.api.post("/events", json={"type": "purchase", "app_id": "app_42"})

    deliveries = page.get_by_role("region", name="Deliveries")
    row = deliveries.get_by_role("row").nth(1)
    await expect(row.get_by_text("failed")).to_be_visible()
    await row.get_by_role("button", name="Attempts").click()
    attempts = deliveries.get_by_role("table", name="Attempts of delivery")
    await expect(attempts.get_by_role("cell", name="http_status", exact=True)).to_have_count(2)
    await row.get_by_role("button", name="Retry").click()
    await expect(row.get_by_text("succeeded")).to_be_visible()
    assert len(receiver.wait_for(3)) == 3
    [delivery] = await wait_for_deliveries(console, webhook["id"], "succeeded")
    assert delivery["attempt_count"] == 3  # two failed, then the retry's first


async def test_delete_asks_first(page: Page, console: Console, receiver: Receiver) -> None:
    webhook = await console.webhook(receiver.url)
    await sign_in(page, console.api_key)
    row = page.get_by_role("row").filter(has_text=receiver.url)

    await row.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete “orders”?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert (await console.api.get(f"/webhooks/{webhook['id']}")).status_code == 200

    await row.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(row).to_have_count(0)
    assert (await console.api.get(f"/webhooks/{webhook['id']}")).status_code == 404


async def test_a_read_only_key_sees_no_buttons_it_may_not_use(
    page: Page, console: Console, receiver: Receiver
) -> None:
    receiver.default = Answer(500)
    webhook = await console.webhook(receiver.url)
    await console.api.post(
        f"/webhooks/{webhook['id']}/actions", json={"event_type": "purchase", "app_id": "app_42"}
    )
    await console.api.post("/events", json={"type": "purchase", "app_id": "app_42"})
    await wait_for_deliveries(console, webhook["id"], "failed")

    await sign_in(page, await console.key(*READ_ONLY))
    row = page.get_by_role("row").filter(has_text=receiver.url)
    await expect(row).to_contain_text("0 succeeded · 1 failed · 0 pending")
    await expect(page.get_by_role("button", name="Add Web Hook")).to_have_count(0)
    await expect(row.get_by_role("link", name="Edit")).to_have_count(0)
    await expect(row.get_by_role("button", name="Delete")).to_have_count(0)

    await page.get_by_role("link", name="orders").click()
    deliveries = page.get_by_role("region", name="Deliveries")
    await expect(deliveries.get_by_text("failed", exact=True)).to_be_visible()
    await expect(page.get_by_role("cell", name="app_42")).to_be_visible()
    for hidden in ("Test", "Retry", "Add action", "Remove action", "Reveal", "Rotate"):
        await expect(page.get_by_role("button", name=hidden)).to_have_count(0)
    await expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    await expect(page.get_by_role("heading", name="Signing secret")).to_have_count(0)


async def test_the_secret_is_hidden_until_revealed_and_rotates(
    page: Page, console: Console, receiver: Receiver
) -> None:
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    webhook = await open_new_webhook(page, console, receiver.url)

    secret = page.locator("#secret")
    await expect(secret).to_have_text("whsec_••••••••••••")
    await page.get_by_role("button", name="Reveal").click()
    await expect(secret).to_have_text(webhook["secret"])
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_text("Secret copied.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == webhook["secret"]

    await page.get_by_role("button", name="Rotate").click()
    await page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    await expect(secret).not_to_have_text(webhook["secret"])
    rotated = (await console.get(f"/webhooks/{webhook['id']}/secret"))["secret"]
    assert rotated != webhook["secret"]
    await expect(secret).to_have_text(rotated)


async def test_an_ed25519_web_hook_shows_its_public_key_and_never_a_private_one(
    page: Page, console: Console, receiver: Receiver
) -> None:
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_in(page, console.api_key)
    await page.get_by_role("button", name="Add Web Hook").click()
    await page.get_by_label("Name").fill("orders")
    await page.get_by_label("URI End Point").fill(receiver.url)
    await page.get_by_label("Signature scheme").select_option("ed25519")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    [created] = (await console.get("/webhooks"))["data"]
    assert created["signature_scheme"] == "ed25519"

    key = page.locator("#public-key")
    await expect(key).to_have_text(created["public_key"])
    await expect(page.get_by_text("Ed25519 (v1a), verified with the public key")).to_be_visible()
    await expect(page.get_by_role("heading", name="Signing secret")).to_have_count(0)
    await expect(page.get_by_role("button", name="Reveal")).to_have_count(0)
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_text("Public key copied.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == created["public_key"]

    await page.get_by_role("button", name="Rotate").click()
    await page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    await expect(key).not_to_have_text(created["public_key"])
    rotated = (await console.get(f"/webhooks/{created['id']}"))["public_key"]
    await expect(key).to_have_text(rotated)
    assert "whsk_" not in await page.content()

    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Signature scheme")).to_have_value("ed25519")
    await page.get_by_label("Signature scheme").select_option("hmac-sha256")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="Signing secret")).to_be_visible()
    await expect(page.locator("#public-key")).to_have_count(0)
    await page.get_by_role("button", name="Reveal").click()
    secret = (await console.get(f"/webhooks/{created['id']}/secret"))["secret"]
    await expect(page.locator("#secret")).to_have_text(secret)
    assert secret.startswith("whsec_")


async def test_a_phone_screen_and_the_keyboard_are_enough(
    page: Page, console: Console, receiver: Receiver
) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto("/ui/")
    await expect(page.get_by_label("API key")).to_be_focused()  # once config.json is read
    await page.keyboard.type(console.api_key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Web Hooks", exact=True)).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360

    await page.keyboard.press("Tab")
    while not await page.evaluate("document.activeElement.textContent === 'Add Web Hook'"):
        await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Add Web Hook")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Name")).to_be_focused()
    await page.keyboard.type("orders")
    await page.keyboard.press("Tab")
    await page.keyboard.type(receiver.url)
    await page.keyboard.press("Enter")  # submits the form
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert [w["url"] for w in (await console.get("/webhooks"))["data"]] == [receiver.url]


async def test_screenshots_of_the_list_and_a_detail_page(
    page: Page, console: Console, tmp_path: Path
) -> None:
    """The pictures in the README, of a realistic account (`make screenshots` keeps them)."""
    with Receiver() as healthy, Receiver() as dead:
        dead.default = Answer(503, b"upstream unavailable")
        orders = await console.webhook(healthy.url, name="orders")
        await console.webhook(
            healthy.url, name="subscriptions", http_method="PUT", payload_type="xml"
        )
        legacy = await console.webhook(dead.url, name="legacy-crm", payload_type="form")
        for webhook, app_id in ((orders, "app_42"), (legacy, "app_42")):
            await console.api.post(
                f"/webhooks/{webhook['id']}/actions",
                json={"event_type": "purchase", "app_id": app_id},
            )
        for number in range(3):
            await console.api.post(
                "/events",
                json={"type": "purchase", "app_id": "app_42", "data": {"order_id": f"o-{number}"}},
            )
        await wait_for_deliveries(console, legacy["id"], "failed", count=3)
        await console.api.post(f"/webhooks/{legacy['id']}/test")
        await sign_in(page, console.api_key)
        legacy_row = page.get_by_role("row").filter(has_text="legacy-crm")
        await expect(legacy_row).to_contain_text("Inactive · test failed")
        await expect(legacy_row).to_contain_text("0 succeeded · 4 failed · 0 pending")
        directory = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        await page.screenshot(path=directory / "console-list.png")

        await page.get_by_role("link", name="orders").click()
        deliveries = page.get_by_role("region", name="Deliveries")
        await expect(deliveries.get_by_text("succeeded")).to_have_count(3)
        await deliveries.get_by_role("button", name="Attempts").first.click()
        await expect(deliveries.get_by_role("table", name="Attempts of delivery")).to_be_visible()
        await page.screenshot(path=directory / "console-detail.png", full_page=True)
        assert (directory / "console-list.png").stat().st_size > 10_000


async def test_the_list_shows_the_operations_web_hooks_and_their_state(
    page: Page, console: Console, receiver: Receiver
) -> None:
    body = {"http_method": "POST", "payload_type": "json"}
    for name, url in (("pager", "https://ops.example.com/pager"), ("broken", receiver.url)):
        response = await console.api.post(
            "/operations-webhooks", json={**body, "name": name, "url": url}
        )
        assert response.status_code == 201, response.text
        broken = response.json()
    receiver.default = Answer(500)
    ping = await console.api.post(f"/operations-webhooks/{broken['id']}/test")
    assert ping.status_code == 202, ping.text
    await wait_for_deliveries(console, broken["id"], "failed")
    await console.webhook("https://hooks.example.com/orders")

    await sign_in(page, await console.key(*READ_ONLY))

    section = page.get_by_role("region", name="Operations Web Hooks")
    await expect(section.get_by_role("row")).to_have_count(3)  # the header and two
    pager = section.get_by_role("row").filter(has_text="pager")
    await expect(pager).to_contain_text("https://ops.example.com/pager")
    await expect(pager).to_contain_text("Active")
    await expect(section.get_by_role("row").filter(has_text="broken")).to_contain_text(
        "Inactive · test failed"
    )
    hooks = page.get_by_role("table", name="Web hooks of this account", exact=True)
    await expect(hooks.get_by_role("row")).to_have_count(2)  # the operations ones are apart
    await expect(hooks).to_contain_text("orders")
