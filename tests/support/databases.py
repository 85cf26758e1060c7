"""Throwaway databases for the tests, on SQLite (the default) or on PostgreSQL when
STOREHOOKS_TEST_DATABASE_URL names a server (`scripts/throwaway_postgres.sh` starts one).

Every test gets a database of its own, built by the real migrations: a copy of a
migrated SQLite file, or `CREATE DATABASE … TEMPLATE` of a migrated PostgreSQL one.

A test can also make its database refuse writes for a while (`refuse_writes`,
`allow_writes`), as a read-only or failing disk or a read-only server would.
"""

import os
import shutil
import subprocess
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

    @staticmethod
    def why_writes_cannot_be_refused(directory: Path) -> str | None:
        """Files are made immutable (`chattr +i`), which needs root and a filesystem
        that has the flag (ext4, xfs, btrfs; not tmpfs or overlayfs): None when that
        works here, or why not."""
        probe = directory / "immutable-probe"
        probe.write_bytes(b"")
        failure = _chattr("+i", probe)
        if failure is not None:
            return f"files cannot be made immutable here (chattr +i: {failure})"
        _chattr("-i", probe)
        return None

    async def refuse_writes(self, url: str) -> None:
        # Linux refuses writes to an immutable file even through descriptors opened
        # before (since 5.3), so a running server meets it as a disk that failed:
        # SQLite's "disk I/O error", or "attempt to write a readonly database" on a
        # connection opened meanwhile.
        for path in _sqlite_files(url):
            failure = _chattr("+i", path)
            assert failure is None, failure

    async def allow_writes(self, url: str) -> None:
        for path in _sqlite_files(url):
            _chattr("-i", path)


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

    @staticmethod
    def why_writes_cannot_be_refused(directory: Path) -> str | None:
        return None  # the tests connect as a superuser

    async def refuse_writes(self, url: str) -> None:
        # What a server that turned read-only (a standby, a full disk's emergency
        # setting) does: every transaction of a new session is read-only. The running
        # sessions are ended, as a failover ends them.
        name = make_url(url).database
        await self._admin(
            f"ALTER DATABASE {name} SET default_transaction_read_only = on",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )

    async def allow_writes(self, url: str) -> None:
        # The sessions opened meanwhile are left running, read-only: the app has to
        # notice and replace them itself.
        name = make_url(url).database
        await self._admin(f"ALTER DATABASE {name} RESET default_transaction_read_only")


Databases = SqliteDatabases | PostgresDatabases


def databases_for(directory: Path) -> Databases:
    return PostgresDatabases(POSTGRES_URL) if POSTGRES_URL else SqliteDatabases(directory)


def _sqlite_files(url: str) -> list[Path]:
    """The database file and its write-ahead log, where writes land."""
    path = Path(str(make_url(url).database))
    return [file for file in (path, path.with_name(f"{path.name}-wal")) if file.exists()]


def _chattr(flag: str, path: Path) -> str | None:
    """None when the flag was set or cleared, otherwise why not."""
    try:
        result = subprocess.run(
            ["chattr", flag, str(path)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return "no chattr command"
    return None if result.returncode == 0 else result.stderr.strip() or "failed"


async def fetch_all(url: str, sql: str, **params: Any) -> Sequence[Any]:
    """Rows of a query, read with a connection of its own (whatever the backend)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql), params)).all()
    finally:
        await engine.dispose()
