"""A webhook's lifecycle, one owner for the API and the workers alike: switched on,
switched off (by its merchant, a failed test, a 410, failing for too long), deleted.
Each change is its flag, its pending deliveries and its notice (an operational event too,
`app/core/announcements.py`), in the caller's transaction (docs/api.md#webhooks)."""

from datetime import datetime

from sqlalchemy import Update, delete, update

from app.core.announcements import Announcer
from app.core.db import Connection
from app.core.enums import DeliveryStatus, DisabledReason, NoticeKind
from app.core.tables import actions, deliveries, webhooks

# The service's own doing, which its merchant hears of through a `disabled` notice
# (webhook.disabled); a merchant's switch leaves none, and a failed test has a notice of
# its own, `test_failed`, recorded by the bookkeeping with the failed ping.
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
    connection: Connection,
    webhook_id: str,
    reason: DisabledReason,
    now: datetime,
    announcer: Announcer | None = None,
) -> bool:
    """Turns a webhook off for `reason`, ends its pending deliveries and, for the
    service's own reasons (gone, failing), announces it (a notice, and an operational
    event): those need an `announcer`. The service turns off only an active webhook
    (False when it was off already, its first reason kept); its merchant's switch
    always records `manual`, over any earlier reason."""
    if reason in NOTIFIED and announcer is None:
        raise ValueError(f"turning a webhook off for {reason.value} is announced")
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
    if reason in NOTIFIED and announcer is not None:
        await announcer.announce(NoticeKind.DISABLED, webhook_id, reason=reason)
    return True


async def switch_on(connection: Connection, webhook_id: str, now: datetime) -> None:
    """Turns a webhook on with a fresh failure clock (its reason for being off cleared)."""
    await connection.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(
            active=True,
            disabled_reason=None,
            failing_since=None,
            failing_notified_percent=0,
            updated_at=now,
        )
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
