"""Stage 5, the retry backlog: many deliveries scheduled an hour ahead, as after a long
outage of receivers. They are inserted straight into the database in bulk (SQLAlchemy
core) for an existing webhook and event, and one deferred arq job is enqueued for each
with `app.core.queue.enqueue`, as `workers.deliver` does for a retry. Reported: Redis
`used_memory` growth, database size growth, and the time of the sweeper's SELECT (the statement of
workers/sweeper.py, which finds nothing due: the point is what the backlog costs it)."""

import statistics
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from app.core import queue
from app.core.db import make_engine, make_sessionmaker, session_scope, utcnow
from app.core.enums import DeliveryKind, DeliveryStatus
from app.core.ids import new_id
from app.core.models import Delivery, Event
from bench.databases import Databases
from bench.probes import flush_redis, redis_used_memory
from workers.sweeper import due_deliveries

INSERT_CHUNK = 5_000
ENQUEUE_CHUNK = 500
ATTEMPT_LIMIT = 20
SWEEPS = 5


async def backlog_run(
    databases: Databases, database_url: str, redis_url: str, count: int
) -> dict[str, float]:
    await flush_redis(redis_url)
    memory_before = await redis_used_memory(redis_url)
    size_before = await databases.size(database_url)
    due = utcnow() + timedelta(hours=1)
    started = time.perf_counter()
    ids = await insert_deliveries(database_url, count, due)
    inserted = time.perf_counter()
    await enqueue_deferred(redis_url, ids, due)
    enqueued = time.perf_counter()
    memory = await redis_used_memory(redis_url) - memory_before
    size = await databases.size(database_url) - size_before
    return {
        "redis_growth_mb": memory / 1e6,
        "redis_bytes_per_job": memory / count,
        "redis_mb_per_100k": memory / count * 100_000 / 1e6,
        "database_growth_mb": size / 1e6,
        "sweeper_query_ms": await sweeper_query_ms(database_url),
        "insert_seconds": inserted - started,
        "enqueue_seconds": enqueued - inserted,
    }


async def insert_deliveries(
    database_url: str,
    count: int,
    due: datetime,
    webhook_id: str | None = None,
    attempt_count: int = 0,
) -> list[str]:
    """`count` pending deliveries of an existing event, due at `due`, with `attempt_count`
    attempts made; to `webhook_id`, or (None) to the webhook of that event's delivery."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            event = (await connection.execute(select(Event.id, Event.account_id).limit(1))).one()
            if webhook_id is None:
                webhook_id = await connection.scalar(
                    select(Delivery.webhook_id).where(Delivery.event_id == event.id).limit(1)
                )
        ids = [new_id("dlv") for _ in range(count)]
        for start in range(0, count, INSERT_CHUNK):
            rows = [
                _row(i, event.id, event.account_id, webhook_id, due, attempt_count)
                for i in ids[start:][:INSERT_CHUNK]
            ]
            async with engine.begin() as connection:
                await connection.execute(insert(Delivery), rows)
        return ids
    finally:
        await engine.dispose()


def _row(
    delivery_id: str,
    event_id: str,
    account_id: str,
    webhook_id: Any,
    due: datetime,
    attempt_count: int,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": delivery_id,
        "account_id": account_id,
        "webhook_id": webhook_id,
        "event_id": event_id,
        "kind": DeliveryKind.EVENT,
        "status": DeliveryStatus.PENDING,
        "attempt_count": attempt_count,
        "attempt_limit": ATTEMPT_LIMIT,
        "next_attempt_at": due,
        "created_at": now,
        "updated_at": now,
    }


async def enqueue_deferred(redis_url: str, ids: list[str], due: datetime) -> None:
    attempts = [queue.Attempt(delivery_id, 1, due) for delivery_id in ids]
    if await enqueue_attempts(redis_url, attempts) != len(attempts):
        raise RuntimeError("a backlog job was not enqueued (a duplicate id)")


async def enqueue_attempts(redis_url: str, attempts: list[queue.Attempt]) -> int:
    """`app.core.queue.enqueue`, ENQUEUE_CHUNK attempts per call, as the worker does; returns
    how many jobs were added (one already queued, e.g. by a running sweeper, is not)."""
    redis = queue.connect(redis_url)
    added = 0
    try:
        for start in range(0, len(attempts), ENQUEUE_CHUNK):
            chunk = attempts[start:][:ENQUEUE_CHUNK]
            count = await queue.enqueue(redis, chunk)
            if count is None:
                raise RuntimeError("the backlog's jobs were not enqueued: Redis away")
            added += count
        return added
    finally:
        await redis.aclose()


async def sweeper_query_ms(database_url: str) -> float:
    """The median of SWEEPS runs of the sweeper's query, each in its own transaction."""
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    timings: list[float] = []
    try:
        for _ in range(SWEEPS):
            async with session_scope(sessionmaker) as session:
                started = time.perf_counter()
                rows = (await session.execute(due_deliveries())).all()
                timings.append((time.perf_counter() - started) * 1000)
            if rows:
                raise RuntimeError(f"the sweeper found {len(rows)} deliveries due; expected none")
    finally:
        await engine.dispose()
    return statistics.median(timings)
