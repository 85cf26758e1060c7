"""The console's end-to-end fixtures: a real `storehooks serve` and `storehooks worker`
on the test's database and Redis, and Debian's Chromium driven by Playwright."""

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import free_port, run_cli
from tests.support.processes import Processes, answers_http, wait_until
from tests.support.receivers import Receiver

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_INSTALLED = os.path.exists(CHROMIUM)
# The flags a closed network needs: no background fetches that would hang the start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("STOREHOOKS_SCREENSHOTS")  # `make screenshots` sets docs/images

expect.set_options(timeout=15_000)


@dataclass
class Console:
    """A running service: its URL, an account with an all-scopes key, and an API client."""

    base_url: str
    database_url: str
    account_id: str
    api_key: str
    api: httpx.AsyncClient

    async def key(self, *scopes: str) -> str:
        """A further key of the account holding only `scopes`."""
        flags = [part for scope in scopes for part in ("--scope", scope)]
        result = await asyncio.to_thread(
            run_cli,
            "keys",
            "create",
            "--account",
            self.account_id,
            *flags,
            "--json",
            database_url=self.database_url,
        )
        assert result.returncode == 0, result.stderr
        key: str = json.loads(result.stdout)["api_key"]
        return key

    async def webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        body = {"name": "orders", "url": url, "http_method": "POST", "payload_type": "json"}
        response = await self.api.post("/webhooks", json={**body, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.api.get(path)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
def console_port() -> int:
    """The API's port, known before it starts (an identity provider registers its URL)."""
    return free_port()


@pytest.fixture
def console_settings() -> dict[str, str]:
    """Further STOREHOOKS_* settings of the service; a test module overrides this."""
    return {}


@pytest.fixture
def console_processes(
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    console_port: int,
    console_settings: dict[str, str],
) -> Iterator[str]:
    """API + worker as subprocesses, with short retries and private targets allowed."""
    port = console_port
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": database_url,
        "STOREHOOKS_REDIS_URL": redis_url,
        "STOREHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "STOREHOOKS_MAX_ATTEMPTS": "2",
        "STOREHOOKS_RETRY_BASE_SECONDS": "0.5",
        "STOREHOOKS_RETRY_MAX_DELAY_SECONDS": "1",
        "STOREHOOKS_DELIVERY_TIMEOUT_SECONDS": "5",
        "STOREHOOKS_WORKER_METRICS_PORT": "0",
        "STOREHOOKS_RATE_LIMIT_PER_SECOND": "0",
        **console_settings,
    }
    processes = Processes(environment, tmp_path)
    try:
        processes.storehooks("api", "serve", "--port", str(port))
        processes.storehooks("worker", "worker")
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_http(f"{base_url}/healthz"), 30, "the API did not start")
        yield base_url
    finally:
        for process in processes.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        processes.stop_all()


@pytest.fixture
async def console(console_processes: str, database_url: str) -> AsyncIterator[Console]:
    result = await asyncio.to_thread(
        run_cli, "accounts", "create", "Acme Games", "--json", database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    async with httpx.AsyncClient(base_url=console_processes, headers=headers) as api:
        yield Console(
            console_processes, database_url, created["account_id"], created["api_key"], api
        )


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium "
            "(or leave the console out: make test PYTEST_ARGS='--ignore=tests/console')"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, console: Console) -> AsyncIterator[Page]:
    """A fresh browser tab on the console; any uncaught script error fails the test."""
    context = await browser.new_context(
        base_url=console.base_url, viewport={"width": 1200, "height": 900}
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == [], errors


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/ui/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Web Hooks", level=1)).to_be_visible()
