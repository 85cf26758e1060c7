"""Load generators on one aiohttp session: a closed loop (N requests, C in flight) and
an open loop at a fixed rate. No threads: everything runs on the caller's event loop."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Request = tuple[bytes, Mapping[str, str]]
MakeRequest = Callable[[int], Request]
BeforeSend = Callable[[int], Awaitable[None]]


@dataclass
class LoadResult:
    requests: int
    seconds: float
    cpu_seconds: float  # time.process_time() of this process over the run
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.requests


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    make: MakeRequest,
    total: int,
    concurrency: int,
    expect: int,
    before_send: BeforeSend | None = None,
) -> LoadResult:
    """Sends `total` POSTs from `concurrency` coroutines, each one after the other."""
    numbers = iter(range(total))
    result = LoadResult(total, 0.0, 0.0)

    async def sender() -> None:
        for number in numbers:  # one shared iterator: each number is taken once
            if before_send is not None:
                await before_send(number)
            body, headers = make(number)
            started = time.perf_counter()
            error = await _post(session, url, body, headers, expect)
            result.latencies.append(time.perf_counter() - started)
            if error is not None:
                result.errors.append(error)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - wall
    result.cpu_seconds = time.process_time() - cpu
    return result


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    expect: int,
) -> str | None:
    try:
        async with session.post(url, data=body, headers=headers) as response:
            text = await response.read()
            if response.status != expect:
                return f"HTTP {response.status}: {text[:200]!r}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class Answer:
    answered_at: float  # unix time when the answer was read
    status: int
    document: Any


async def fixed_rate(
    session: aiohttp.ClientSession, url: str, make: MakeRequest, rate: float, seconds: float
) -> tuple[list[Answer], float]:
    """POSTs at `rate` per second for `seconds`, each request as soon as it is due
    whatever the earlier ones are doing; returns the answers and the achieved rate."""
    total = max(1, round(rate * seconds))
    started = time.perf_counter()
    tasks: list[asyncio.Task[Answer]] = []
    for number in range(total):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_post_for_answer(session, url, make(number))))
    sent_in = time.perf_counter() - started
    answers = await asyncio.gather(*tasks)
    achieved = (total - 1) / sent_in if total > 1 and sent_in > 0 else rate
    return list(answers), achieved


async def _post_for_answer(session: aiohttp.ClientSession, url: str, request: Request) -> Answer:
    body, headers = request
    try:
        async with session.post(url, data=body, headers=headers) as response:
            document = await response.json(content_type=None)
            return Answer(time.time(), response.status, document)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Answer(time.time(), 0, f"{type(exc).__name__}: {exc}")
