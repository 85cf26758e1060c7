"""The Alembic revisions: they build the schema, take it down again, and match the models."""

import asyncio
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db import Base
from tests.conftest import ROOT, run_cli

TABLES = {
    "accounts",
    "api_keys",
    "webhooks",
    "actions",
    "events",
    "deliveries",
    "delivery_attempts",
}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "fresh.db"
    result = run_cli("migrate", database_url=f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 0, result.stderr
    return path


def alembic_config(path: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{path}")
    return config


def tables_and_version(path: Path) -> tuple[set[str], list[str]]:
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            versions = list(
                connection.scalars(sqlalchemy.text("SELECT version_num FROM alembic_version"))
            )
    finally:
        engine.dispose()
    return tables, versions


def test_migrate_builds_every_table_at_head(database: Path) -> None:
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    assert head is not None
    assert tables_and_version(database) == (TABLES | {"alembic_version"}, [head])


def test_migrate_twice_is_harmless(database: Path) -> None:
    result = run_cli("migrate", database_url=f"sqlite+aiosqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert tables_and_version(database)[0] == TABLES | {"alembic_version"}


async def test_downgrade_to_base_and_upgrade_to_head_again(database: Path) -> None:
    config = alembic_config(database)
    head = ScriptDirectory.from_config(config).get_current_head()
    # env.py runs its own event loop, so Alembic must not run on this one.
    await asyncio.to_thread(command.downgrade, config, "base")
    assert tables_and_version(database) == ({"alembic_version"}, [])

    await asyncio.to_thread(command.upgrade, config, "head")
    assert tables_and_version(database) == (TABLES | {"alembic_version"}, [head])


# SQLite cannot reflect expression indexes; the next test checks that one by hand.
@pytest.mark.filterwarnings("ignore:.*expression-based index uq_actions_binding")
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index"
)
def test_the_migrated_schema_matches_the_models(database: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_expression_index_on_actions_is_unique_over_coalesced_ids(database: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            sql = connection.scalar(
                sqlalchemy.text(
                    "SELECT sql FROM sqlite_master"
                    " WHERE type = 'index' AND name = 'uq_actions_binding'"
                )
            )
    finally:
        engine.dispose()
    assert sql is not None
    normalized = " ".join(sql.lower().split())
    assert normalized.startswith("create unique index uq_actions_binding on actions")
    assert "webhook_id, event_type, coalesce(app_id, ''), coalesce(sku_id, '')" in normalized
