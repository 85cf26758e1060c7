"""audit log: who changed what, when, and the fields before and after

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A new table, `audit_events`, read newest first by account, by target and by actor, hence
its three indexes. Reading it takes the new scope `audit:read`. New accounts' owner key
holds every scope; existing keys hold only what they were given, and a key may grant only
what it holds, so without a grant here no key of an existing account could ever read the
log, nor mint one that can. The grant goes to every live key holding `keys:manage`: the
keys that already administer the account (and can see and revoke every key) are the ones
trusted with its history (docs/decisions.md, The audit log).

Downgrading drops the table and takes `audit:read` from every key again.
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from app (see 0001).
Timestamp = sa.DateTime(timezone=True)
JSONValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AUDIT_READ = "audit:read"
KEYS_MANAGE = "keys:manage"

api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("scopes", JSONValue),
    sa.column("revoked_at", Timestamp),
)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("actor_type", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=255), nullable=False),
        sa.Column("actor_name", sa.String(length=255), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("changes", JSONValue, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_audit_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_target", ["account_id", "target_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_actor", ["account_id", "actor_id", "id"], unique=False
        )
    _set_scope(
        lambda scopes: KEYS_MANAGE in scopes and AUDIT_READ not in scopes,
        lambda scopes: [*scopes, AUDIT_READ],
        live_only=True,
    )


def downgrade() -> None:
    _set_scope(
        lambda scopes: AUDIT_READ in scopes,
        lambda scopes: [scope for scope in scopes if scope != AUDIT_READ],
        live_only=False,
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_actor")
        batch_op.drop_index("ix_audit_events_target")
        batch_op.drop_index("ix_audit_events_account_id_id")
    op.drop_table("audit_events")


def _set_scope(
    selects: Callable[[list[str]], bool],
    changed: Callable[[list[str]], list[str]],
    *,
    live_only: bool,
) -> None:
    """Rewrites the scopes of the keys `selects` picks. In Python rather than in SQL: a
    JSON array is edited differently on each backend, and an account has a handful of
    keys."""
    connection = op.get_bind()
    query = sa.select(api_keys.c.id, api_keys.c.scopes)
    if live_only:
        query = query.where(api_keys.c.revoked_at.is_(None))
    for key_id, scopes in connection.execute(query).all():
        if selects(scopes):
            connection.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(scopes=changed(scopes))
            )
