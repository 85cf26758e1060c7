"""One unit of work: attempts reach the queue only after their transaction commits, a
block that fails queues nothing, and Redis being away loses no row."""

from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import queue
from app.core.db import make_engine, utcnow
from app.core.models import Account
from app.core.unit_of_work import unit_of_work
from tests.conftest import free_port


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def arq_client(redis_url: str) -> AsyncIterator[queue.Client]:
    client = queue.connect(redis_url)
    yield client
    await client.aclose()


async def queued(client: redis.asyncio.Redis) -> set[str]:
    return {member.decode() for member in await client.zrange(queue.QUEUE_NAME, 0, -1)}


async def accounts(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set((await connection.scalars(select(Account.id))).all())


async def add_account(connection: AsyncConnection, account_id: str) -> None:
    await connection.execute(
        insert(Account).values(id=account_id, name=account_id, created_at=utcnow())
    )


async def test_attempts_are_queued_after_the_commit_not_before(
    engine: AsyncEngine, arq_client: queue.Client
) -> None:
    async with unit_of_work(engine.begin, arq_client) as work:
        await add_account(work.transaction, "acc_committed")
        work.enqueue_after_commit(queue.Attempt("dlv_one"), queue.Attempt("dlv_two", 2))
        assert await queued(arq_client) == set()  # nothing before the commit
    assert await queued(arq_client) == {"dlv_one", "dlv_two:2"}
    assert work.queued == 2
    assert "acc_committed" in await accounts(engine)


async def test_a_block_that_fails_queues_nothing_and_keeps_nothing(
    engine: AsyncEngine, arq_client: queue.Client
) -> None:
    with pytest.raises(RuntimeError, match="in the middle"):
        async with unit_of_work(engine.begin, arq_client) as work:
            await add_account(work.transaction, "acc_rolled_back")
            work.enqueue_after_commit(queue.Attempt("dlv_never"))
            raise RuntimeError("in the middle")
    assert await queued(arq_client) == set()
    assert "acc_rolled_back" not in await accounts(engine)


async def test_redis_away_keeps_the_rows_and_says_nothing_was_queued(
    engine: AsyncEngine,
) -> None:
    nowhere = queue.connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        async with unit_of_work(engine.begin, nowhere) as work:
            await add_account(work.transaction, "acc_kept")
            work.enqueue_after_commit(queue.Attempt("dlv_for_the_sweeper"))
    finally:
        await nowhere.aclose()
    assert work.queued is None  # the sweeper queues it from the database
    assert "acc_kept" in await accounts(engine)


async def test_without_a_queue_it_is_a_plain_transaction(engine: AsyncEngine) -> None:
    async with unit_of_work(engine.begin, None) as work:
        await add_account(work.transaction, "acc_plain")
        work.enqueue_after_commit(queue.Attempt("dlv_ignored"))
    assert work.queued is None
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(Account).where(Account.id == "acc_plain")
        )
    assert count == 1
