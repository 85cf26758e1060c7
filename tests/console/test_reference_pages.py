"""/docs and /redoc in Debian's Chromium, served by a real `storehooks serve` (issue 14,
point 5): each page draws every operation of /openapi.json, with no script error and no
request leaving 127.0.0.1."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

# ReDoc's sidebar shows Redocly's logo from a CDN, whatever its options; the page's
# img-src refuses it, the logo hides itself, and the refusal is logged as an error.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class Watched:
    page: Page
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture
async def watched(browser: Browser, console_processes: str) -> AsyncIterator[Watched]:
    """A tab that records console errors and script errors, and records and stops any
    request to another origin."""
    context = await browser.new_context(base_url=console_processes)
    local = f"{console_processes}/"

    async def keep_local(route: Route) -> None:
        if route.request.url.startswith(local):
            await route.continue_()
        else:
            await route.abort()

    await context.route("**/*", keep_local)
    opened = await context.new_page()
    result = Watched(opened)
    errors, outside = result.errors, result.outside
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    yield result
    await context.close()


async def operation_count(base_url: str) -> int:
    async with httpx.AsyncClient(base_url=base_url) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    return sum(len(item) for item in paths.values())


async def test_swagger_ui_draws_every_operation(watched: Watched, console_processes: str) -> None:
    page = watched.page
    await page.goto("/docs")
    operations = page.locator(".opblock")
    await expect(operations).to_have_count(await operation_count(console_processes))
    post_events = page.locator(".opblock-post", has_text="/events")
    await expect(post_events.first).to_be_visible()
    await post_events.first.locator(".opblock-summary-control").click()
    await expect(page.get_by_text("Idempotency-Key").first).to_be_visible()
    assert watched.errors == []
    assert watched.outside == []


async def test_redoc_draws_every_operation(watched: Watched, console_processes: str) -> None:
    page = watched.page
    await page.goto("/redoc")
    operations = page.locator("[data-section-id^='operation/']")
    await expect(operations).to_have_count(await operation_count(console_processes))
    await expect(page.get_by_role("heading", name="Create Webhook").first).to_be_visible()
    assert [error for error in watched.errors if REDOC_LOGO not in error] == []
    assert set(watched.outside) <= {REDOC_LOGO}
