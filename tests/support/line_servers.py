"""Receivers that run as programs of their own (scripts/echo_receiver.py, the receiving
guide's snippets): started as subprocesses on the test's event loop, read line by line
from their standard output, killed at the end whatever happens."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LineServer:
    process: asyncio.subprocess.Process

    async def line(self, timeout: float = 20.0) -> str:
        """The next line it printed (it must print one within `timeout`)."""
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert raw, f"the receiver exited (status {self.process.returncode}) before printing"
        return raw.decode("utf-8").rstrip("\n")

    async def json_document(self, timeout: float = 20.0) -> Any:
        """The next JSON document it printed, which may span several lines."""
        text = await self.line(timeout)
        while True:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                text += "\n" + await self.line(timeout)


async def accepts(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


@asynccontextmanager
async def line_server(
    *command: str,
    cwd: Path,
    env: dict[str, str],
    ready: str = "listening",
    port: int | None = None,
) -> AsyncIterator[LineServer]:
    """Runs `command` until it prints a line starting with `ready` (or, given `port`, until
    something accepts connections there, for a server that announces itself elsewhere),
    then yields it."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        # Inherited, so that pytest shows it with a failure: http.server logs every
        # request there, and a traceback goes there too.
        stderr=None,
    )
    server = LineServer(process)
    try:
        if port is None:
            first = await server.line(timeout=30)
            assert first.startswith(ready), f"{command[0]} printed {first!r}, not {ready!r}"
        else:
            await accepts(port)
        yield server
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
