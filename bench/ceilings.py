"""Stage 1, the ceilings: how fast this machine can send notifications to the receiver
with nothing of storehooks in the way.

(a) raw: a lean aiohttp sender, 50 requests in flight, a ~300-byte JSON body shaped like
a notification (with `webhook-*` headers), against the same receiver as the deliveries.
(b) bookkeeping: the same plus, per request, one Redis SET (redis.asyncio) and one
SQLite insert (aiosqlite, autocommit, WAL, into a scratch table in a temp file).
(c) on PostgreSQL only: as (b) with the insert made by asyncpg into the run's database.
CPU is this process's own (`time.process_time()`, threads included).
"""

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import aiosqlite
import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from bench.load import LoadResult, Request, closed_loop

CONCURRENCY = 50
SIGNATURE = "v1," + "A" * 44


def notification(number: int) -> Request:
    """A body and headers like a worker's JSON notification, about 300 bytes of body."""
    payload = {
        "type": "purchase",
        "epoch_timestamp": 1764440000,
        "event_id": f"evt_ceiling{number:021d}",
        "app_id": "app_bench",
        "sku_id": "gems_100",
        "data": {"order_id": f"o-{number:08d}", "amount": "4.99", "currency": "USD"},
    }
    body = json.dumps({"payload": payload, "md5": "0" * 32}, separators=(",", ":"))
    headers = {
        "content-type": "application/json",
        "user-agent": "storehooks-bench",
        "webhook-id": f"dlv_ceiling{number:021d}",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": SIGNATURE,
    }
    return body.encode(), headers


def figures(result: LoadResult) -> dict[str, float]:
    if result.errors:
        raise RuntimeError(f"{len(result.errors)} requests failed, e.g. {result.errors[0]}")
    return {
        "requests_per_s": result.per_second,
        "cpu_ms_per_request": result.cpu_ms_per_request,
    }


async def raw(session: aiohttp.ClientSession, receiver_url: str, total: int) -> dict[str, float]:
    result = await closed_loop(
        session, f"{receiver_url}/ceiling", notification, total, CONCURRENCY, 200
    )
    return figures(result)


async def with_bookkeeping(
    session: aiohttp.ClientSession,
    receiver_url: str,
    total: int,
    redis_url: str,
    insert: Callable[[int], Awaitable[None]],
) -> dict[str, float]:
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def before_send(number: int) -> None:
            await client.set(f"bench:ceiling:{number}", "pending")
            await insert(number)

        result = await closed_loop(
            session, f"{receiver_url}/ceiling", notification, total, CONCURRENCY, 200, before_send
        )
    finally:
        await client.aclose()
    return figures(result)


SCRATCH = (
    "CREATE TABLE IF NOT EXISTS bench_scratch "
    "(id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL, note TEXT)"
)


async def sqlite_bookkeeping(
    session: aiohttp.ClientSession, receiver_url: str, total: int, redis_url: str, scratch: Path
) -> dict[str, float]:
    _remove(scratch)
    async with aiosqlite.connect(scratch, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(SCRATCH)

        async def insert(number: int) -> None:
            await db.execute(
                "INSERT INTO bench_scratch VALUES (?, ?, ?, ?)",
                (f"dlv_{number}", "pending", time.time(), "ceiling"),
            )

        return await with_bookkeeping(session, receiver_url, total, redis_url, insert)


async def postgres_bookkeeping(
    session: aiohttp.ClientSession, receiver_url: str, total: int, redis_url: str, url: str
) -> dict[str, float]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    try:
        await pool.execute(SCRATCH.replace("REAL", "DOUBLE PRECISION"))
        await pool.execute("TRUNCATE bench_scratch")
        insert_sql = "INSERT INTO bench_scratch VALUES ($1, $2, $3, $4)"

        async def insert(number: int) -> None:
            await pool.execute(insert_sql, f"dlv_{number}", "pending", time.time(), "ceiling")

        return await with_bookkeeping(session, receiver_url, total, redis_url, insert)
    finally:
        await pool.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
