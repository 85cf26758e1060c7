"""error classes: why each attempt failed, and the delivery's last one

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Attempts recorded before this revision are classed from their error text (the words
the worker has always written), so `GET /deliveries?error_class=` finds old failures
too. A 503 is classed `http_status`: whether it carried a Retry-After was not kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (error class, LIKE pattern of the error text), first match wins.
CLASSES_BY_TEXT = [
    ("interrupted", "Interrupted:%"),
    ("payload", "The payload could not be rendered%"),
    ("refused_target", "Refused to connect:%"),
    ("dns", "Could not resolve the host%"),
    ("timeout", "Timed out:%"),
    ("tls", "TLS failed:%"),
    ("rate_limited", "The receiver answered HTTP 429%"),
    ("http_status", "The receiver answered HTTP%"),
    ("connect", "Could not connect:%"),
    ("connect", "The HTTP exchange failed:%"),
    ("connect", "The attempt failed:%"),
]


def upgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_class", sa.String(length=32), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_error_class", sa.String(length=32), nullable=True))
    for table, text, column in (
        ("delivery_attempts", "error", "error_class"),
        ("deliveries", "last_error", "last_error_class"),
    ):
        for error_class, pattern in CLASSES_BY_TEXT:
            op.execute(
                sa.text(
                    f"UPDATE {table} SET {column} = :class "  # table and column names are ours
                    f"WHERE {column} IS NULL AND {text} LIKE :pattern"
                ).bindparams(**{"class": error_class, "pattern": pattern})
            )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("last_error_class")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("error_class")
