"""reconciliation feed: events by time of receipt, deliveries by event and state

GET /events?delivery_status=&webhook_id=&since=&until= (docs/decisions.md, The
reconciliation feed): ix_events_account_id_created_at holds the window and its order in
one range; ix_deliveries_event_status (event_id, status, webhook_id) covers the EXISTS
probe and takes over from ix_deliveries_event_id, its first column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_account_id_created_at", ["account_id", "created_at", "id"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_event_status", ["event_id", "status", "webhook_id"], unique=False
        )
        batch_op.drop_index("ix_deliveries_event_id")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_event_id", ["event_id"], unique=False)
        batch_op.drop_index("ix_deliveries_event_status")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_account_id_created_at")
