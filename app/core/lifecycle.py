"""A webhook's lifecycle as the API and the workers both change it: what ending its
pending deliveries means (deleted, switched off, failing for too long)."""

from datetime import datetime

from sqlalchemy import Update, update

from app.core.enums import DeliveryStatus
from app.core.models import Delivery


def cancel_pending(webhook_id: str, why: str, now: datetime) -> Update:
    """The statement that ends every pending delivery of a webhook `cancelled`."""
    return (
        update(Delivery)
        .where(Delivery.webhook_id == webhook_id, Delivery.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.CANCELLED,
            last_error=why,
            next_attempt_at=None,
            completed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
