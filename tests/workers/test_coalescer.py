"""The worker's group commit (`app/core/coalescer.py`), in plain asyncio: who shares a batch,
what each caller gets back, where an error goes, and how large a batch may grow."""

import asyncio
from collections.abc import Sequence

import pytest

from app.core.coalescer import Coalescer


class BatchFailed(Exception):
    pass


class Recorder:
    """A `handle` that notes every batch it is given and answers `result:<item>` per item.

    While `gate` is clear a batch waits inside `handle` (the transaction in flight), so
    that more callers can queue up behind it; `entered` is set once a batch is inside.
    A batch holding an item of `fail_on` raises instead of answering."""

    def __init__(self, *, fail_on: Sequence[int] = ()) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.fail_on = set(fail_on)

    async def handle(self, items: Sequence[int]) -> list[str]:
        self.batches.append(list(items))
        self.entered.set()
        await self.gate.wait()
        failing = sorted(self.fail_on.intersection(items))
        if failing:
            raise BatchFailed(f"batch with {failing}")
        return [f"result:{item}" for item in items]

    def hold(self) -> None:
        """The next batch stays in flight until `release`."""
        self.gate.clear()
        self.entered.clear()

    def release(self) -> None:
        self.gate.set()


async def settle() -> None:
    """Lets every task that is ready run until it waits again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def in_flight(
    recorder: Recorder, coalescer: Coalescer[int, str], *items: int
) -> list[asyncio.Task[str]]:
    """Submits `items` as concurrent callers and waits until their batch is inside handle."""
    callers = [asyncio.create_task(coalescer.submit(item)) for item in items]
    await asyncio.wait_for(recorder.entered.wait(), timeout=5)
    return callers


def queue(coalescer: Coalescer[int, str], *items: int) -> list[asyncio.Task[str]]:
    return [asyncio.create_task(coalescer.submit(item)) for item in items]


async def test_a_lone_caller_is_handled_at_once_in_a_batch_of_its_own() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)

    caller = asyncio.create_task(coalescer.submit(7))
    await settle()  # a few turns of the loop, no clock time: nothing waits for company

    assert recorder.batches == [[7]]
    assert caller.done()
    assert caller.result() == "result:7"


async def test_callers_submitting_in_the_same_tick_share_one_batch_in_their_order() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)

    results = await asyncio.gather(*(coalescer.submit(item) for item in (5, 3, 9, 1)))

    assert recorder.batches == [[5, 3, 9, 1]]
    assert results == ["result:5", "result:3", "result:9", "result:1"]


async def test_each_caller_gets_the_result_of_its_own_item() -> None:
    async def negate(items: Sequence[int]) -> list[int]:
        return [-item for item in items]

    coalescer: Coalescer[int, int] = Coalescer(negate)
    items = [4, 8, 15, 16, 23, 42, 0, -1]

    results = await asyncio.gather(*(coalescer.submit(item) for item in items))

    assert results == [-item for item in items]


async def test_callers_arriving_while_a_batch_is_in_flight_share_the_next_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)
    recorder.hold()
    first = await in_flight(recorder, coalescer, 1)

    later = queue(coalescer, 2, 3, 4)
    await settle()
    # Nothing waits for the first batch to grow, and nothing runs beside it.
    assert recorder.batches == [[1]]
    assert not any(caller.done() for caller in first + later)

    recorder.release()
    results = await asyncio.wait_for(asyncio.gather(*first, *later), timeout=5)

    assert recorder.batches == [[1], [2, 3, 4]]
    assert results == ["result:1", "result:2", "result:3", "result:4"]


async def test_a_caller_after_the_queue_drained_starts_a_new_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)

    assert await coalescer.submit(1) == "result:1"
    await settle()  # the first batch's runner has finished
    assert await asyncio.wait_for(coalescer.submit(2), timeout=5) == "result:2"

    assert recorder.batches == [[1], [2]]


async def test_an_error_in_handle_reaches_every_caller_of_that_batch_only() -> None:
    recorder = Recorder(fail_on=[1])
    coalescer = Coalescer(recorder.handle)
    recorder.hold()
    failing = await in_flight(recorder, coalescer, 1, 2)
    later = queue(coalescer, 3, 4)
    await settle()

    recorder.release()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*failing, *later, return_exceptions=True), timeout=5
    )

    assert recorder.batches == [[1, 2], [3, 4]]
    first_error, second_error, *results = outcomes
    assert isinstance(first_error, BatchFailed)
    assert str(first_error) == "batch with [1]"
    assert second_error is first_error  # the batch's one error, for each of its callers
    assert results == ["result:3", "result:4"]


async def test_a_failed_batch_does_not_stop_later_callers_from_being_served() -> None:
    recorder = Recorder(fail_on=[1])
    coalescer = Coalescer(recorder.handle)

    with pytest.raises(BatchFailed):
        await asyncio.wait_for(coalescer.submit(1), timeout=5)
    await settle()

    assert await asyncio.wait_for(coalescer.submit(2), timeout=5) == "result:2"
    assert recorder.batches == [[1], [2]]


async def test_max_batch_caps_each_batch_and_keeps_the_order() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle, max_batch=3)

    results = await asyncio.gather(*(coalescer.submit(item) for item in range(1, 9)))

    assert recorder.batches == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert results == [f"result:{item}" for item in range(1, 9)]


async def test_max_batch_also_splits_the_callers_queued_behind_a_batch_in_flight() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle, max_batch=2)
    recorder.hold()
    first = await in_flight(recorder, coalescer, 1, 2)
    later = queue(coalescer, 3, 4, 5, 6, 7)
    await settle()
    assert recorder.batches == [[1, 2]]

    recorder.release()
    results = await asyncio.wait_for(asyncio.gather(*first, *later), timeout=5)

    assert recorder.batches == [[1, 2], [3, 4], [5, 6], [7]]
    assert results == [f"result:{item}" for item in range(1, 8)]


async def test_a_caller_cancelled_while_queued_keeps_its_item_in_the_next_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)
    recorder.hold()
    first = await in_flight(recorder, coalescer, 1)
    gone, stays = queue(coalescer, 2, 3)
    await settle()

    gone.cancel()
    await settle()
    recorder.release()

    assert await asyncio.wait_for(asyncio.gather(*first, stays), timeout=5) == [
        "result:1",
        "result:3",
    ]
    assert gone.cancelled()
    # Like a worker that dies: the item is still handled, only its answer has nobody.
    assert recorder.batches == [[1], [2, 3]]


async def test_a_caller_cancelled_while_its_batch_runs_leaves_the_others_their_results() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.handle)
    recorder.hold()
    gone, stays = await in_flight(recorder, coalescer, 1, 2)

    gone.cancel()
    await settle()
    recorder.release()

    assert await asyncio.wait_for(stays, timeout=5) == "result:2"
    assert gone.cancelled()
    assert recorder.batches == [[1, 2]]
    # And the coalescer still serves whoever comes next.
    assert await asyncio.wait_for(coalescer.submit(3), timeout=5) == "result:3"
    assert recorder.batches == [[1, 2], [3]]


async def test_a_handle_that_answers_too_few_results_fails_every_caller_of_the_batch() -> None:
    async def short(items: Sequence[int]) -> list[str]:
        return ["only one"]

    coalescer: Coalescer[int, str] = Coalescer(short)
    outcomes = await asyncio.gather(
        *(coalescer.submit(item) for item in (1, 2, 3)), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [RuntimeError] * 3
    assert str(outcomes[0]) == "1 results for 3 items"
    assert await coalescer.submit(4) == "only one"  # the next batch of one is served
