"""A worker's attempts in flight: each from its claim to its record, and on to the next
attempt that the record hands off, so that a webhook's `max_in_flight` slots stay full.

Attempts start in two ways. Delivery jobs taken from the queue (`app/core/queue.py`)
are claimed in the database and sent. And every record of a finished attempt claims, in
the same transaction, the webhook's next due deliveries for its free slots
(`Bookkeeper.record`): the coroutine that sent the finished attempt carries on with one
of them, and any others start beside it. The worker's `capacity` bounds the attempts in
flight at once; the database's claim bounds each webhook's.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import httpx
from opentelemetry.trace import SpanContext, Tracer

from app.core.delivery_states import Claim, Outcome
from workers import spans
from workers.bookkeeping import Bookkeeper, Recorded
from workers.deliver import report, send

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class Dispatcher:
    def __init__(
        self,
        bookkeeper: Bookkeeper,
        transport: httpx.AsyncBaseTransport,
        timeout_seconds: float,
        capacity: int,
        tracer: Tracer | None = None,
    ) -> None:
        """`tracer`: spans for each claim, attempt, send and record (None: tracing off)."""
        self._bookkeeper = bookkeeper
        self._tracer = tracer
        self._transport = transport
        self._timeout = timeout_seconds
        self._capacity = capacity
        self._in_flight = 0
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        # How tasks are started; the arq worker registers them as its own, so that
        # stopping the worker waits for (and in the end cancels) them.
        self.spawn: Spawn = self._spawn_own
        bookkeeper.room = self._room_beside

    @property
    def room(self) -> int:
        """How many more attempts this worker can start now."""
        return 0 if self._closed else max(self._capacity - self._in_flight, 0)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def close(self) -> None:
        """Take nothing new: the attempts in flight finish, none is handed on."""
        self._closed = True

    def start(self, delivery_ids: Iterable[str]) -> None:
        """Claims and sends each delivery taken from the queue, each in a task of its own."""
        for delivery_id in delivery_ids:
            self._launch(self.deliver(delivery_id))

    async def deliver(self, delivery_id: str) -> None:
        """This delivery's next attempt, if it can be claimed now, and then whatever the
        records hand on; returns when nothing is left to carry on with."""
        claimed_by: SpanContext | None = None
        if self._tracer is None:
            claim = await self._bookkeeper.claim(delivery_id)
        else:
            with spans.claiming(self._tracer, delivery_id) as span:
                claim = await self._bookkeeper.claim(delivery_id)
            claimed_by = span.get_span_context()
        if claim is not None:
            await self._carry_on(claim, claimed_by)

    async def wait(self) -> None:
        """Until the tasks this dispatcher started itself have ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _room_beside(self, finishing: int) -> int:
        return 0 if self._closed else finishing + self.room

    def _launch(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._in_flight += 1
        task = self.spawn(self._guarded(coroutine))
        task.add_done_callback(self._ended)

    def _ended(self, _task: "asyncio.Task[None]") -> None:
        self._in_flight -= 1

    def _spawn_own(self, coroutine: Coroutine[Any, Any, None]) -> "asyncio.Task[None]":
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        except Exception:  # the database or Redis failed: the lease and the sweeper recover
            logger.exception("an attempt's bookkeeping failed; the sweeper will retry it")

    async def _carry_on(self, claim: Claim, claimed_by: SpanContext | None = None) -> None:
        current: Claim | None = claim
        while current is not None:
            outcome, recorded, claimed_by = await self._attempt(current, claimed_by)
            report(current, outcome)
            for beside in recorded.next_claims[1:]:
                self._launch(self._carry_on(beside, claimed_by))
            current = recorded.next_claims[0] if recorded.next_claims else None

    async def _attempt(
        self, claim: Claim, claimed_by: SpanContext | None
    ) -> tuple[Outcome, Recorded, SpanContext | None]:
        """Sends and records one attempt; with tracing, also the span of the record,
        which claimed whatever it hands on."""
        if self._tracer is None:
            outcome = await send(self._transport, claim, self._timeout)
            return outcome, await self._bookkeeper.record(claim, outcome), None
        with spans.attempting(self._tracer, claim, claimed_by):
            outcome = await send(self._transport, claim, self._timeout, self._tracer)
            with spans.recording(self._tracer) as span:
                recorded = await self._bookkeeper.record(claim, outcome)
        return outcome, recorded, span.get_span_context()


async def deliver(ctx: dict[str, Any], delivery_id: str) -> None:
    """The arq job for one delivery (the worker takes delivery jobs from the queue itself,
    see `app/core/queue.py`; this runs one that reaches arq's own job runner)."""
    dispatcher: Dispatcher = ctx["dispatcher"]
    await dispatcher.deliver(delivery_id)
