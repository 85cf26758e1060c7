"""Throwaway databases for the tests, on SQLite (the default) or on PostgreSQL when
STOREHOOKS_TEST_DATABASE_URL names a server (`scripts/throwaway_postgres.sh` starts one).

Every test gets a database of its own, built by the real migrations: a copy of a
migrated SQLite file, or `CREATE DATABASE … TEMPLATE` of a migrated PostgreSQL one.
"""

import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_URL = os.environ.get("STOREHOOKS_TEST_DATABASE_URL")
TEMPLATE = "storehooks_template"


class SqliteDatabases:
    kind = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.template = directory / "template.db"

    def template_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.template}"

    async def prepare_template(self) -> None:
        self.template.unlink(missing_ok=True)

    async def migrated(self, directory: Path) -> str:
        path = directory / "storehooks.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def empty(self, directory: Path) -> str:
        return f"sqlite+aiosqlite:///{directory / 'empty.db'}"

    async def drop(self, url: str) -> None:
        pass  # the file goes with the test's tmp_path


class PostgresDatabases:
    kind = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def template_url(self) -> str:
        return self._url(TEMPLATE)

    async def _admin(self, *statements: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def prepare_template(self) -> None:
        await self._admin(
            f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"
        )

    async def migrated(self, directory: Path) -> str:
        name = f"t_{uuid.uuid4().hex}"
        await self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self._url(name)

    async def empty(self, directory: Path) -> str:
        name = f"e_{uuid.uuid4().hex}"
        await self._admin(f"CREATE DATABASE {name}")
        return self._url(name)

    async def drop(self, url: str) -> None:
        name = make_url(url).database
        await self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


Databases = SqliteDatabases | PostgresDatabases


def databases_for(directory: Path) -> Databases:
    return PostgresDatabases(POSTGRES_URL) if POSTGRES_URL else SqliteDatabases(directory)


async def fetch_all(url: str, sql: str, **params: Any) -> Sequence[Any]:
    """Rows of a query, read with a connection of its own (whatever the backend)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql), params)).all()
    finally:
        await engine.dispose()
