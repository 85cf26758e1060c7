"""Reading deliveries and their attempts; test pings and manual retries."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import queue
from app.db import utcnow
from app.enums import DeliveryKind, DeliveryStatus
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.models import Delivery, DeliveryAttempt, Webhook
from app.pagination import PageParams, fetch_page
from app.text import equals, storable


async def get(session: AsyncSession, account_id: str, delivery_id: str) -> Delivery:
    delivery = await session.get(Delivery, delivery_id) if storable(delivery_id) else None
    if delivery is None or delivery.account_id != account_id:
        raise NotFound(f"No delivery {delivery_id}.")
    return delivery


async def attempts(session: AsyncSession, delivery: Delivery) -> Sequence[DeliveryAttempt]:
    statement = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery.id)
        .order_by(DeliveryAttempt.number)
    )
    return (await session.scalars(statement)).all()


async def list_page(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    *,
    webhook_id: str | None,
    event_id: str | None,
    status: DeliveryStatus | None,
) -> tuple[Sequence[Delivery], str | None]:
    statement = select(Delivery).where(Delivery.account_id == account_id)
    if webhook_id is not None:
        statement = statement.where(equals(Delivery.webhook_id, webhook_id))
    if event_id is not None:
        statement = statement.where(equals(Delivery.event_id, event_id))
    if status is not None:
        statement = statement.where(Delivery.status == status)
    return await fetch_page(session, statement, Delivery.id, params)


async def create_test(session: AsyncSession, webhook: Webhook) -> Delivery:
    """A ping to the webhook: one attempt, no retries (API.md §3)."""
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
    queue.enqueue_after_commit(session, delivery.id)
    return delivery


async def retry(session: AsyncSession, delivery: Delivery, max_attempts: int) -> Delivery:
    """A failed or cancelled delivery goes back to pending with a fresh attempt budget."""
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
    queue.enqueue_after_commit(session, delivery.id, delivery.attempt_count + 1)
    return delivery
