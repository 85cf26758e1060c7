"""Cheap looks at the running system: the receiver's counts and arrival times, the
deliveries' statuses in the database, Redis's memory."""

import asyncio
import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.databases import count_by_status


async def receiver_stats(session: aiohttp.ClientSession, receiver_url: str) -> dict[str, Any]:
    async with session.get(f"{receiver_url}/stats") as response:
        stats: dict[str, Any] = await response.json()
        return stats


async def reset_receiver(session: aiohttp.ClientSession, receiver_url: str) -> None:
    async with session.delete(f"{receiver_url}/stats") as response:
        response.raise_for_status()


async def arrivals(session: aiohttp.ClientSession, receiver_url: str) -> dict[str, float]:
    async with session.get(f"{receiver_url}/arrivals") as response:
        found: dict[str, float] = await response.json()
        return found


async def wait_for_receipts(
    session: aiohttp.ClientSession,
    receiver_url: str,
    expected: int,
    within: float,
    interval: float = 0.1,
) -> dict[str, Any]:
    """Polls /stats until the receiver has `expected` distinct webhook-ids."""
    deadline = time.monotonic() + within
    while True:
        stats = await receiver_stats(session, receiver_url)
        if stats["distinct"] >= expected:
            return stats
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the receiver got {stats['distinct']} of {expected} deliveries in {within:g} s"
            )
        await asyncio.sleep(interval)


async def wait_for_succeeded(
    database_url: str, expected: int, within: float, interval: float = 0.05
) -> float:
    """Polls the database until `expected` deliveries are succeeded; returns that time."""
    deadline = time.monotonic() + within
    while True:
        by_status = await count_by_status(database_url)
        if by_status.get("succeeded", 0) >= expected:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries by status after {within:g} s: {by_status}")
        await asyncio.sleep(interval)


async def redis_used_memory(redis_url: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    try:
        info = await client.info("memory")
        return int(info["used_memory"])
    finally:
        await client.aclose()


async def flush_redis(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
