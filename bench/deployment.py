"""One storehooks deployment under test: a database, an API process on it, an account
(made by `storehooks accounts create … --json`), and a JSON/POST webhook to the receiver
bound to purchases of `app_bench`; plus the events the benchmark posts to it."""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.load import LoadResult, MakeRequest, Request, closed_loop
from bench.services import Process, Services

APP_ID = "app_bench"


@dataclass
class Deployment:
    database_url: str
    api: Process
    account_id: str
    key: str
    webhook_id: str

    @property
    def events_url(self) -> str:
        return f"{self.api.url}/events"


async def deploy(
    services: Services, session: aiohttp.ClientSession, database_url: str, receiver_url: str
) -> Deployment:
    account, api = await asyncio.gather(
        services.create_account(database_url, "Bench"), services.start_api(session, database_url)
    )
    # One webhook takes every delivery here: the limit a single receiver gets by default
    # (max_in_flight 10) would measure that limit, not the engine; 100 is the most allowed.
    webhook_id = await add_webhook(
        session,
        api.url,
        account["api_key"],
        "bench",
        f"{receiver_url}/hook",
        APP_ID,
        max_in_flight=100,
    )
    return Deployment(database_url, api, account["account_id"], account["api_key"], webhook_id)


async def add_webhook(
    session: aiohttp.ClientSession,
    api_url: str,
    key: str,
    name: str,
    url: str,
    app_id: str | None,
    max_in_flight: int | None = 10,
) -> str:
    """A JSON/POST webhook to `url`, bound to purchases of `app_id` (to nothing if None),
    with `max_in_flight` (left out if None: the server's default)."""
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, object] = {
        "name": name,
        "url": url,
        "http_method": "POST",
        "payload_type": "json",
    }
    if max_in_flight is not None:
        body["max_in_flight"] = max_in_flight
    hook = await _created(session, f"{api_url}/webhooks", headers, body)
    if app_id is not None:
        await _created(
            session,
            f"{api_url}/webhooks/{hook['id']}/actions",
            headers,
            {"event_type": "purchase", "app_id": app_id},
        )
    return hook["id"]


async def webhook_of(
    session: aiohttp.ClientSession, api_url: str, key: str, webhook_id: str
) -> dict[str, Any]:
    """GET /webhooks/{id}: the webhook as the API has it."""
    headers = {"Authorization": f"Bearer {key}"}
    async with session.get(f"{api_url}/webhooks/{webhook_id}", headers=headers) as response:
        response.raise_for_status()
        found: dict[str, Any] = await response.json()
        return found


async def _created(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: object
) -> dict[str, str]:
    async with session.post(url, json=body, headers=headers) as response:
        document = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(f"POST {url} answered {response.status}: {document}")
        created: dict[str, str] = document
        return created


def event_requests(key: str, tag: str = "e", app_ids: Sequence[str] = (APP_ID,)) -> MakeRequest:
    """POST /events bodies for purchases, each with an order id of its own; event
    `number` is of app `app_ids[number % len(app_ids)]` (spread evenly over them)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def make(number: int) -> Request:
        body = {
            "type": "purchase",
            "app_id": app_ids[number % len(app_ids)],
            "sku_id": "gems_100",
            "data": {"order_id": f"{tag}-{number:08d}", "amount": "4.99", "currency": "USD"},
        }
        return json.dumps(body, separators=(",", ":")).encode(), headers

    return make


async def post_events(
    session: aiohttp.ClientSession,
    url: str,
    make: MakeRequest,
    total: int,
    concurrency: int = 50,
) -> LoadResult:
    result = await closed_loop(session, url, make, total, concurrency, 202)
    if result.errors:
        raise RuntimeError(
            f"{len(result.errors)} of {total} POST /events failed, e.g. {result.errors[0]}"
        )
    return result
