"""One unit of work: a transaction, and the attempts to queue once it has committed.

Everything that writes goes through `unit_of_work`: the API's routes (the request's
session), `POST /events` (a batch of requests in one Core transaction) and the worker
(its claims and records, the sweeper, retention). Only how the transaction begins
differs; the rule does not: jobs are queued after the commit, in one Redis round trip, so
a job never points at a row that was rolled back. A block that raises queues nothing. An
enqueue that is lost (Redis away) loses nothing either: the deliveries are due in the
database, and the sweeper queues them.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

from app.core import queue

Transaction = TypeVar("Transaction")


class UnitOfWork(Generic[Transaction]):
    """The open transaction, and what to queue when it commits."""

    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction
        self.attempts: list[queue.Attempt] = []
        # After the block: how many jobs the enqueue added (those already queued are left
        # alone), None if Redis could not be reached.
        self.queued: int | None = None

    def enqueue_after_commit(self, *attempts: queue.Attempt) -> None:
        self.attempts += attempts


@asynccontextmanager
async def unit_of_work(
    begin: Callable[[], AbstractAsyncContextManager[Transaction]],
    redis: queue.Client | None,
) -> AsyncIterator[UnitOfWork[Transaction]]:
    """`begin()` opens the transaction and commits it when its block ends (rolls back if
    it raises); `redis` None queues nothing (tools that only write rows)."""
    async with begin() as transaction:
        work = UnitOfWork(transaction)
        yield work
    if redis is not None:  # reached only after the commit
        work.queued = await queue.enqueue(redis, work.attempts)  # never raises
