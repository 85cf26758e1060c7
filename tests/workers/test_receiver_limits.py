"""What a hostile receiver can make a worker do (docs/api.md#deliveries: the body stored cut
at 1 KiB; STOREHOOKS_DELIVERY_TIMEOUT_SECONDS, the whole-request timeout): an endless or
huge answer is cut at 1 KiB and abandoned, not read; an answer trickled a byte a second is
cut at the delivery timeout.

The receivers are real asyncio servers on 127.0.0.1 that write the raw HTTP answer
themselves and count what the worker let them write.
"""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.worker import Worker

from app.core.delivery_states import Claim
from app.core.enums import DeliveryKind, HttpMethod, PayloadType
from app.core.settings import Settings
from app.core.signing import generate_secret
from tests.conftest import Tenant
from tests.workers.conftest import post_purchase, wait_for_delivery
from workers.deliver import RESPONSE_BODY_LIMIT, send
from workers.transport import make_transport

TIMEOUT = 2  # delivery_timeout_seconds of tests/workers/conftest.py
TIMED_OUT = f"Timed out: no complete answer within {TIMEOUT} s."
CHUNK = b"x" * (64 * 1024)
HUGE = 50 * 1024 * 1024
ENDLESS = 1024 * 1024 * 1024  # "endless": a gibibyte, far more than a worker could take in time
SNDBUF = 64 * 1024
FAR_BELOW = 4 * 1024 * 1024  # the peer's receive buffer and our small send buffer


class RawReceiver:
    """Reads each request (head and Content-Length body), then hands the connection to
    `respond`. Counts the bytes of the answer that the peer accepted, and notes when the
    peer went away before the answer was complete."""

    def __init__(self) -> None:
        self.respond: Callable[
            [RawReceiver, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]
        ] = endless
        self.requests = 0
        self.bytes_written = 0
        self.complete = False
        self.gone = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def write(self, writer: asyncio.StreamWriter, data: bytes, *, body: bool = True) -> None:
        writer.write(data)
        await writer.drain()
        if body:
            self.bytes_written += len(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        # A small send buffer: what the peer did not read stays here, not in the kernel.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests += 1
            await self.respond(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.gone.set()
        finally:
            self._tasks.discard(task)
            writer.close()

    async def __aenter__(self) -> "RawReceiver":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


async def endless(
    receiver: RawReceiver, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """200, then 64 KiB chunks for as long as the peer takes them (up to ENDLESS)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    await receiver.write(writer, head, body=False)
    framed = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    while receiver.bytes_written < ENDLESS:
        await receiver.write(writer, framed)
    await receiver.write(writer, b"0\r\n\r\n", body=False)
    receiver.complete = True


async def huge(
    receiver: RawReceiver, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """200 with a Content-Length of 50 MiB, written as fast as the peer takes it."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % HUGE
    await receiver.write(writer, head, body=False)
    while receiver.bytes_written < HUGE:
        await receiver.write(writer, CHUNK)
    receiver.complete = True


async def _trickle(
    receiver: RawReceiver,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    data: bytes,
    *,
    body: bool,
) -> None:
    for index in range(len(data)):
        await receiver.write(writer, data[index : index + 1], body=body)
        # A second's pause that notices at once when the peer hangs up.
        with contextlib.suppress(TimeoutError):
            if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                raise ConnectionResetError("the peer hung up")


async def trickled_body(
    receiver: RawReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """The head at once, then a 100-byte body one byte a second."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
    await receiver.write(writer, head, body=False)
    await _trickle(receiver, reader, writer, b"y" * 100, body=True)
    receiver.complete = True


async def trickled_head(
    receiver: RawReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """The status line and headers themselves, one byte a second."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    await _trickle(receiver, reader, writer, answer, body=False)
    receiver.complete = True


@pytest.fixture
async def raw_receiver() -> AsyncIterator[RawReceiver]:
    async with RawReceiver() as running:
        yield running


def claim_for(url: str) -> Claim:
    return Claim(
        delivery_id="dl_limits",
        webhook_id="wh_limits",
        number=1,
        attempt_limit=1,
        kind=DeliveryKind.EVENT,
        url=url,
        method=HttpMethod.POST,
        payload_type=PayloadType.JSON,
        payload={"type": "purchase", "epoch_timestamp": 0, "data": {}},
        secrets=[generate_secret()],
    )


def client_settings() -> Settings:
    return Settings(allow_private_networks=True, delivery_timeout_seconds=TIMEOUT)


async def wait_for_first_attempt_error(tenant: Tenant, delivery_id: str) -> dict[str, Any]:
    """Polls until the first attempt has been recorded with an error."""
    deadline = time.monotonic() + 10
    while True:
        delivery = await tenant.fetch(f"/deliveries/{delivery_id}")
        if delivery["attempts"] and delivery["attempts"][0]["error"] is not None:
            return delivery
        assert time.monotonic() < deadline, delivery
        await asyncio.sleep(0.05)


# --- a flood of an answer ----------------------------------------------------------------


async def test_an_endless_answer_is_stored_cut_at_1_kib_and_abandoned(
    tenant: Tenant, raw_receiver: RawReceiver, worker: Worker
) -> None:
    raw_receiver.respond = endless
    await tenant.subscribed_webhook(url=raw_receiver.url)
    delivery_id = await post_purchase(tenant)

    delivery = await wait_for_delivery(tenant, delivery_id)

    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 200
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["response_body"] == "x" * RESPONSE_BODY_LIMIT
    assert attempt["duration_ms"] < 1000  # far from the 2 s timeout
    await asyncio.wait_for(raw_receiver.gone.wait(), timeout=5)
    assert raw_receiver.requests == 1
    assert not raw_receiver.complete
    assert raw_receiver.bytes_written < FAR_BELOW


async def test_a_50_mib_answer_is_not_read_past_1_kib(raw_receiver: RawReceiver) -> None:
    raw_receiver.respond = huge
    async with make_transport(client_settings()) as transport:
        started = time.perf_counter()
        outcome = await send(transport, claim_for(raw_receiver.url), TIMEOUT)
        elapsed = time.perf_counter() - started
    await asyncio.wait_for(raw_receiver.gone.wait(), timeout=5)

    assert outcome.error_class is None
    assert outcome.status_code == 200
    assert outcome.error is None
    assert outcome.response_body == "x" * RESPONSE_BODY_LIMIT
    assert elapsed < 1.0
    assert raw_receiver.requests == 1
    assert not raw_receiver.complete
    assert raw_receiver.bytes_written < FAR_BELOW < HUGE


# --- a trickle of an answer ----------------------------------------------------------------


async def test_a_body_trickled_a_byte_a_second_is_cut_at_the_timeout(
    tenant: Tenant, raw_receiver: RawReceiver, worker: Worker
) -> None:
    raw_receiver.respond = trickled_body
    await tenant.subscribed_webhook(url=raw_receiver.url)
    delivery_id = await post_purchase(tenant)

    delivery = await wait_for_first_attempt_error(tenant, delivery_id)

    assert delivery["status"] == "pending"  # a failed attempt; a retry follows
    assert delivery["last_error"] == TIMED_OUT
    first = delivery["attempts"][0]
    assert first["error"] == TIMED_OUT
    # The status line arrived at once, so it is recorded; the answer never completed.
    assert first["status_code"] == 200
    assert 1900 <= first["duration_ms"] < 3000
    await asyncio.wait_for(raw_receiver.gone.wait(), timeout=3)
    assert not raw_receiver.complete
    assert raw_receiver.bytes_written <= 4


async def test_a_head_trickled_a_byte_a_second_is_cut_at_the_timeout(
    raw_receiver: RawReceiver,
) -> None:
    """No single read waits long (each byte comes within a second), so only the
    whole-request deadline can end it."""
    raw_receiver.respond = trickled_head
    async with make_transport(client_settings()) as transport:
        outcome = await send(transport, claim_for(raw_receiver.url), TIMEOUT)
    await asyncio.wait_for(raw_receiver.gone.wait(), timeout=3)

    assert outcome.error_class == "timeout"
    assert outcome.error == TIMED_OUT
    assert outcome.status_code is None
    assert outcome.response_body is None
    assert 1900 <= outcome.duration_ms < 3000
    assert raw_receiver.requests == 1
    assert not raw_receiver.complete
