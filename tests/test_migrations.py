"""The Alembic revisions: they build the schema, take it down again, and match the models
(on SQLite, and on PostgreSQL when the suite runs there)."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.core.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.db import Base
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
