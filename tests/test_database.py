"""The engines: on SQLite every transaction takes the write lock up front, except a
reader's; on PostgreSQL a GET request's reads see one snapshot."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import make_engine, make_sessionmaker, one_snapshot, read_only


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'locks.sqlite'}"


async def _writer_waits_behind(sqlite_url: str, *, reader_is_read_only: bool) -> bool:
    """Whether a second process's (engine's) write waits while a first transaction is open."""
    first, second = make_engine(sqlite_url), make_engine(sqlite_url)
    try:
        async with first.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
        opened = read_only(first) if reader_is_read_only else first
        async with opened.connect() as reader:
            assert (await reader.execute(text("SELECT count(*) FROM notes"))).scalar() == 0
            writing = asyncio.create_task(_write(second))
            done, _ = await asyncio.wait({writing}, timeout=0.5)
            blocked = not done
        await writing
        async with first.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM notes"))).scalar() == 1
        return blocked
    finally:
        await first.dispose()
        await second.dispose()


async def _write(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES ('x')"))


async def test_a_transaction_holds_the_write_lock_from_its_begin(sqlite_url: str) -> None:
    assert await _writer_waits_behind(sqlite_url, reader_is_read_only=False)


async def test_a_read_only_transaction_does_not_block_a_writer(sqlite_url: str) -> None:
    assert not await _writer_waits_behind(sqlite_url, reader_is_read_only=True)


async def test_a_get_request_reads_one_moment(database_url: str) -> None:
    """GET /deliveries/{id} reads the delivery, then its attempts: a worker's record
    committed in between must not show half of itself (PostgreSQL's default isolation gives
    each statement its own snapshot; SQLite's transaction is one snapshot already)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: a transaction is one snapshot, and a writer waits behind it")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
        async with make_sessionmaker(engine)() as session:
            await one_snapshot(session)
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar() == 0
            await _write(engine)
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar() == 0
        async with make_sessionmaker(engine)() as session:
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar() == 1
    finally:
        await engine.dispose()
