"""The fault test (docs/operations.md): many processes, a killed worker and a Redis
restart, and still every delivery succeeds and nothing is sent twice beyond what was in
flight at the kill.

2 API processes and 2 workers (real `storehooks serve` / `storehooks worker`
subprocesses) share one database and one Redis; 3 receivers, one failing its first
answers and one slow; 2,000 events, each to all 3 receivers. Mid-run a worker is
SIGKILLed and replaced, and Redis is restarted empty. Run with `make fault-test`
(on PostgreSQL when STOREHOOKS_TEST_DATABASE_URL is set, as in CI).
"""

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import free_port, redis_server_binary, run_cli
from tests.support.databases import fetch_all
from tests.support.processes import Processes, answers_http, wait_until
from tests.support.receivers import Answer, Receiver

pytestmark = pytest.mark.fault

EVENTS = 2_000
FAILING_FIRST = 150  # answers of 500 before the failing receiver recovers
SLOW_SECONDS = 0.2
DRAIN_TIMEOUT = 300.0


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _pings(self.url), 10, "Redis did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


async def test_kill_a_worker_and_restart_redis_mid_run(
    database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": database_url,
        "STOREHOOKS_REDIS_URL": redis_server.url,
        "STOREHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "STOREHOOKS_RETRY_BASE_SECONDS": "0.2",
        "STOREHOOKS_RETRY_MAX_DELAY_SECONDS": "1",
        "STOREHOOKS_DELIVERY_TIMEOUT_SECONDS": "2",
        "STOREHOOKS_WORKER_METRICS_PORT": "0",
    }
    processes = Processes(environment, tmp_path)
    ok = Receiver()
    failing = Receiver()
    failing.answer(*([500] * FAILING_FIRST))
    slow = Receiver()
    slow.default = Answer(delay=SLOW_SECONDS)
    with ok, failing, slow:
        try:
            report = await _run(processes, redis_server, database_url, (ok, failing, slow))
        finally:
            processes.stop_all()
    print("\nfault test:", ", ".join(f"{key} {value}" for key, value in report.items()))


async def _run(
    processes: Processes,
    redis_server: RedisServer,
    database_url: str,
    receivers: tuple[Receiver, Receiver, Receiver],
) -> dict[str, Any]:
    account = run_cli("accounts", "create", "Fault", "--json", database_url=database_url)
    assert account.returncode == 0, account.stderr
    key = json.loads(account.stdout)["api_key"]

    api_ports = [free_port(), free_port()]
    for number, port in enumerate(api_ports, 1):
        processes.storehooks(f"api{number}", "serve", "--port", str(port))
    for number in (1, 2):
        processes.storehooks(f"worker{number}", "worker")
    apis = [f"http://127.0.0.1:{port}" for port in api_ports]
    for api in apis:
        wait_until(lambda api=api: answers_http(f"{api}/healthz"), 30, f"{api} did not start")

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        for receiver in receivers:
            hook = await client.post(
                f"{apis[0]}/webhooks",
                json={
                    "name": f"r{receiver.port}",
                    "url": receiver.url,
                    "http_method": "POST",
                    "payload_type": "json",
                },
            )
            assert hook.status_code == 201, hook.text
            action = await client.post(
                f"{apis[0]}/webhooks/{hook.json()['id']}/actions",
                json={"event_type": "purchase", "app_id": "app_fault"},
            )
            assert action.status_code == 201, action.text

        started = time.monotonic()
        in_flight_at_kill = await _post_events_with_faults(
            client, apis, processes, redis_server, database_url
        )
        posted = time.monotonic()

    expected = EVENTS * len(receivers)
    drained = await _wait_for_all_succeeded(database_url, expected)
    finished = time.monotonic()

    delivery_ids = {row[0] for row in await fetch_all(database_url, "SELECT id FROM deliveries")}
    received: Counter[str] = Counter()
    answered_200: Counter[str] = Counter()
    for receiver in receivers:
        for request in receiver.requests:
            received[request.headers["webhook-id"]] += 1
            if request.answered == 200:
                answered_200[request.headers["webhook-id"]] += 1
    duplicates = sum(count - 1 for count in answered_200.values() if count > 1)
    interrupted = (
        await fetch_all(
            database_url, "SELECT count(*) FROM delivery_attempts WHERE error LIKE 'Interrupted%'"
        )
    )[0][0]

    assert drained == {"succeeded": expected}, drained
    assert len(delivery_ids) == expected
    assert set(received) == delivery_ids, "a delivery never reached its receiver"
    assert set(answered_200) == delivery_ids
    assert duplicates <= in_flight_at_kill, (duplicates, in_flight_at_kill)
    assert interrupted <= in_flight_at_kill, (interrupted, in_flight_at_kill)
    return {
        "events": EVENTS,
        "deliveries": expected,
        "receipts": sum(received.values()),
        "duplicate_receipts": duplicates,
        "in_flight_at_kill": in_flight_at_kill,
        "interrupted_attempts": interrupted,
        "seconds_to_post": round(posted - started, 1),
        "seconds_to_drain": round(finished - started, 1),
    }


async def _post_events_with_faults(
    client: httpx.AsyncClient,
    apis: list[str],
    processes: Processes,
    redis_server: RedisServer,
    database_url: str,
) -> int:
    """Posts the events from 20 concurrent senders over both APIs; a third of the way in
    it kills a worker and starts another, two thirds in it restarts Redis."""
    in_flight_at_kill: int | None = None
    redis_restarted = False
    sent = 0

    async def send(number: int) -> None:
        response = await client.post(
            f"{apis[number % 2]}/events",
            json={"type": "purchase", "app_id": "app_fault", "data": {"n": number}},
        )
        assert response.status_code == 202, response.text

    for batch_start in range(0, EVENTS, 20):
        await asyncio.gather(*(send(n) for n in range(batch_start, batch_start + 20)))
        sent += 20
        if in_flight_at_kill is None and sent >= EVENTS // 3:
            in_flight_at_kill = await _kill_a_worker(processes, database_url)
        if not redis_restarted and sent >= 2 * EVENTS // 3:
            redis_server.stop()
            await asyncio.sleep(0.5)
            redis_server.start()
            redis_restarted = True
    assert in_flight_at_kill is not None and redis_restarted, "a fault was not injected"
    return in_flight_at_kill


IN_FLIGHT = "SELECT count(*) FROM delivery_attempts WHERE status_code IS NULL AND error IS NULL"


async def _kill_a_worker(processes: Processes, database_url: str) -> int:
    """SIGKILLs worker1 while attempts are in flight: with a dozen of them, spread over
    both workers, the killed one almost surely has some (waits up to 10 s for them)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await fetch_all(database_url, IN_FLIGHT))[0][0] >= 12:
            break
        await asyncio.sleep(0.01)
    processes.running["worker1"].send_signal(signal.SIGKILL)
    processes.running["worker1"].wait(timeout=10)
    # Attempts claimed but without an outcome: the killed worker's sends in flight
    # (and the other worker's, so an upper bound).
    in_flight = int((await fetch_all(database_url, IN_FLIGHT))[0][0])
    processes.storehooks("worker3", "worker")
    return in_flight


async def _wait_for_all_succeeded(database_url: str, expected: int) -> dict[str, int]:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        rows = await fetch_all(
            database_url, "SELECT status, count(*) FROM deliveries GROUP BY status"
        )
        by_status = {str(status): int(count) for status, count in rows}
        if by_status == {"succeeded": expected} or time.monotonic() > deadline:
            return by_status
        await asyncio.sleep(0.5)
