"""operations webhooks: endpoints for operational events, and the notices they carry

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

`webhooks.purpose` tells an event webhook (`events`, every existing row) from an
operations endpoint (`operations`); `webhooks.failing_notified_percent` remembers which
share of the failing time a `webhook.failing` notice has told of in the current streak.
A notice gains the facts of its new kinds (`percent`, `delivery_id`, `error_class`), and
its `reason` becomes optional (only `disabled` has one). A delivery of kind
`operational` names its notice in `deliveries.notice_id`.

Downgrading removes what the code before this revision cannot read: operational
deliveries, notices of the new kinds, and the operations endpoints themselves (deleted
softly, so the old code does not list them as webhooks).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=32), server_default="events", nullable=False)
        )
        batch_op.add_column(
            sa.Column("failing_notified_percent", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("percent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("delivery_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("error_class", sa.String(length=32), nullable=True))
        batch_op.alter_column("reason", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    deliveries = sa.table("deliveries", sa.column("kind", sa.String))
    notices = sa.table("notices", sa.column("kind", sa.String))
    webhooks = sa.table(
        "webhooks",
        sa.column("purpose", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.execute(deliveries.delete().where(deliveries.c.kind == "operational"))
    op.execute(notices.delete().where(notices.c.kind != "disabled"))
    op.execute(
        webhooks.update()
        .where(webhooks.c.purpose == "operations", webhooks.c.deleted_at.is_(None))
        .values(active=False, deleted_at=datetime.now(UTC))
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.alter_column("reason", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("error_class")
        batch_op.drop_column("delivery_id")
        batch_op.drop_column("percent")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("notice_id")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("failing_notified_percent")
        batch_op.drop_column("purpose")
