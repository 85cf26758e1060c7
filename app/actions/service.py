"""Action rows: bind, list, unbind."""

from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.actions.schemas import ActionCreate
from app.core.db import utcnow
from app.core.enums import EventType
from app.core.ids import new_id
from app.core.models import Action, Webhook
from app.errors import Conflict, NotFound
from app.pagination import PageParams, fetch_page
from app.text import equals, storable


async def create(session: AsyncSession, webhook: Webhook, body: ActionCreate) -> Action:
    duplicate = select(
        exists().where(
            Action.webhook_id == webhook.id,
            Action.event_type == body.event_type,
            _same(Action.app_id, body.app_id),
            _same(Action.sku_id, body.sku_id),
        )
    )
    if await session.scalar(duplicate):
        raise _conflict()
    action = Action(
        id=new_id("act"),
        account_id=webhook.account_id,
        webhook_id=webhook.id,
        event_type=body.event_type,
        app_id=body.app_id,
        sku_id=body.sku_id,
        created_at=utcnow(),
    )
    session.add(action)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent twin won the unique index
        raise _conflict() from None
    return action


def _same(column: InstrumentedAttribute[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _conflict() -> Conflict:
    return Conflict("This webhook already has an action for that event type, app and SKU.")


async def list_for_webhook(
    session: AsyncSession, webhook: Webhook, params: PageParams
) -> tuple[Sequence[Action], str | None]:
    statement = select(Action).where(Action.webhook_id == webhook.id)
    return await fetch_page(session, statement, Action.id, params)


async def search(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    *,
    app_id: str | None,
    sku_id: str | None,
    event_type: EventType | None,
) -> tuple[Sequence[Action], str | None]:
    statement = select(Action).where(Action.account_id == account_id)
    if app_id is not None:
        statement = statement.where(equals(Action.app_id, app_id))
    if sku_id is not None:
        statement = statement.where(equals(Action.sku_id, sku_id))
    if event_type is not None:
        statement = statement.where(Action.event_type == event_type)
    return await fetch_page(session, statement, Action.id, params)


async def remove(session: AsyncSession, webhook: Webhook, action_id: str) -> Action:
    """Deletes the webhook's action and returns it as it was."""
    action = await session.get(Action, action_id) if storable(action_id) else None
    if action is None or action.webhook_id != webhook.id:
        raise NotFound(f"No action {action_id} on webhook {webhook.id}.")
    await session.delete(action)
    await session.flush()
    return action
