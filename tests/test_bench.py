"""The benchmark's own pieces that need no running storehooks: the receiver's per-path
counts and its /delay endpoint, stage 7's sizing and violations, its table, the plots.
(The bench itself runs in `make bench-smoke`; no timing is asserted here.)"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.receiver import make_app
from bench.report import LATENCY, SLOTS, DatabaseResults, table
from bench.slots import Point, violations


@pytest.fixture
async def receiver() -> AsyncIterator[str]:
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def stats(session: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with session.get(f"{url}/stats") as response:
        found: dict[str, object] = await response.json()
        return found


async def test_delay_counts_the_requests_open_at_once_per_path(receiver: str) -> None:
    async with aiohttp.ClientSession() as session:

        async def post(path: str, number: int) -> int:
            headers = {"webhook-id": f"msg_{path}_{number}"}
            async with session.post(f"{receiver}{path}", data=b"{}", headers=headers) as r:
                return r.status

        statuses = await asyncio.gather(
            *(post("/delay/1000/a", number) for number in range(6)), post("/hook", 0)
        )
        assert statuses == [200] * 7
        found = await stats(session, receiver)
        assert found["paths"] == {
            "/delay/1000/a": {"requests": 6, "open": 0, "most_open": 6},
            "/hook": {"requests": 1, "open": 0, "most_open": 1},
        }
        assert found["distinct"] == 7

        async with session.delete(f"{receiver}/stats") as response:
            assert response.status == 204
        assert (await stats(session, receiver))["paths"] == {}


def test_a_point_is_sized_from_the_one_before_it() -> None:
    point = Point(delay_ms=1, max_in_flight=10)
    assert point.ideal_per_s == 10_000
    assert point.events(2.0, 3_000, rate_before=None) == 2_000  # 1,000/s for 2 s
    assert point.events(2.0, 3_000, rate_before=50.0) == 400  # 4 × 50/s for 2 s
    assert point.events(2.0, 3_000, rate_before=1.0) == 100  # 10 waves of 10
    assert Point(50, 100).events(2.0, 300, rate_before=None) == 300  # at most


def test_more_open_than_max_in_flight_is_a_violation_and_the_table_says_so() -> None:
    figures = {
        "50ms_mif10_events": 100.0,
        "50ms_mif10_deliveries_per_s": 150.0,
        "50ms_mif10_ideal_per_s": 200.0,
        "50ms_mif10_ratio": 0.75,
        "50ms_mif10_most_open": 11.0,
        "50ms_mif10_max_in_flight": 10.0,
    }
    assert violations(figures) == ["50ms_mif10: 11 open at once, max_in_flight 10"]
    assert violations(figures | {"50ms_mif10_most_open": 10.0}) == []

    result = DatabaseResults("sqlite")
    result.add(SLOTS, figures)
    printed = table(result)
    assert "VIOLATION" in printed
    assert "slots: 50 ms, max_in_flight 10 ≥ 90 % of 200/s" in printed


def test_the_plots_are_written_as_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the `bench` extra
    from bench.plots import write_plots

    result = DatabaseResults("sqlite")
    for delay in (1, 50):
        for limit in (1, 10):
            name = f"{delay}ms_mif{limit}"
            result.add(SLOTS, {f"{name}_deliveries_per_s": 5.0 * limit})
    result.samples[LATENCY] = [-0.5, 3.0, 9.0, 12.0, 40.0]

    written = write_plots([result], tmp_path / "stamp")

    assert [path.name for path in written] == ["stamp-slots.png", "stamp-latency.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
