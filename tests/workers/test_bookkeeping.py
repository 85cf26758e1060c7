"""The database side of an attempt (`workers/bookkeeping.py`), batched: claims of many jobs
in one transaction, a delivery claimed twice, and outcomes that arrive after a webhook was
deleted. Deliveries come from the API with no worker running; the Bookkeeper is the one
the worker's own on_startup builds."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app import resources
from app.core.db import session_scope, utcnow
from app.core.delivery_states import Claim, Outcome
from app.core.enums import DeliveryKind, DeliveryStatus, ErrorClass
from app.core.models import Delivery, DeliveryAttempt
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.workers.conftest import post_purchase
from workers import resources as worker_resources
from workers.bookkeeping import Bookkeeper

FAILED_WITH_500 = Outcome(
    error_class=ErrorClass.HTTP_STATUS,
    status_code=500,
    error="The receiver answered HTTP 500; only 200 counts as success.",
    response_body="try later",
    duration_ms=12,
    retry_after=0.4,  # within the test settings' 0.5 s cap: the next delay is exactly 0.4 s
)
SUCCEEDED = Outcome(
    error_class=None,
    status_code=200,
    error=None,
    response_body="ok",
    duration_ms=7,
    retry_after=None,
)


@pytest.fixture
def bookkeeper(job_ctx: dict[str, Any]) -> Bookkeeper:
    found: Bookkeeper = worker_resources.of(job_ctx).bookkeeper
    return found


async def deliveries_of_one_purchase(tenant: Tenant, count: int) -> dict[str, dict[str, Any]]:
    """`count` webhooks subscribed to one purchase: its deliveries' ids -> their webhooks."""
    webhooks = {
        hook["id"]: hook
        for hook in [
            await tenant.subscribed_webhook(name=f"hook {n}", url=f"https://hooks.example.com/{n}")
            for n in range(count)
        ]
    }
    accepted = await tenant.event()
    assert accepted["deliveries"] == count
    params = {"event_id": accepted["id"], "limit": 200}
    listing = (await tenant.api.get("/deliveries", params=params)).json()
    assert len(listing["data"]) == count
    return {row["id"]: webhooks[row["webhook_id"]] for row in listing["data"]}


async def attempt_rows(tenant: Tenant) -> list[DeliveryAttempt]:
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        rows = await session.scalars(select(DeliveryAttempt))
        return list(rows.all())


async def delivery_row(tenant: Tenant, delivery_id: str) -> Delivery:
    async with session_scope(resources.of(tenant.app).sessionmaker) as session:
        found = await session.get(Delivery, delivery_id)
        assert found is not None
        return found


# --- claims -------------------------------------------------------------------------------


async def test_concurrent_claims_of_different_deliveries_all_get_their_first_attempt(
    tenant: Tenant, bookkeeper: Bookkeeper, settings: Settings
) -> None:
    webhooks = await deliveries_of_one_purchase(tenant, 12)
    ids = list(webhooks)
    before = utcnow()

    claims = await asyncio.gather(*(bookkeeper.claim(delivery_id) for delivery_id in ids))

    assert all(claim is not None for claim in claims), claims
    taken = [claim for claim in claims if claim is not None]
    assert [claim.delivery_id for claim in taken] == ids  # each caller its own delivery
    assert [claim.number for claim in taken] == [1] * len(ids)
    for claim in taken:
        webhook = webhooks[claim.delivery_id]
        assert claim.webhook_id == webhook["id"]
        assert claim.url == webhook["url"]
        assert claim.kind == DeliveryKind.EVENT
        assert claim.attempt_limit == settings.max_attempts

    rows = await attempt_rows(tenant)
    assert sorted((row.delivery_id, row.number) for row in rows) == [(i, 1) for i in sorted(ids)]
    assert all(row.status_code is None and row.error is None for row in rows)
    # One batch, one transaction: every row carries the same start time.
    assert len({row.started_at for row in rows}) == 1
    for delivery_id in ids:
        delivery = await delivery_row(tenant, delivery_id)
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempt_count == 1
        # Leased while in flight: the sweeper leaves it alone for the send and then some.
        assert delivery.next_attempt_at is not None
        lease = timedelta(seconds=settings.delivery_timeout_seconds + 30)
        assert before + lease <= delivery.next_attempt_at <= utcnow() + lease


async def test_one_delivery_claimed_twice_in_one_batch_yields_one_claim_and_one_none(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    first, second = list(await deliveries_of_one_purchase(tenant, 2))

    claims = await asyncio.gather(
        bookkeeper.claim(first), bookkeeper.claim(second), bookkeeper.claim(first)
    )

    assert isinstance(claims[0], Claim)
    assert (claims[0].delivery_id, claims[0].number) == (first, 1)
    assert isinstance(claims[1], Claim)
    assert (claims[1].delivery_id, claims[1].number) == (second, 1)
    assert claims[2] is None
    rows = await attempt_rows(tenant)
    assert sorted((row.delivery_id, row.number) for row in rows) == sorted(
        [(first, 1), (second, 1)]
    )
    assert (await delivery_row(tenant, first)).attempt_count == 1


async def test_a_delivery_whose_attempt_is_in_flight_is_not_claimed_again(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    await tenant.subscribed_webhook()
    delivery_id = await post_purchase(tenant)
    claim = await bookkeeper.claim(delivery_id)
    assert claim is not None
    assert claim.number == 1

    assert await bookkeeper.claim(delivery_id) is None  # a later batch: the lease holds it

    assert [(row.delivery_id, row.number) for row in await attempt_rows(tenant)] == [
        (delivery_id, 1)
    ]
    assert (await delivery_row(tenant, delivery_id)).attempt_count == 1


async def test_a_delivery_of_a_deleted_webhook_is_not_claimed(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await post_purchase(tenant)
    assert (await tenant.api.delete(f"/webhooks/{webhook['id']}")).status_code == 204

    assert await bookkeeper.claim(delivery_id) is None

    assert await attempt_rows(tenant) == []
    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "cancelled"
    assert delivery["attempt_count"] == 0


# --- records ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [FAILED_WITH_500, SUCCEEDED], ids=["failed", "succeeded"])
async def test_an_outcome_recorded_after_the_webhook_was_deleted_leaves_it_cancelled(
    tenant: Tenant, bookkeeper: Bookkeeper, outcome: Outcome
) -> None:
    webhook = await tenant.subscribed_webhook()
    delivery_id = await post_purchase(tenant)
    claim = await bookkeeper.claim(delivery_id)
    assert claim is not None
    # Deleted while the attempt is in flight: the API cancels the pending delivery.
    assert (await tenant.api.delete(f"/webhooks/{webhook['id']}")).status_code == 204
    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "cancelled"

    assert (await bookkeeper.record(claim, outcome)).retry_at is None

    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "cancelled"
    assert delivery["attempt_count"] == 1
    assert delivery["next_attempt_at"] is None
    assert delivery["last_status_code"] is None
    assert delivery["last_error"] == "The webhook was deleted."
    # The attempt's own outcome is still history worth keeping.
    [attempt] = delivery["attempts"]
    assert attempt["number"] == 1
    assert attempt["status_code"] == outcome.status_code
    assert attempt["response_body"] == outcome.response_body
    assert attempt["duration_ms"] == outcome.duration_ms


async def test_outcomes_recorded_in_one_batch_move_on_only_the_deliveries_still_pending(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    pending_hook = await tenant.subscribed_webhook(name="kept", url="https://hooks.example.com/a")
    deleted_hook = await tenant.subscribed_webhook(name="gone", url="https://hooks.example.com/b")
    accepted = await tenant.event()
    listing = (await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})).json()
    by_webhook = {row["webhook_id"]: row["id"] for row in listing["data"]}
    kept, gone = by_webhook[pending_hook["id"]], by_webhook[deleted_hook["id"]]
    kept_claim, gone_claim = await asyncio.gather(bookkeeper.claim(kept), bookkeeper.claim(gone))
    assert kept_claim is not None
    assert gone_claim is not None
    assert (await tenant.api.delete(f"/webhooks/{deleted_hook['id']}")).status_code == 204
    before = utcnow()

    recorded_kept, recorded_gone = await asyncio.gather(
        bookkeeper.record(kept_claim, FAILED_WITH_500), bookkeeper.record(gone_claim, SUCCEEDED)
    )
    next_kept, next_gone = recorded_kept.retry_at, recorded_gone.retry_at

    after = utcnow()
    assert next_gone is None
    assert isinstance(next_kept, datetime)
    assert before + timedelta(seconds=0.4) <= next_kept <= after + timedelta(seconds=0.4)
    retrying = await tenant.fetch(f"/deliveries/{kept}")
    assert retrying["status"] == "pending"
    assert retrying["attempt_count"] == 1
    assert retrying["last_status_code"] == 500
    assert datetime.fromisoformat(retrying["next_attempt_at"]) == next_kept
    assert [attempt["status_code"] for attempt in retrying["attempts"]] == [500]
    cancelled = await tenant.fetch(f"/deliveries/{gone}")
    assert cancelled["status"] == "cancelled"
    assert cancelled["completed_at"] is not None
    assert [attempt["status_code"] for attempt in cancelled["attempts"]] == [200]


async def test_a_second_record_of_the_same_attempt_does_not_move_the_delivery_again(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    await tenant.subscribed_webhook()
    delivery_id = await post_purchase(tenant)
    claim = await bookkeeper.claim(delivery_id)
    assert claim is not None
    assert (await bookkeeper.record(claim, SUCCEEDED)).retry_at is None
    assert (await tenant.fetch(f"/deliveries/{delivery_id}"))["status"] == "succeeded"

    # A late duplicate saying the attempt failed: the delivery is no longer pending.
    assert (await bookkeeper.record(claim, FAILED_WITH_500)).retry_at is None

    delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 200
    assert delivery["next_attempt_at"] is None


async def test_a_claim_after_a_failed_attempt_takes_the_next_number(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    await tenant.subscribed_webhook()
    delivery_id = await post_purchase(tenant)
    first = await bookkeeper.claim(delivery_id)
    assert first is not None
    assert (await bookkeeper.record(first, FAILED_WITH_500)).retry_at is not None

    # Due in 0.4 s, within the claim's early tolerance: the retry's job may come now.
    second = await bookkeeper.claim(delivery_id)

    assert second is not None
    assert (second.delivery_id, second.number) == (delivery_id, 2)
    rows = await attempt_rows(tenant)
    assert sorted((row.number, row.status_code) for row in rows) == [(1, 500), (2, None)]
    assert (await delivery_row(tenant, delivery_id)).attempt_count == 2


# --- the hand-off -------------------------------------------------------------------------


async def pending_purchases(tenant: Tenant, count: int) -> list[str]:
    """`count` purchases of app_42, one delivery each, oldest first."""
    return [await post_purchase(tenant, data={"order_id": f"o-{n}"}) for n in range(count)]


async def test_a_record_hands_the_freed_slot_to_the_webhooks_oldest_due_delivery(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    await tenant.subscribed_webhook(url="https://hooks.example.com/a", max_in_flight=2)
    first, second, third, fourth, fifth = await pending_purchases(tenant, 5)
    claimed = await asyncio.gather(bookkeeper.claim(first), bookkeeper.claim(second))
    assert [claim.delivery_id for claim in claimed if claim is not None] == [first, second]
    assert await bookkeeper.claim(fifth) is None  # both slots are taken

    recorded = await bookkeeper.record(claimed[0], SUCCEEDED)  # type: ignore[arg-type]

    # In the record's own transaction: the oldest due delivery, claimed (its attempt row
    # inserted, its lease taken), and no more than the one free slot.
    [handed] = recorded.next_claims
    assert (handed.delivery_id, handed.number) == (third, 1)
    row = await delivery_row(tenant, third)
    assert row.attempt_count == 1
    assert row.leased_until is not None and row.leased_until > utcnow()
    assert sorted((a.delivery_id, a.number) for a in await attempt_rows(tenant)) == [
        (first, 1),
        (second, 1),
        (third, 1),
    ]
    assert (await delivery_row(tenant, fourth)).attempt_count == 0

    # A failed attempt frees its slot too: its retry waits, the next delivery goes.
    recorded = await bookkeeper.record(claimed[1], FAILED_WITH_500)  # type: ignore[arg-type]
    assert recorded.retry_at is not None
    assert [claim.delivery_id for claim in recorded.next_claims] == [fourth]


async def test_a_record_hands_off_only_as_many_as_the_caller_has_room_for(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    await tenant.subscribed_webhook(url="https://hooks.example.com/a", max_in_flight=5)
    first, *others = await pending_purchases(tenant, 4)
    claim = await bookkeeper.claim(first)
    assert claim is not None
    rooms: list[int] = []

    def room(finishing: int) -> int:
        rooms.append(finishing)
        return 2  # the worker can take two attempts on, not the three that are due

    bookkeeper.room = room
    recorded = await bookkeeper.record(claim, SUCCEEDED)

    assert rooms == [1]
    assert [claim.delivery_id for claim in recorded.next_claims] == others[:2]
    assert (await delivery_row(tenant, others[2])).attempt_count == 0


async def test_a_record_hands_off_nothing_of_a_webhook_turned_off(
    tenant: Tenant, bookkeeper: Bookkeeper
) -> None:
    hook = await tenant.subscribed_webhook(url="https://hooks.example.com/a", max_in_flight=2)
    first, second = await pending_purchases(tenant, 2)
    claim = await bookkeeper.claim(first)
    assert claim is not None
    patched = await tenant.api.patch(f"/webhooks/{hook['id']}", json={"active": False})
    assert patched.status_code == 200

    recorded = await bookkeeper.record(claim, SUCCEEDED)

    assert recorded.next_claims == ()
    assert (await delivery_row(tenant, second)).attempt_count == 0
