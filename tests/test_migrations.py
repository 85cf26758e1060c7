"""The Alembic revisions: they build the schema, take it down again, and match the models
(on SQLite, and on PostgreSQL when the suite runs there)."""

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.core.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.db import Base, make_engine, make_sessionmaker, session_scope, utcnow
from app.core.enums import DeliveryKind, DeliveryStatus, HttpMethod, PayloadType
from app.core.models import Account, ApiKey, Delivery, DeliveryAttempt, Webhook
from tests.conftest import ROOT, run_cli
from tests.support.databases import fetch_all

TABLES = {
    "accounts",
    "api_keys",
    "webhooks",
    "actions",
    "notices",
    "events",
    "deliveries",
    "delivery_attempts",
    "audit_events",
}


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


async def inspect_sync(url: str, look: Callable[[Connection], Any]) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


async def tables_and_version(url: str) -> tuple[set[str], list[str]]:
    tables = set(await inspect_sync(url, lambda c: inspect(c).get_table_names()))
    versions = [row[0] for row in await fetch_all(url, "SELECT version_num FROM alembic_version")]
    return tables, versions


async def migrate(url: str) -> None:
    result = await asyncio.to_thread(run_cli, "migrate", database_url=url)
    assert result.returncode == 0, result.stderr


async def test_migrate_builds_every_table_at_head(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    assert await tables_and_version(empty_database_url) == (
        TABLES | {"alembic_version"},
        [head_revision(empty_database_url)],
    )


async def test_migrate_twice_is_harmless(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    await migrate(empty_database_url)
    assert (await tables_and_version(empty_database_url))[0] == TABLES | {"alembic_version"}


async def test_downgrade_to_base_and_upgrade_to_head_again(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    config = alembic_config(empty_database_url)
    # env.py runs its own event loop, so Alembic must not run on this one.
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await tables_and_version(empty_database_url) == ({"alembic_version"}, [])

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await tables_and_version(empty_database_url) == (
        TABLES | {"alembic_version"},
        [head_revision(empty_database_url)],
    )


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        difference
        for difference in compare_metadata(context, Base.metadata)
        # Alembic cannot compare expression indexes; the next test checks that one.
        if not (isinstance(difference, tuple) and "uq_actions_binding" in str(difference))
    ]


@pytest.mark.filterwarnings("ignore:.*expression-based index uq_actions_binding")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    assert await inspect_sync(database_url, _differences) == []


async def test_the_expression_index_on_actions_is_unique_over_coalesced_ids(
    database_url: str,
) -> None:
    if database_url.startswith("sqlite"):
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'uq_actions_binding'"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_actions_binding'"
    [(sql,)] = await fetch_all(database_url, query)
    normalized = " ".join(sql.lower().replace("::character varying", "").split())
    assert normalized.startswith("create unique index uq_actions_binding on ")
    assert "webhook_id, event_type, coalesce(app_id, ''), coalesce(sku_id, '')" in normalized


async def test_failures_recorded_before_error_classes_are_classed_from_their_words(
    empty_database_url: str,
) -> None:
    """Revision 0003 classes the attempts already stored by the words the worker wrote."""
    await migrate(empty_database_url)
    words = {
        "Timed out: no complete answer within 10 s.": "timeout",
        "TLS failed: certificate verify failed.": "tls",
        "Could not connect: connection refused.": "connect",
        "Could not resolve the host nonexistent.invalid (Name or service not known).": "dns",
        "Refused to connect: 10.0.0.1 is private; allow it with …": "refused_target",
        "The receiver answered HTTP 429; only 200 counts as success.": "rate_limited",
        "The receiver answered HTTP 503; only 200 counts as success.": "http_status",
        "Interrupted: the worker stopped before this attempt had an outcome; retried.": (
            "interrupted"
        ),
        "The payload could not be rendered: UnicodeEncodeError: …": "payload",
    }
    engine = make_engine(empty_database_url)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            now = utcnow()
            session.add(Account(id="acc_1", name="Old", created_at=now))
            await session.flush()
            session.add(
                Webhook(
                    id="wh_1",
                    account_id="acc_1",
                    name="old",
                    url="https://receiver.example/hook",
                    http_method=HttpMethod.POST,
                    payload_type=PayloadType.JSON,
                    secret="whsec_" + "A" * 43,
                )
            )
            await session.flush()
            session.add(
                Delivery(
                    id="dlv_1",
                    account_id="acc_1",
                    webhook_id="wh_1",
                    kind=DeliveryKind.TEST,
                    status=DeliveryStatus.FAILED,
                    attempt_count=len(words),
                    attempt_limit=len(words),
                    last_error="Could not connect: connection refused.",
                )
            )
            await session.flush()
            for number, error in enumerate(words, start=1):
                session.add(
                    DeliveryAttempt(
                        id=f"att_{number}",
                        delivery_id="dlv_1",
                        number=number,
                        started_at=now,
                        error=error,
                    )
                )
            session.add(
                DeliveryAttempt(id="att_ok", delivery_id="dlv_1", number=99, started_at=now)
            )
    finally:
        await engine.dispose()
    config = alembic_config(empty_database_url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    await asyncio.to_thread(command.upgrade, config, "head")

    rows = await fetch_all(empty_database_url, "SELECT error, error_class FROM delivery_attempts")
    classed: dict[str | None, str | None] = {error: error_class for error, error_class in rows}
    expected: dict[str | None, str | None] = {None: None}
    expected.update(words)
    assert classed == expected  # and none was lost to the table rebuilds on the way down
    [(last,)] = await fetch_all(empty_database_url, "SELECT last_error_class FROM deliveries")
    assert last == "connect"


async def execute(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for sql, params in statements:
                await connection.execute(text(sql), params)
    finally:
        await engine.dispose()


def add_webhook(webhook_id: str, secret: str, previous: str | None) -> tuple[str, dict[str, Any]]:
    now = datetime.now(UTC)
    sql = (
        "INSERT INTO webhooks (id, account_id, name, url, http_method, payload_type, active,"
        " signature_scheme, secret, public_key, previous_secret, previous_secret_expires_at,"
        " created_at, updated_at) VALUES (:id, 'acc_1', 'n', 'https://x.example.com/', 'POST',"
        " 'json', true, :scheme, :secret, :public_key, :previous, :now, :now, :now)"
    )
    ed25519 = secret.startswith("whsk_")
    return sql, {
        "id": webhook_id,
        "scheme": "ed25519" if ed25519 else "hmac-sha256",
        "secret": secret,
        "public_key": "whpk_" + "A" * 43 + "=" if ed25519 else None,
        "previous": previous,
        "now": now,
    }


async def test_downgrading_signature_schemes_leaves_every_webhook_an_hmac_secret(
    empty_database_url: str,
) -> None:
    """The code before revision 0004 signs with whsec_ secrets only: an ed25519 webhook
    gets a new one, a whsk_ key left signing as the previous one is dropped."""
    url = empty_database_url
    await migrate(url)
    key = "whsk_" + base64.b64encode(bytes(range(32))).decode()
    hmac = "whsec_" + base64.b64encode(bytes(32)).decode()
    account = "INSERT INTO accounts (id, name, created_at) VALUES ('acc_1', 'a', :now)"
    await execute(
        url,
        (account, {"now": datetime.now(UTC)}),
        add_webhook("wh_ed25519", key, hmac),
        add_webhook("wh_switched", hmac, key),
    )

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0003")

    rows = await fetch_all(url, "SELECT id, secret, previous_secret FROM webhooks ORDER BY id")
    by_id = {row.id: (row.secret, row.previous_secret) for row in rows}
    new_secret, kept_previous = by_id["wh_ed25519"]
    assert new_secret.startswith("whsec_") and new_secret != hmac
    assert len(base64.b64decode(new_secret.removeprefix("whsec_"), validate=True)) == 32
    assert kept_previous == hmac
    assert by_id["wh_switched"] == (hmac, None)

    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    rows = await fetch_all(url, "SELECT signature_scheme, public_key FROM webhooks")
    assert {tuple(row) for row in rows} == {("hmac-sha256", None)}


async def key_scopes(url: str) -> dict[str, list[str]]:
    rows = await fetch_all(url, "SELECT id, scopes FROM api_keys")
    # A JSON column read by plain SQL: text on SQLite, decoded already on PostgreSQL.
    return {
        row.id: json.loads(row.scopes) if isinstance(row.scopes, str) else row.scopes
        for row in rows
    }


async def test_the_audit_log_revision_grants_audit_read_to_live_managing_keys(
    empty_database_url: str,
) -> None:
    """Revision 0008: every unrevoked key holding keys:manage may read the audit log, so an
    existing account can read it (and mint keys that can); other keys are left as they
    were. Downgrading takes the scope away again."""
    url = empty_database_url
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0007")
    manage = ["webhooks:read", "keys:manage"]
    keys = {
        "key_manager": (manage, None),
        "key_revoked_manager": (manage, utcnow()),
        "key_reader": (["events:read"], None),
    }
    engine = make_engine(url)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            session.add(Account(id="acc_1", name="Old", created_at=utcnow()))
            await session.flush()
            for key_id, (scopes, revoked_at) in keys.items():
                session.add(
                    ApiKey(
                        id=key_id,
                        account_id="acc_1",
                        name=key_id,
                        scopes=scopes,
                        secret_hash="0" * 64,
                        created_at=utcnow(),
                        revoked_at=revoked_at,
                    )
                )
    finally:
        await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await key_scopes(url) == {
        "key_manager": [*manage, "audit:read"],
        "key_revoked_manager": manage,
        "key_reader": ["events:read"],
    }
    await asyncio.to_thread(command.upgrade, config, "head")  # again: nothing more
    assert (await key_scopes(url))["key_manager"] == [*manage, "audit:read"]

    await asyncio.to_thread(command.downgrade, config, "0007")
    assert await key_scopes(url) == {key_id: scopes for key_id, (scopes, _) in keys.items()}
    assert "audit_events" not in (await tables_and_version(url))[0]
