"""Event order within an ordering key (docs/delivery.md, Ordered delivery): by the
event's occurred_at, then by receipt, which the time-ordered delivery id records."""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_

from app.core.tables import deliveries


def before(
    webhook_id: str, ordering_key: str, ordered_at: datetime, delivery_id: str
) -> ColumnElement[bool]:
    """Deliveries of the same webhook and key that come before the one described."""
    return and_(
        deliveries.c.webhook_id == webhook_id,
        deliveries.c.ordering_key == ordering_key,
        or_(
            deliveries.c.ordered_at < ordered_at,
            and_(deliveries.c.ordered_at == ordered_at, deliveries.c.id < delivery_id),
        ),
    )
