"""A webhook's lifecycle, one owner for the API and the workers alike: switched on,
switched off (by its merchant, a failed test, a 410, failing for too long), deleted.
Each change is its flag, its pending deliveries and its notice, in the caller's
transaction (docs/api.md#webhooks)."""

from datetime import datetime

from sqlalchemy import Update, delete, insert, update

from app.core.db import Connection
from app.core.enums import DeliveryStatus, DisabledReason, NoticeKind
from app.core.ids import new_id
from app.core.tables import actions, deliveries, notices, webhooks

# The service's own doing, which its merchant hears of through a notice; a merchant's
# switch and a failed test (seen on the spot) leave none.
NOTIFIED = frozenset({DisabledReason.GONE, DisabledReason.FAILING})


def cancel_pending(webhook_id: str, why: str, now: datetime) -> Update:
    """The statement that ends every pending delivery of a webhook `cancelled`."""
    return (
        update(deliveries)
        .where(deliveries.c.webhook_id == webhook_id)
        .where(deliveries.c.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.CANCELLED,
            last_error=why,
            last_error_class=None,  # not an attempt's failure
            next_attempt_at=None,
            completed_at=now,
            updated_at=now,
        )
    )


async def switch_off(
    connection: Connection, webhook_id: str, reason: DisabledReason, now: datetime
) -> bool:
    """Turns a webhook off for `reason`, ends its pending deliveries and, for the
    service's own reasons, records a notice. The service turns off only an active
    webhook (False when it was off already, its first reason kept); its merchant's
    switch always records `manual`, over any earlier reason."""
    which = webhooks.c.id == webhook_id
    if reason is not DisabledReason.MANUAL:
        which &= webhooks.c.active.is_(True)
    account_id: str | None = (
        await connection.execute(
            update(webhooks)
            .where(which)
            .values(active=False, disabled_reason=reason, updated_at=now)
            .returning(webhooks.c.account_id)
        )
    ).scalar_one_or_none()
    if account_id is None:
        return False
    why = f"Not sent: the webhook was turned off ({reason.value})."
    await connection.execute(cancel_pending(webhook_id, why, now))
    if reason in NOTIFIED:
        await connection.execute(
            insert(notices).values(
                id=new_id("ntc"),
                account_id=account_id,
                webhook_id=webhook_id,
                kind=NoticeKind.DISABLED,
                reason=reason,
                created_at=now,
            )
        )
    return True


async def switch_on(connection: Connection, webhook_id: str, now: datetime) -> None:
    """Turns a webhook on with a fresh failure clock (its reason for being off cleared)."""
    await connection.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(active=True, disabled_reason=None, failing_since=None, updated_at=now)
    )


async def delete_webhook(connection: Connection, webhook_id: str, now: datetime) -> None:
    """Deletes a webhook softly: reads answer 404, its actions go, its pending
    deliveries end `cancelled`, its delivery history stays."""
    await connection.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(deleted_at=now, active=False, updated_at=now)
    )
    await connection.execute(delete(actions).where(actions.c.webhook_id == webhook_id))
    await connection.execute(cancel_pending(webhook_id, "The webhook was deleted.", now))
