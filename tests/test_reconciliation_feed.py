"""The reconciliation feed, `GET /events?delivery_status=&webhook_id=&since=&until=`
(docs/api.md#the-reconciliation-feed; the recipe, docs/receiving.md#catching-up-after-downtime).

Deliveries are put in their states straight in the database, as a worker would leave
them: no worker runs here, so every delivery stays `pending` until a test moves it.
"""

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from app import resources
from app.core.db import utcnow
from app.core.models import Delivery, Event
from tests.conftest import ROOT, WEBHOOK_BODY, Tenant, free_port, run_cli
from tests.support.databases import fetch_all
from tests.support.problems import error_locs
from tests.support.processes import Processes, answers_http, wait_until

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
# A file of docs/receiving.md, as tests/workers/test_receiving_guide.py reads them.
GUIDE_FILE = re.compile(r"^<!-- file: (\S+) -->\n```\w+\n(.*?)^```$", re.DOTALL | re.MULTILINE)
MICROSECOND = timedelta(microseconds=1)
EVENT_ID = "evt_" + "0" * 32


# --- helpers -------------------------------------------------------------------------


async def set_status(tenant: Tenant, event_id: str, webhook_id: str, status: str) -> None:
    """Leaves the event's delivery to `webhook_id` in `status`, as a worker would."""
    finished = status != "pending"
    async with resources.of(tenant.app).engine.begin() as conn:
        result = await conn.execute(
            update(Delivery)
            .where(Delivery.event_id == event_id, Delivery.webhook_id == webhook_id)
            .values(
                status=status,
                next_attempt_at=None if finished else utcnow(),
                completed_at=utcnow() if finished else None,
            )
        )
        assert result.rowcount == 1


async def set_received(tenant: Tenant, event_id: str, created_at: datetime) -> None:
    """Moves the event's time of receipt (its `created_at`, what since and until bound)."""
    async with resources.of(tenant.app).engine.begin() as conn:
        result = await conn.execute(
            update(Event).where(Event.id == event_id).values(created_at=created_at)
        )
        assert result.rowcount == 1


async def page(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await tenant.api.get("/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"data", "next_cursor"}
    return body


async def listed(tenant: Tenant, **params: Any) -> list[str]:
    """The ids of one page of at most 200 events, which must be the whole list."""
    body = await page(tenant, limit=200, **params)
    assert body["next_cursor"] is None
    return [event["id"] for event in body["data"]]


async def walk(tenant: Tenant, between_pages: Any = None, **params: Any) -> list[list[str]]:
    """Every page of the list, `limit=2`; `between_pages()` runs after each but the last."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        body = await page(tenant, limit=2, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([event["id"] for event in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the walk does not end"
        if between_pages is not None:
            await between_pages()


def joined(pages: list[list[str]]) -> list[str]:
    return [event_id for one in pages for event_id in one]


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def failed_event(tenant: Tenant, webhook_id: str, **fields: Any) -> str:
    event_id: str = (await tenant.event(**fields))["id"]
    await set_status(tenant, event_id, webhook_id, "failed")
    return event_id


# --- delivery_status and webhook_id --------------------------------------------------


async def test_each_status_lists_exactly_the_events_with_such_a_delivery_once(
    tenant: Tenant,
) -> None:
    a = (await tenant.subscribed_webhook(name="a"))["id"]
    b = (await tenant.subscribed_webhook(name="b"))["id"]
    states = {  # each event's delivery to a, and to b
        "mixed": ("failed", "succeeded"),
        "waiting": ("pending", "pending"),
        "done": ("succeeded", "succeeded"),
        "switched_off": ("cancelled", "failed"),
    }
    events: dict[str, str] = {}
    for name, (to_a, to_b) in states.items():
        events[name] = (await tenant.event())["id"]
        await set_status(tenant, events[name], a, to_a)
        await set_status(tenant, events[name], b, to_b)
    unmatched = (await tenant.event(app_id="app_7"))["id"]  # no delivery at all
    ping = await tenant.api.post(f"/webhooks/{a}/test")  # a delivery with no event
    assert ping.status_code == 202, ping.text

    def newest_first(*names: str) -> list[str]:
        return sorted((events[name] for name in names), reverse=True)

    assert await listed(tenant, delivery_status="failed") == newest_first("mixed", "switched_off")
    assert await listed(tenant, delivery_status="succeeded") == newest_first("mixed", "done")
    assert await listed(tenant, delivery_status="pending") == newest_first("waiting")
    assert await listed(tenant, delivery_status="cancelled") == newest_first("switched_off")
    everything = await listed(tenant)
    assert everything == [unmatched, *newest_first(*states)]


async def test_webhook_id_narrows_the_status_to_that_webhooks_deliveries(tenant: Tenant) -> None:
    a = (await tenant.subscribed_webhook(name="a"))["id"]
    b = (await tenant.subscribed_webhook(name="b"))["id"]
    only_a = (await tenant.subscribed_webhook(name="c", action={"app_id": "app_9"}))["id"]
    failed_to_a = (await tenant.event())["id"]
    await set_status(tenant, failed_to_a, a, "failed")
    failed_to_b = (await tenant.event())["id"]
    await set_status(tenant, failed_to_b, b, "failed")
    elsewhere = (await tenant.event(app_id="app_9"))["id"]  # to only_a, pending

    assert await listed(tenant, webhook_id=a, delivery_status="failed") == [failed_to_a]
    assert await listed(tenant, webhook_id=b, delivery_status="failed") == [failed_to_b]
    assert await listed(tenant, webhook_id=a, delivery_status="pending") == [failed_to_b]
    # webhook_id alone: every event with a delivery to that webhook, whatever its state.
    assert await listed(tenant, webhook_id=a) == [failed_to_b, failed_to_a]
    assert await listed(tenant, webhook_id=only_a) == [elsewhere]
    assert await listed(tenant, webhook_id=f"{a}x") == []
    # A deleted webhook's history stays readable, as under GET /deliveries.
    assert (await tenant.api.delete(f"/webhooks/{b}")).status_code == 204
    assert await listed(tenant, webhook_id=b, delivery_status="failed") == [failed_to_b]


async def test_another_accounts_events_never_appear(tenant: Tenant, other: Tenant) -> None:
    mine = (await tenant.subscribed_webhook())["id"]
    theirs = (await other.subscribed_webhook())["id"]
    my_event = await failed_event(tenant, mine)
    their_event = await failed_event(other, theirs)
    since = rfc3339(utcnow() - timedelta(hours=1))

    for params in (
        {"delivery_status": "failed"},
        {"delivery_status": "failed", "since": since},
        {"since": since},
        {"until": rfc3339(utcnow() + timedelta(hours=1))},
        {"webhook_id": mine},
    ):
        assert await listed(tenant, **params) == [my_event], params
        theirs_too = {**params, "webhook_id": theirs} if "webhook_id" in params else params
        assert await listed(other, **theirs_too) == [their_event], params
    # Filtering by the other account's webhook finds nothing, and names nothing of it.
    assert await listed(tenant, webhook_id=theirs) == []
    assert await listed(tenant, webhook_id=theirs, delivery_status="failed") == []
    assert await listed(other, webhook_id=theirs, delivery_status="failed") == [their_event]


# --- since and until -----------------------------------------------------------------


async def test_since_is_inclusive_until_exclusive_to_the_microsecond(tenant: Tenant) -> None:
    webhook = (await tenant.subscribed_webhook())["id"]
    offsets = [-MICROSECOND, timedelta(0), MICROSECOND, timedelta(hours=1) - MICROSECOND]
    offsets.append(timedelta(hours=1))
    received = {}
    for offset in offsets:  # received in id order too, as the API receives them
        event_id = await failed_event(tenant, webhook)
        await set_received(tenant, event_id, T0 + offset)
        received[offset] = event_id
    before, at, just_after, last_inside, at_until = (received[offset] for offset in offsets)
    until = T0 + timedelta(hours=1)

    assert await listed(tenant, since=rfc3339(T0)) == [at, just_after, last_inside, at_until]
    assert await listed(tenant, until=rfc3339(T0)) == [before]
    window = {"since": rfc3339(T0), "until": rfc3339(until)}
    assert await listed(tenant, **window) == [at, just_after, last_inside]
    assert await listed(tenant, delivery_status="failed", **window) == [at, just_after, last_inside]
    assert await listed(tenant, delivery_status="pending", **window) == []
    # until alone: newest first, like the plain list.
    assert await listed(tenant, until=rfc3339(until)) == [last_inside, just_after, at, before]
    # An offset is a time like any other: 12:00+02:00 is 10:00Z.
    assert await listed(tenant, since="2026-11-28T12:00:00+02:00") == await listed(
        tenant, since=rfc3339(T0)
    )
    # A window of one microsecond holds exactly what was received in it.
    assert await listed(tenant, since=rfc3339(T0), until=rfc3339(T0 + MICROSECOND)) == [at]


async def test_since_lists_oldest_first_by_receipt(tenant: Tenant) -> None:
    """The order is the time of receipt, then the id: two events received in the same
    microsecond (a batch of POST /events shares one) come in id order."""
    webhook = (await tenant.subscribed_webhook())["id"]
    ids = [await failed_event(tenant, webhook) for _ in range(4)]
    times = [T0 + timedelta(seconds=2), T0, T0 + timedelta(seconds=1), T0]
    for event_id, moment in zip(ids, times, strict=True):
        await set_received(tenant, event_id, moment)
    oldest_first = [ids[1], ids[3], ids[2], ids[0]]

    assert await listed(tenant, since=rfc3339(T0)) == oldest_first
    assert joined(await walk(tenant, since=rfc3339(T0))) == oldest_first
    until = rfc3339(T0 + timedelta(days=1))
    assert await listed(tenant, until=until) == oldest_first[::-1]
    assert joined(await walk(tenant, until=until)) == oldest_first[::-1]


# --- walking the feed ----------------------------------------------------------------


async def test_walking_forward_sees_every_event_once_while_new_ones_arrive(
    tenant: Tenant, other: Tenant
) -> None:
    webhook = (await tenant.subscribed_webhook())["id"]
    theirs = (await other.subscribed_webhook())["id"]
    since = utcnow()
    failed = [await failed_event(tenant, webhook) for _ in range(5)]
    for _ in range(2):
        await set_status(tenant, (await tenant.event())["id"], webhook, "succeeded")

    async def more_arrive() -> None:
        failed.append(await failed_event(tenant, webhook))
        await set_status(tenant, (await tenant.event())["id"], webhook, "succeeded")
        await failed_event(other, theirs)

    pages = await walk(
        tenant, more_arrive, delivery_status="failed", since=rfc3339(since), webhook_id=webhook
    )

    walked = joined(pages)
    assert walked == failed  # oldest first, every one, none twice
    assert len(failed) == 8  # 5 at the start, and one after each of the first 3 pages
    assert all(len(one) == 2 for one in pages[:-1])
    # Walking again from the same since gives the same events.
    assert await listed(tenant, delivery_status="failed", since=rfc3339(since)) == failed


async def test_walking_back_from_until_is_not_disturbed_by_new_events(tenant: Tenant) -> None:
    webhook = (await tenant.subscribed_webhook())["id"]
    failed = [await failed_event(tenant, webhook) for _ in range(5)]
    until = utcnow()
    arrived: list[str] = []

    async def more_arrive() -> None:
        arrived.append(await failed_event(tenant, webhook))

    pages = await walk(tenant, more_arrive, delivery_status="failed", until=rfc3339(until))

    assert joined(pages) == failed[::-1]
    assert len(arrived) == 2
    assert await listed(tenant, delivery_status="failed") == [*arrived[::-1], *failed[::-1]]


async def test_a_cursor_is_refused_by_the_list_in_the_other_order(tenant: Tenant) -> None:
    """A client that drops `since` between pages would walk back over what it has seen."""
    for _ in range(3):
        await tenant.event()
    since = rfc3339(utcnow() - timedelta(hours=1))
    until = rfc3339(utcnow() + timedelta(hours=1))
    forward = (await page(tenant, limit=1, since=since))["next_cursor"]
    back_in_time = (await page(tenant, limit=1, until=until))["next_cursor"]
    by_id = (await page(tenant, limit=1))["next_cursor"]
    assert forward and back_in_time and by_id

    for cursor, params in (
        (forward, {}),
        (forward, {"until": until}),
        (back_in_time, {}),
        (back_in_time, {"since": since}),
        (by_id, {"since": since}),
        (by_id, {"until": until}),
    ):
        response = await tenant.api.get("/events", params={"cursor": cursor, **params})
        assert error_locs(response) == [["query", "cursor"]], params
    # With the query that gave it out, each goes on.
    for cursor, params in ((forward, {"since": since}), (back_in_time, {"until": until})):
        assert len((await page(tenant, cursor=cursor, **params))["data"]) == 2
    assert len((await page(tenant, cursor=by_id))["data"]) == 2


@pytest.mark.parametrize(
    "text",
    [
        f"asc|0001-01-01T00:00:00+01:00|{EVENT_ID}",
        f"asc|2026-11-28T10:00:00|{EVENT_ID}",
        f"asc|yesterday|{EVENT_ID}",
        f"up|2026-11-28T10:00:00+00:00|{EVENT_ID}",
        "asc|2026-11-28T10:00:00+00:00|evt_1",
        f"asc|2026-11-28T10:00:00+00:00|{EVENT_ID}|more",
    ],
    ids=["before-year-1-in-utc", "naive", "not-a-time", "no-direction", "not-an-id", "extra"],
)
async def test_a_forged_cursor_is_422_naming_cursor(tenant: Tenant, text: str) -> None:
    await tenant.event()
    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    since = rfc3339(T0)
    response = await tenant.api.get("/events", params={"cursor": cursor, "since": since})
    assert error_locs(response) == [["query", "cursor"]]


# --- the recipe of docs/receiving.md -----------------------------------------------------


async def test_the_feed_then_recover_puts_back_what_the_feed_listed(tenant: Tenant) -> None:
    """Catching up after downtime: the failed events of the webhook since the outage,
    then `recover` with the same `since`; afterwards the feed is empty, every one of them
    pending again."""
    webhook = (await tenant.subscribed_webhook())["id"]
    await set_status(tenant, (await tenant.event())["id"], webhook, "succeeded")
    outage = utcnow()
    missed = [await failed_event(tenant, webhook) for _ in range(3)]
    feed = {"delivery_status": "failed", "webhook_id": webhook, "since": rfc3339(outage)}

    assert joined(await walk(tenant, **feed)) == missed
    response = await tenant.api.post(
        f"/webhooks/{webhook}/recover", json={"since": rfc3339(outage), "until": None}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"deliveries": 3}

    assert await listed(tenant, **feed) == []
    assert await listed(tenant, **{**feed, "delivery_status": "pending"}) == missed


async def test_the_guides_catch_up_script_runs_as_written(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """docs/receiving.md's catch_up.py against a served API: over two pages of the feed
    it handles exactly the failed events since SINCE, oldest first, then recovers them."""
    guide = (ROOT / "docs" / "receiving.md").read_text("utf-8")
    script = tmp_path / "catch_up.py"
    script.write_text(dict(GUIDE_FILE.findall(guide))["catch_up.py"], "utf-8")
    account = run_cli("accounts", "create", "Catching up", "--json", database_url=database_url)
    assert account.returncode == 0, account.stderr
    key = json.loads(account.stdout)["api_key"]
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": database_url,
        "STOREHOOKS_REDIS_URL": redis_url,
    }
    processes = Processes(environment, tmp_path)
    try:
        port = free_port()
        processes.storehooks("api", "serve", "--port", str(port))
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_http(f"{api}/healthz"), 30, "the API did not start")
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            webhook, since, missed = await _an_outage(client, database_url)
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(script)],
            env={
                **os.environ,
                "STOREHOOKS_URL": api,
                "STOREHOOKS_KEY": key,
                "WEBHOOK_ID": webhook,
                "SINCE": rfc3339(since),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        processes.stop_all()

    assert result.returncode == 0, result.stderr
    *handled, last = result.stdout.splitlines()
    assert [json.loads(line)["id"] for line in handled] == missed
    assert last == f"recovered {len(missed)} deliveries"
    rows = await fetch_all(
        database_url, "SELECT event_id, status FROM deliveries WHERE webhook_id = :w", w=webhook
    )
    statuses = dict(rows)
    assert {statuses[event_id] for event_id in missed} == {"pending"}


async def _an_outage(
    client: httpx.AsyncClient, database_url: str
) -> tuple[str, datetime, list[str]]:
    """A webhook whose endpoint was down: one event delivered before `since`, then 201
    events whose deliveries failed (more than a page of 200) and one still pending."""
    created = await client.post("/webhooks", json=WEBHOOK_BODY)
    assert created.status_code == 201, created.text
    webhook: str = created.json()["id"]
    binding = {"event_type": "purchase", "app_id": "app_42"}
    assert (await client.post(f"/webhooks/{webhook}/actions", json=binding)).status_code == 201

    async def post_event() -> str:
        accepted = await client.post("/events", json={"type": "purchase", "app_id": "app_42"})
        assert accepted.status_code == 202, accepted.text
        event_id: str = accepted.json()["id"]
        return event_id

    delivered = await post_event()
    since = utcnow()
    missed = [await post_event() for _ in range(201)]
    await post_event()  # still pending: not in the feed
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            for event_ids, status in (([delivered], "succeeded"), (missed, "failed")):
                await conn.execute(
                    update(Delivery)
                    .where(Delivery.event_id.in_(event_ids))
                    .values(status=status, next_attempt_at=None, completed_at=utcnow())
                )
    finally:
        await engine.dispose()
    return webhook, since, missed


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"delivery_status": "lost"}, ["query", "delivery_status"]),
        ({"delivery_status": "FAILED"}, ["query", "delivery_status"]),
        ({"since": "2026-11-28T10:00:00"}, ["query", "since"]),
        ({"until": "2026-11-28T10:00:00"}, ["query", "until"]),
        ({"since": "yesterday"}, ["query", "since"]),
        ({"since": "0001-01-01T00:00:00+01:00"}, ["query", "since"]),
        ({"since": "2026-11-28T10:00:00Z", "until": "2026-11-28T10:00:00Z"}, ["query", "until"]),
        ({"since": "2026-11-28T10:00:00Z", "until": "2026-11-28T09:00:00Z"}, ["query", "until"]),
        (
            {"since": "2026-11-28T12:00:00+02:00", "until": "2026-11-28T10:00:00Z"},
            ["query", "until"],
        ),
    ],
    ids=[
        "unknown-status",
        "status-in-capitals",
        "naive-since",
        "naive-until",
        "since-not-a-time",
        "since-before-year-1-in-utc",
        "until-equal-to-since",
        "until-before-since",
        "until-equal-to-since-in-another-offset",
    ],
)
async def test_bad_values_are_422_problems_naming_the_field(
    tenant: Tenant, params: dict[str, str], loc: list[str]
) -> None:
    await tenant.event()
    assert error_locs(await tenant.api.get("/events", params=params)) == [loc]
