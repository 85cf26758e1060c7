"""The worker's inline SQLite transactions (`workers/transactions.py`) on a real SQLite
file: another connection's write lock is waited for without blocking the event loop,
a transaction commits or rolls back whole, and PostgreSQL keeps the async engine."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from workers.transactions import InlineSQLite, transactions_for


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "inline.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE notes (n INTEGER)")
    return path


def inline(path: Path) -> InlineSQLite:
    return InlineSQLite(create_async_engine(f"sqlite+aiosqlite:///{path}"))


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as reader:
        return [n for (n,) in reader.execute("SELECT n FROM notes ORDER BY n")]


async def test_a_held_write_lock_is_waited_for_while_the_loop_runs_on(database: Path) -> None:
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
    other.execute("INSERT INTO notes VALUES (1)")
    transactions = inline(database)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def write() -> None:
        async with transactions.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES (2)"))

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    assert not writing.done()  # still waiting for the lock ...
    assert ticks > 20  # ... and the loop kept running meanwhile
    other.execute("COMMIT")
    await asyncio.wait_for(writing, timeout=5)
    ticker.cancel()
    transactions.close()
    other.close()

    assert rows(database) == [1, 2]


async def test_a_transaction_that_raises_leaves_nothing_behind(database: Path) -> None:
    transactions = inline(database)
    with pytest.raises(RuntimeError):
        async with transactions.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES (1)"))
            raise RuntimeError("the batch failed")
    async with transactions.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES (2)"))
    transactions.close()

    assert rows(database) == [2]


async def test_transactions_take_turns_on_the_one_connection(database: Path) -> None:
    transactions = inline(database)

    async def write(n: int) -> None:
        async with transactions.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})
            await asyncio.sleep(0)  # a suspension inside must not let another one in
            await connection.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n + 100})

    await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(10))), timeout=10)
    transactions.close()

    assert rows(database) == sorted([*range(10), *range(100, 110)])


def test_postgresql_keeps_the_async_engines_own_transactions() -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    begin, close = transactions_for(engine)
    assert begin == engine.begin
    close()
