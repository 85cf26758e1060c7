"""Reading deliveries and their attempts."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.enums import DeliveryStatus
from app.errors import NotFound
from app.models import Delivery, DeliveryAttempt
from app.pagination import PageParams, fetch_page


async def get(session: AsyncSession, account_id: str, delivery_id: str) -> Delivery:
    delivery = await session.get(Delivery, delivery_id)
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
        statement = statement.where(Delivery.webhook_id == webhook_id)
    if event_id is not None:
        statement = statement.where(Delivery.event_id == event_id)
    if status is not None:
        statement = statement.where(Delivery.status == status)
    return await fetch_page(session, statement, Delivery.id, params)
