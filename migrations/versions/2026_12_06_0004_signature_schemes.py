"""signature schemes: a webhook signs with hmac-sha256 (v1) or ed25519 (v1a)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Every existing webhook keeps its HMAC secret and reads `hmac-sha256`. An Ed25519 private
key (`whsk_…`) lives in the existing `secret` and `previous_secret` columns; `public_key`
holds its `whpk_…` half.

Downgrading cannot keep ed25519: the code before this revision signs with whsec_ secrets
only, and would fail every attempt of a webhook holding a whsk_ key. So the downgrade gives
each such webhook a new random HMAC secret (its receivers must read it from
GET /webhooks/{id}/secret) and drops a previous whsk_ key.
"""

import base64
import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "signature_scheme",
                sa.String(length=32),
                server_default="hmac-sha256",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("public_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    webhooks = sa.table(
        "webhooks",
        sa.column("id", sa.String),
        sa.column("secret", sa.String),
        sa.column("previous_secret", sa.String),
        sa.column("previous_secret_expires_at", sa.DateTime(timezone=True)),
    )
    connection = op.get_bind()
    op.execute(
        webhooks.update()
        .where(webhooks.c.previous_secret.like("whsk\\_%", escape="\\"))
        .values(previous_secret=None, previous_secret_expires_at=None)
    )
    ed25519 = connection.execute(
        sa.select(webhooks.c.id).where(webhooks.c.secret.like("whsk\\_%", escape="\\"))
    ).scalars()
    for webhook_id in list(ed25519):
        # As app/core/signing.py made them at this revision: whsec_ + base64 of 32 bytes.
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")
        op.execute(webhooks.update().where(webhooks.c.id == webhook_id).values(secret=secret))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("public_key")
        batch_op.drop_column("signature_scheme")
