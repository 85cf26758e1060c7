"""A real `storehooks serve` and `storehooks worker` while the database refuses writes
for a few seconds (docs/operations.md#processes): senders post events throughout; every
answer is a 202 or a 503 problem with Retry-After (never a 500, never a dropped
connection), /readyz is 503 naming the database during the fault and 200 after, every
acknowledged event is stored, and every one of its deliveries reaches the receiver."""

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, run_cli
from tests.support.databases import Databases, fetch_all
from tests.support.processes import Processes, answers_http, wait_until
from tests.support.receivers import Receiver

SENDERS = 4
BEFORE_SECONDS = 1.5
FAULT_SECONDS = 3.0
AFTER_SECONDS = 1.5
RECOVERY_TIMEOUT = 15.0
DRAIN_TIMEOUT = 60.0


@dataclass
class Outcomes:
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    refusals: list[httpx.Response] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # other statuses, dropped connections
    accepted_after_fault: int = 0


async def test_post_events_while_the_database_refuses_writes(
    databases: Databases, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    why_not = databases.why_writes_cannot_be_refused(tmp_path)
    if why_not is not None:
        pytest.skip(why_not)
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": database_url,
        "STOREHOOKS_REDIS_URL": redis_url,
        "STOREHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "STOREHOOKS_RETRY_BASE_SECONDS": "0.2",
        "STOREHOOKS_RETRY_MAX_DELAY_SECONDS": "1",
        "STOREHOOKS_WORKER_METRICS_PORT": "0",
    }
    processes = Processes(environment, tmp_path)
    receiver = Receiver()
    try:
        with receiver:
            report = await _run(processes, databases, database_url, receiver)
    finally:
        await databases.allow_writes(database_url)
        processes.stop_all()
    print("\nread-only database:", ", ".join(f"{k} {v}" for k, v in report.items()))


async def _run(
    processes: Processes, databases: Databases, database_url: str, receiver: Receiver
) -> dict[str, Any]:
    account = run_cli("accounts", "create", "Faults", "--json", database_url=database_url)
    assert account.returncode == 0, account.stderr
    key = json.loads(account.stdout)["api_key"]
    port = free_port()
    processes.storehooks("api", "serve", "--port", str(port))
    processes.storehooks("worker", "worker")
    api = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers_http(f"{api}/healthz"), 30, "the API did not start")

    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        await _subscribe(client, receiver)
        outcomes = Outcomes()
        fault = asyncio.Event()
        stop = asyncio.Event()
        senders = [
            asyncio.create_task(_send(client, outcomes, fault, stop)) for _ in range(SENDERS)
        ]
        await asyncio.sleep(BEFORE_SECONDS)
        await databases.refuse_writes(database_url)
        fault.set()
        not_ready = await _readiness_until(client, 503)
        await asyncio.sleep(FAULT_SECONDS)
        await databases.allow_writes(database_url)
        started_recovery = time.monotonic()
        await _readiness_until(client, 200)
        fault.clear()
        await asyncio.sleep(AFTER_SECONDS)
        stop.set()
        await asyncio.gather(*senders)
        recovery_seconds = time.monotonic() - started_recovery

    assert outcomes.unexpected == [], outcomes.unexpected[:10]
    assert set(outcomes.statuses) == {202, 503}, outcomes.statuses
    for refusal in outcomes.refusals:
        assert refusal.headers["content-type"] == "application/problem+json", refusal.headers
        assert refusal.headers["retry-after"] == "5", refusal.headers
        assert "retry later" in refusal.json()["detail"], refusal.text
    assert outcomes.accepted_after_fault > 0, "POST /events did not recover"
    reason = not_ready.json()["checks"]["database"]
    assert reason.startswith("error: SQLITE_") or reason == "error: SQLSTATE 25006", reason

    stored = {row[0] for row in await fetch_all(database_url, "SELECT id FROM events")}
    lost = outcomes.acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged events are not stored"
    deliveries = await _wait_for_all_sent(database_url, len(outcomes.acknowledged))
    received = {request.headers["webhook-id"] for request in receiver.requests}
    assert deliveries == received, "a delivery of an acknowledged event never arrived"

    api_log = (processes.logs / "api.log").read_text("utf-8", "replace")
    assert "Traceback" not in api_log, api_log[-3000:]
    worker_log = (processes.logs / "worker.log").read_text("utf-8", "replace")
    return {
        "acknowledged": len(outcomes.acknowledged),
        "stored": len(stored),
        "answered_503": outcomes.statuses[503],
        "readyz_during_fault": reason,
        "seconds_to_recover": round(recovery_seconds, 1),
        "api_log_fault_lines": api_log.count("cannot store"),
        "worker_log_tracebacks": worker_log.count("Traceback"),
    }


async def _subscribe(client: httpx.AsyncClient, receiver: Receiver) -> None:
    hook = await client.post(
        "/webhooks",
        json={"name": "r", "url": receiver.url, "http_method": "POST", "payload_type": "json"},
    )
    assert hook.status_code == 201, hook.text
    action = await client.post(
        f"/webhooks/{hook.json()['id']}/actions",
        json={"event_type": "purchase", "app_id": "app_faults"},
    )
    assert action.status_code == 201, action.text


async def _send(
    client: httpx.AsyncClient, outcomes: Outcomes, fault: asyncio.Event, stop: asyncio.Event
) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        body = {"type": "purchase", "app_id": "app_faults", "data": {"n": number}}
        try:
            response = await client.post("/events", json=body)
        except httpx.HTTPError as exc:
            outcomes.unexpected.append(f"{type(exc).__name__}: {exc}")
            continue
        outcomes.statuses[response.status_code] += 1
        if response.status_code == 202:
            outcomes.acknowledged.add(response.json()["id"])
            if not fault.is_set() and outcomes.statuses[503]:
                outcomes.accepted_after_fault += 1
        elif response.status_code == 503:
            outcomes.refusals.append(response)
            await asyncio.sleep(0.05)  # a busy client, not a tight loop
        else:
            outcomes.unexpected.append(f"{response.status_code}: {response.text}")


async def _readiness_until(client: httpx.AsyncClient, status: int) -> httpx.Response:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        response = await client.get("/readyz")
        if response.status_code == status:
            return response
        assert time.monotonic() < deadline, f"/readyz stayed {response.status_code}"
        await asyncio.sleep(0.1)


async def _wait_for_all_sent(database_url: str, events: int) -> set[str]:
    """The ids of the deliveries, once every one has succeeded (one per event)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        rows = await fetch_all(database_url, "SELECT id, status FROM deliveries")
        if len(rows) >= events and all(status == "succeeded" for _, status in rows):
            return {str(delivery_id) for delivery_id, _ in rows}
        assert time.monotonic() < deadline, Counter(status for _, status in rows)
        await asyncio.sleep(0.5)
