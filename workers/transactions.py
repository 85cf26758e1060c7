"""Where the worker's bookkeeping runs its transactions.

On PostgreSQL: the async engine's connections. On SQLite: one plain `sqlite3` connection
used on the event loop's own thread. Through aiosqlite every statement is a round trip
to a thread (about 0.3 ms of CPU, three hand-offs between threads), and a claim or a
record is ten statements; run inline, the whole transaction takes a fraction of one. It
never blocks the loop: the write lock is taken with `BEGIN IMMEDIATE` and no busy
timeout, and while another process holds it the worker sleeps asynchronously and tries
again; once the lock is held nothing in a WAL database waits (readers never block a
writer), and the connection never checkpoints (the API's connections do).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from app.core.db import Connection, Rows
from app.core.storage_faults import keeps_connection_broken
from app.core.tracing import Tracing

# How long a transaction waits for SQLite's write lock, as the API's busy timeout.
LOCK_TIMEOUT_SECONDS = 30.0
FIRST_RETRY_SECONDS = 0.0005
LONGEST_RETRY_SECONDS = 0.01


Transactions = Callable[[], AbstractAsyncContextManager[Connection]]


class InlineConnection:
    def __init__(self, connection: SyncConnection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Rows:
        return self._connection.execute(statement, parameters)


class InlineSQLite:
    """Transactions on one sqlite3 connection, on the event loop's thread."""

    def __init__(self, engine: AsyncEngine, tracing: Tracing | None = None) -> None:
        self._engine = _sync_engine(engine)
        if tracing is not None:
            tracing.instrument_engine(self._engine)
        self._connection: SyncConnection | None = None
        self._one_at_a_time = asyncio.Lock()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Connection]:
        async with self._one_at_a_time:
            if self._connection is None:
                self._connection = self._engine.connect()
            connection = self._connection
            try:
                await _take_write_lock(connection)
                yield InlineConnection(connection)
                connection.commit()
            except BaseException as exc:
                self._recover(connection, exc)
                raise

    def _recover(self, connection: SyncConnection, exc: BaseException) -> None:
        """Rolls back, so that the next transaction can begin: a commit that failed
        (a disk that refused it) would otherwise leave the connection refusing every
        later one. After a storage fault the connection is replaced as well, as the
        API's pool does (app/core/storage_faults.py)."""
        try:
            connection.rollback()
        except Exception:  # the connection is beyond use: a new one next time
            self._drop()
            return
        if keeps_connection_broken(getattr(exc, "orig", None) or exc):
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.invalidate()
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()


def transactions_for(
    engine: AsyncEngine, tracing: Tracing | None = None
) -> tuple[Transactions, Callable[[], None]]:
    """How to begin a transaction on this engine's database, and how to let go of
    what that holds. `tracing` instruments the SQLite connection the engine's
    instrumentation does not reach (the engine itself is its owner's to instrument)."""
    if engine.dialect.name != "sqlite":
        return engine.begin, lambda: None
    inline = InlineSQLite(engine, tracing)
    return inline.begin, inline.close


async def _take_write_lock(connection: SyncConnection) -> None:
    delay = FIRST_RETRY_SECONDS
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            connection.rollback()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY_SECONDS)


def _sync_engine(engine: AsyncEngine) -> Engine:
    sync = create_engine(engine.url.set(drivername="sqlite"), poolclass=StaticPool)
    event.listen(sync, "connect", _configure)
    return sync


def _configure(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by hand (BEGIN IMMEDIATE); the driver's own implicit BEGIN
    # is switched off. No busy timeout: a held lock is waited for without blocking.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
