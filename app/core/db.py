"""Database plumbing: the declarative Base, a UTC datetime type, engines and sessions.

The request owns the transaction: `session_scope` commits when its block ends
without an error and rolls back otherwise; services only `flush()`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import CursorResult, DateTime, Executable, MetaData, event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.core.storage_faults import keeps_connection_broken

# Rows of any shape, as a Core statement gives them.
Rows = CursorResult[*tuple[Any, ...]]


class Connection(Protocol):
    """A connection in a transaction, as Core statements use it: AsyncConnection has
    it, and so has the worker's inline SQLite one (workers/transactions.py)."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Executable, parameters: Any = None) -> Rows: ...


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


READ_ONLY = "storehooks_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection per process: SQLite has one writer at a time anyway, and
        # queueing in the pool (asyncio) is far cheaper than many connections
        # sleeping in SQLite's busy handler for the write lock.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
        )
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        engine = create_async_engine(url, pool_pre_ping=True)
    event.listen(engine.sync_engine, "handle_error", _drop_after_storage_fault)
    return engine


def _drop_after_storage_fault(context: ExceptionContext) -> None:
    # Treated as a disconnect, the pool replaces the connection (app/core/storage_faults.py):
    # otherwise a session opened read-only would stay so after the database recovered.
    if keeps_connection_broken(context.original_exception):
        context.is_disconnect = True


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; the busy timeout makes writers
    # queue instead of failing with "database is locked". The driver's own
    # deferred BEGIN is switched off so that _sqlite_begin can take the write
    # lock up front: a deferred transaction that reads and then writes fails at
    # once (SQLITE_BUSY_SNAPSHOT) when another process wrote in between.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A reader (an engine from read_only()) takes no lock: WAL gives it a snapshot.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for transactions that only read: on SQLite they do not
    take the write lock that every other transaction takes up front."""
    return engine.execution_options(**{READ_ONLY: True})


async def one_snapshot(session: AsyncSession) -> None:
    """Makes every read of the session's transaction see the same moment. PostgreSQL's
    default (READ COMMITTED) gives each statement a snapshot of its own, so a delivery
    read beside its attempts could show a worker's record half before and half after.
    SQLite's transactions are one snapshot already. Call it before the first statement."""
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
