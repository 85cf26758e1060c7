"""Fresh migrated databases for the benchmark, on SQLite files or on a PostgreSQL server.

`storehooks migrate` builds a template once; each fresh database is a copy of it (a file
copy, or `CREATE DATABASE … TEMPLATE`). `size()` is the file size (after a WAL
checkpoint) or `pg_database_size`.
"""

import shutil
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.services import Services


class Databases(Protocol):
    kind: str

    async def prepare(self, services: Services) -> None: ...

    async def fresh(self) -> str: ...

    async def size(self, url: str) -> int: ...

    async def drop_all(self) -> None: ...


class SqliteDatabases:
    kind = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        self.made: list[Path] = []

    async def prepare(self, services: Services) -> None:
        self.template.unlink(missing_ok=True)
        await services.cli(f"sqlite+aiosqlite:///{self.template}", "migrate")

    async def fresh(self) -> str:
        path = self.directory / f"bench_{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(self.template, path)
        self.made.append(path)
        return f"sqlite+aiosqlite:///{path}"

    async def size(self, url: str) -> int:
        return _sqlite_size(Path(make_url(url).database or ""))

    async def drop_all(self) -> None:
        for path in [*self.made, self.template]:
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)


def _sqlite_size(path: Path) -> int:
    """The file's size once the WAL is checkpointed into it (plus what is left of the WAL)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class PostgresDatabases:
    kind = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"bench_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_template"
        self.made: list[str] = []

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def prepare(self, services: Services) -> None:
        await self._admin(f"CREATE DATABASE {self.template}")
        self.made.append(self.template)
        await services.cli(self._url(self.template), "migrate")

    async def fresh(self) -> str:
        name = f"{self.prefix}_{len(self.made)}"
        await self._admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.made.append(name)
        return self._url(name)

    async def size(self, url: str) -> int:
        rows = await fetch_all(url, "SELECT pg_database_size(current_database())")
        return int(rows[0][0])

    async def drop_all(self) -> None:
        for name in reversed(self.made):
            await self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.made.clear()


async def fetch_all(url: str, sql: str, **params: Any) -> Sequence[Any]:
    """Rows of one query, on a connection of its own."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql), params)).all()
    finally:
        await engine.dispose()


async def count_by_status(url: str) -> dict[str, int]:
    rows = await fetch_all(url, "SELECT status, count(*) FROM deliveries GROUP BY status")
    return {str(status): int(count) for status, count in rows}
