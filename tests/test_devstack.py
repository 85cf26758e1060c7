"""`make run` as a newcomer runs it (scripts/run.sh, then `storehooks dev` of
app/devstack.py), as a real process tree: a Redis of its own on a port it chose, a
worker that is started again when it is killed and still delivers, listeners on
127.0.0.1 only, and Ctrl-C stopping every process it started."""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ROOT, free_port
from tests.support.processes import answers_http, listening_addresses, wait_until
from tests.support.receivers import Receiver


class Stack:
    """`make run` started in a session of its own, as a terminal would run it."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.api_port = free_port()
        self.metrics_port = free_port()
        self.environment = {
            name: value for name, value in os.environ.items() if not name.startswith("STOREHOOKS_")
        } | {
            "STOREHOOKS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}",
            "STOREHOOKS_PORT": str(self.api_port),
            "STOREHOOKS_WORKER_METRICS_PORT": str(self.metrics_port),
            "STOREHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            **settings,
        }
        self.log = tmp_path / "make-run.log"
        with self.log.open("wb") as output:
            self.make = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=ROOT,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.seen: set[int] = set()  # every process of the tree, for the clean-up

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def said(self, pattern: str) -> list[str]:
        return re.findall(pattern, self.log.read_text(errors="replace"))

    def pids_of(self, name: str) -> list[int]:
        return [int(pid) for pid in self.said(rf"storehooks dev: {name} running \(pid (\d+)\)")]

    def descendants(self) -> set[int]:
        """The processes below `make`, from the kernel's own records."""
        found: set[int] = set()
        parents = [self.make.pid]
        while parents:
            for task in Path(f"/proc/{parents.pop()}/task").glob("*"):
                try:
                    children = {int(pid) for pid in (task / "children").read_text().split()}
                except FileNotFoundError:  # the task ended meanwhile
                    continue
                found |= children
                parents.extend(children)
        self.seen |= found
        return found

    def storehooks(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.environment,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def kill_everything(self) -> None:
        self.descendants()
        if self.make.poll() is None:
            os.killpg(self.make.pid, signal.SIGKILL)
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.make.wait(timeout=10)


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent to read its exit status."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().rstrip("\0").split("\0")


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def start(**settings: str) -> Stack:
        started.append(Stack(tmp_path, **settings))
        return started[-1]

    yield start
    for stack in started:
        stack.kill_everything()


def test_make_run_owns_its_redis_restarts_a_killed_worker_and_stops_on_ctrl_c(
    start_stack: Callable[..., Stack],
) -> None:
    stack = start_stack()
    metrics = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    wait_until(lambda: answers_http(f"{stack.api}/healthz"), 60, "the API never answered")
    wait_until(lambda: answers_http(metrics), 30, "the worker's metrics never answered")

    # A Redis of its own, on a port it chose: never a Redis that happens to answer on 6379.
    (redis_url,) = stack.said(r"Redis of its own at (redis://127\.0\.0\.1:\d+/0)")
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    assert redis_port != 6379
    assert redis.Redis.from_url(redis_url).ping()
    (redis_pid,) = stack.pids_of("redis")
    # Redis sets its process title to "<binary> <address>:<port>".
    assert cmdline(redis_pid)[0].endswith(f"redis-server 127.0.0.1:{redis_port}")
    # Every listener is on this machine only.
    for port in (stack.api_port, stack.metrics_port, redis_port):
        assert listening_addresses(port) == {"127.0.0.1"}, port

    # kill -9 the worker: the stack stays up, says so, and starts a new one.
    (worker,) = stack.pids_of("worker")
    assert "worker" in cmdline(worker)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: len(stack.pids_of("worker")) == 2, 15, "the worker was not restarted")
    restarted = stack.pids_of("worker")[1]
    assert restarted != worker and alive(restarted)
    assert stack.said(rf"worker \(pid {worker}\) was killed by SIGKILL; starting it again in")
    assert answers_http(f"{stack.api}/healthz")
    assert stack.pids_of("api") and len(stack.pids_of("api")) == 1  # the API was left alone
    wait_until(lambda: answers_http(metrics), 30, "the new worker's metrics never answered")

    # ...and the new worker delivers.
    key = json.loads(stack.storehooks("accounts", "create", "Dev", "--json"))["api_key"]
    with (
        Receiver() as receiver,
        httpx.Client(
            base_url=stack.api, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as api,
    ):
        webhook = api.post(
            "/webhooks",
            json={
                "name": "dev",
                "url": receiver.url,
                "http_method": "POST",
                "payload_type": "json",
            },
        ).json()
        api.post(
            f"/webhooks/{webhook['id']}/actions", json={"event_type": "purchase", "app_id": "a"}
        ).raise_for_status()
        event = api.post("/events", json={"type": "purchase", "app_id": "a"}).json()
        assert event["deliveries"] == 1
        (received,) = receiver.wait_for(1, timeout=20)
        assert json.loads(received.body)["payload"]["event_id"] == event["id"]

    # Ctrl-C (SIGINT to the terminal's process group) stops every process it started.
    tree = stack.descendants()
    assert {redis_pid, restarted, *stack.pids_of("api")} <= tree
    os.killpg(stack.make.pid, signal.SIGINT)
    stack.make.wait(timeout=30)
    wait_until(
        lambda: not any(alive(pid) for pid in tree),
        15,
        f"left running: {[cmdline(pid) for pid in tree if alive(pid)]}",
    )
    assert stack.said(r"storehooks dev: stopping")
    assert not answers_http(f"{stack.api}/healthz")


def test_make_run_uses_the_redis_it_is_given_starts_none_and_stops_on_sigterm(
    start_stack: Callable[..., Stack], redis_server: str
) -> None:
    stack = start_stack(STOREHOOKS_REDIS_URL=redis_server)
    wait_until(lambda: answers_http(f"{stack.api}/healthz"), 60, "the API never answered")
    ready = httpx.get(f"{stack.api}/readyz", timeout=5)
    assert ready.json()["checks"]["redis"] == "ok", ready.text

    tree = stack.descendants()
    assert stack.said(rf"using the Redis at {re.escape(redis_server)}")
    assert not stack.pids_of("redis")
    assert not [pid for pid in tree if "redis-server" in cmdline(pid)[0]]
    (supervisor,) = [pid for pid in tree if cmdline(pid)[-1] == "dev"]
    os.kill(supervisor, signal.SIGTERM)
    stack.make.wait(timeout=30)
    wait_until(
        lambda: not any(alive(pid) for pid in tree),
        15,
        f"left running: {[cmdline(pid) for pid in tree if alive(pid)]}",
    )
    assert redis.Redis.from_url(redis_server).ping()  # the given Redis is not ours to stop
