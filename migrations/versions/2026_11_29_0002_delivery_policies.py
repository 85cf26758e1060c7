"""delivery policies: success rule, ordering, in-flight limit, auto-disable, notices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "success_statuses", sa.String(length=32), server_default="200", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("ordered", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("max_in_flight", sa.Integer(), server_default="10", nullable=False)
        )
        batch_op.add_column(sa.Column("failing_since", Timestamp, nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=200), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ordered_at", Timestamp, nullable=True))
        batch_op.add_column(sa.Column("leased_until", Timestamp, nullable=True))
        batch_op.create_index(
            "ix_deliveries_ordering",
            ["webhook_id", "ordering_key", "status", "ordered_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_deliveries_in_flight", ["webhook_id", "leased_until"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_webhook_due", ["webhook_id", "status", "next_attempt_at"], unique=False
        )
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notices_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_notices_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_account_id_id", ["account_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_account_id_id")
    op.drop_table("notices")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_webhook_due")
        batch_op.drop_index("ix_deliveries_in_flight")
        batch_op.drop_index("ix_deliveries_ordering")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("ordered_at")
        batch_op.drop_column("ordering_key")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("ordering_key")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("failing_since")
        batch_op.drop_column("max_in_flight")
        batch_op.drop_column("ordered")
        batch_op.drop_column("success_statuses")
