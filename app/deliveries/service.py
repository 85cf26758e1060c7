"""Reading deliveries and their attempts; test pings, manual retries and recovery."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import queue
from app.core.db import utcnow
from app.core.enums import DeliveryKind, DeliveryStatus, ErrorClass
from app.core.ids import new_id
from app.core.models import Delivery, DeliveryAttempt, Webhook
from app.core.ordering import before
from app.core.unit_of_work import UnitOfWork
from app.errors import Conflict, Unprocessable
from app.pagination import PageParams, fetch_page
from app.tenancy import get_owned
from app.text import equals


async def get(session: AsyncSession, account_id: str, delivery_id: str) -> Delivery:
    return await get_owned(session, Delivery, account_id, delivery_id, "delivery")


async def attempts(session: AsyncSession, delivery: Delivery) -> Sequence[DeliveryAttempt]:
    statement = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery.id)
        .order_by(DeliveryAttempt.number)
    )
    return (await session.scalars(statement)).all()


async def waiting_for(session: AsyncSession, delivery: Delivery) -> str | None:
    """The earlier pending delivery of the same ordering key that holds this one back."""
    if delivery.status != DeliveryStatus.PENDING or delivery.ordering_key is None:
        return None
    webhook = await session.get(Webhook, delivery.webhook_id)
    if webhook is None or not webhook.ordered or delivery.ordered_at is None:
        return None
    earlier = before(delivery.webhook_id, delivery.ordering_key, delivery.ordered_at, delivery.id)
    found: str | None = await session.scalar(
        select(Delivery.id)
        .where(earlier, Delivery.status == DeliveryStatus.PENDING)
        .order_by(Delivery.ordered_at.desc(), Delivery.id.desc())
        .limit(1)
    )
    return found


async def list_page(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    *,
    webhook_id: str | None,
    event_id: str | None,
    status: DeliveryStatus | None,
    error_class: ErrorClass | None = None,
) -> tuple[Sequence[Delivery], str | None]:
    statement = select(Delivery).where(Delivery.account_id == account_id)
    if webhook_id is not None:
        statement = statement.where(equals(Delivery.webhook_id, webhook_id))
    if event_id is not None:
        statement = statement.where(equals(Delivery.event_id, event_id))
    if status is not None:
        statement = statement.where(Delivery.status == status)
    if error_class is not None:
        statement = statement.where(Delivery.last_error_class == error_class)
    return await fetch_page(session, statement, Delivery.id, params)


async def create_test(work: UnitOfWork[AsyncSession], webhook: Webhook) -> Delivery:
    """A ping to the webhook: one attempt, no retries (docs/api.md, Webhooks)."""
    session = work.transaction
    if not webhook.active:
        raise Conflict("The webhook is inactive; activate it before testing it.")
    now = utcnow()
    delivery = Delivery(
        id=new_id("dlv"),
        account_id=webhook.account_id,
        webhook_id=webhook.id,
        event_id=None,
        kind=DeliveryKind.TEST,
        attempt_limit=1,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    await session.flush()
    work.enqueue_after_commit(queue.Attempt(delivery.id))
    return delivery


async def retry(work: UnitOfWork[AsyncSession], delivery: Delivery, max_attempts: int) -> Delivery:
    """A failed or cancelled delivery goes back to pending with a fresh attempt budget."""
    session = work.transaction
    if delivery.status not in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
        raise Conflict(
            f"Only failed or cancelled deliveries can be retried; this one is {delivery.status}."
        )
    webhook = await session.get(Webhook, delivery.webhook_id)
    if webhook is None or not webhook.active or webhook.deleted_at is not None:
        raise Conflict("The delivery's webhook is inactive or deleted; nothing would be sent.")
    now = utcnow()
    budget = 1 if delivery.kind == DeliveryKind.TEST else max_attempts
    delivery.status = DeliveryStatus.PENDING
    delivery.attempt_limit = delivery.attempt_count + budget
    delivery.next_attempt_at = now
    delivery.completed_at = None
    delivery.updated_at = now
    await session.flush()
    work.enqueue_after_commit(queue.Attempt(delivery.id, delivery.attempt_count + 1))
    return delivery


RECOVERY_WINDOW = timedelta(days=14)
RECOVERY_LIMIT = 10_000
_RECOVERY_CHUNK = 500


async def recover(
    work: UnitOfWork[AsyncSession],
    webhook: Webhook,
    since: datetime,
    until: datetime | None,
    max_attempts: int,
) -> int:
    """Puts the webhook's failed event deliveries created in [since, until) back to
    pending with a fresh budget, oldest first, at most RECOVERY_LIMIT of them."""
    session = work.transaction
    now = utcnow()
    if until is None and since >= now:
        raise Unprocessable(["body", "since"], "must be in the past when until is left out")
    until = until or now
    if until <= since:
        raise Unprocessable(["body", "until"], "must be later than since")
    if until - since > RECOVERY_WINDOW:
        raise Unprocessable(["body", "since"], "the window must be at most 14 days long")
    if not webhook.active:
        raise Conflict("The webhook is inactive; activate it before recovering its deliveries.")
    found = (
        await session.scalars(
            select(Delivery.id)
            .where(Delivery.webhook_id == webhook.id)
            .where(Delivery.status == DeliveryStatus.FAILED, Delivery.kind == DeliveryKind.EVENT)
            .where(Delivery.created_at >= since, Delivery.created_at < until)
            .order_by(Delivery.created_at, Delivery.id)
            .limit(RECOVERY_LIMIT)
        )
    ).all()
    recovered = 0
    for start in range(0, len(found), _RECOVERY_CHUNK):
        # Only those still failed (a retry may have come first) are counted and queued.
        changed = await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(found[start : start + _RECOVERY_CHUNK]))
            .where(Delivery.status == DeliveryStatus.FAILED)
            .values(
                status=DeliveryStatus.PENDING,
                attempt_limit=Delivery.attempt_count + max_attempts,
                next_attempt_at=now,
                completed_at=None,
                updated_at=now,
            )
            .returning(Delivery.id, Delivery.attempt_count)
            .execution_options(synchronize_session=False)
        )
        for delivery_id, attempt_count in changed:
            work.enqueue_after_commit(queue.Attempt(delivery_id, attempt_count + 1))
            recovered += 1
    return recovered
