"""Request heads bounded in size (16 KiB, else 431) and time (else 408), against a real
`storehooks serve` spoken to over raw sockets (app/head_limit.py; docs/security.md,
Request heads)."""

import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.head_limit import MAX_HEAD_BYTES
from tests.conftest import free_port
from tests.support.databases import Databases
from tests.support.problems import assert_problem
from tests.support.processes import Processes, answers_http, wait_until

TIMEOUT = 1.0  # STOREHOOKS_HEADER_TIMEOUT_SECONDS of the server under test
REQUEST_LINE = b"GET /healthz HTTP/1.1\r\nHost: storehooks.test\r\n"


@dataclass
class Server:
    port: int
    pid: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def peak_memory_kib(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])


@pytest.fixture(scope="module")
async def server(
    databases: Databases, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    directory = tmp_path_factory.mktemp("header-limits")
    port = free_port()
    environment = {
        **os.environ,
        "STOREHOOKS_DATABASE_URL": await databases.migrated(directory),
        "STOREHOOKS_REDIS_URL": redis_server,
        "STOREHOOKS_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    processes = Processes(environment, directory)
    try:
        process = processes.storehooks("api", "serve", "--port", str(port))
        wait_until(
            lambda: answers_http(f"http://127.0.0.1:{port}/healthz"), 30, "the API did not start"
        )
        yield Server(port, process.pid)
    finally:
        processes.stop_all()


# --- raw HTTP ---------------------------------------------------------------------------


def head_of(size: int, shape: str) -> bytes:
    """A GET /healthz head of exactly `size` bytes (request line, headers, blank line)."""
    room = size - len(REQUEST_LINE) - len(b"\r\n")
    query = b""
    if shape == "one-header":
        headers = b"X-Pad: " + b"a" * (room - len(b"X-Pad: \r\n")) + b"\r\n"
    elif shape == "many-headers":
        line = b"X-Small: 0123456789abcdef\r\n"
        count, rest = divmod(room, len(line))
        headers = line * (count - 1) + b"X-Last: " + b"b" * (len(line) + rest - 10) + b"\r\n"
    else:  # "long-url": the request line alone
        query = b"?q=" + b"c" * (room - len(b"?q="))
        headers = b""
    head = REQUEST_LINE.replace(b"/healthz", b"/healthz" + query, 1) + headers + b"\r\n"
    assert len(head) == size
    return head


@dataclass
class Answer:
    raw: bytes
    closed: bool  # the server ended the connection (FIN or reset)
    seconds: float  # from the start of reading to the end

    def response(self) -> httpx.Response:
        head, _, body = self.raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = [(name, value) for name, _, value in (h.partition(": ") for h in header_lines)]
        return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def read_until_closed(sock: socket.socket, wait: float) -> Answer:
    """Everything the server sends within `wait` seconds, and whether it then closed."""
    started = time.monotonic()
    sock.settimeout(wait)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
        closed = True
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    return Answer(received, closed, time.monotonic() - started)


def read_one_answer(sock: socket.socket) -> httpx.Response:
    """One answer with a Content-Length, leaving the connection open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        .split(b":")[1]
        .strip()
    )
    while len(body) < length:
        body += sock.recv(65536)
    return Answer(head + b"\r\n\r\n" + body, False, 0).response()


def healthz_answers(server: Server) -> bool:
    with server.connect() as sock:
        sock.sendall(REQUEST_LINE + b"Connection: close\r\n\r\n")
        answer = read_until_closed(sock, 5)
    return answer.closed and answer.response().status_code == 200


SHAPES = ["one-header", "many-headers", "long-url"]


# --- size -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_a_head_of_exactly_16_kib_is_answered(server: Server, shape: str) -> None:
    with server.connect() as sock:
        sock.sendall(head_of(MAX_HEAD_BYTES, shape))
        response = read_one_answer(sock)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_head_one_byte_over_16_kib_is_431_and_the_connection_closed(
    server: Server, shape: str
) -> None:
    with server.connect() as sock:
        sock.sendall(head_of(MAX_HEAD_BYTES + 1, shape))
        answer = read_until_closed(sock, 5)
    assert answer.closed
    assert answer.seconds < 1
    response = answer.response()
    problem = assert_problem(response, 431)
    assert problem["title"] == "Request Header Fields Too Large"
    assert "16,384 bytes" in problem["detail"]
    assert response.headers["connection"] == "close"
    assert int(response.headers["content-length"]) == len(response.content)


def send_until_refused(server: Server, data: bytes, outcome: list[bytes | None]) -> None:
    """Send `data`; record what came back, or None if all of it was taken."""
    with server.connect() as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            try:
                outcome.append(read_until_closed(sock, 5).raw)
            except OSError:
                outcome.append(b"")
            return
        outcome.append(None)


@pytest.mark.parametrize("shape", ["one-header", "many-headers"])
def test_floods_of_header_bytes_are_cut_off_without_the_server_growing(
    server: Server, shape: str
) -> None:
    flood = 32 * 1024 * 1024
    if shape == "one-header":
        data = REQUEST_LINE + b"X-Flood: " + b"a" * flood
    else:
        data = REQUEST_LINE + b"X-A: b\r\n" * (flood // 8)
    peak_before = server.peak_memory_kib()
    outcomes: list[bytes | None] = []
    senders = [
        threading.Thread(target=send_until_refused, args=(server, data, outcomes)) for _ in range(4)
    ]
    started = time.monotonic()
    for sender in senders:
        sender.start()
    assert healthz_answers(server)  # served while the floods come in
    for sender in senders:
        sender.join(timeout=30)
    seconds = time.monotonic() - started
    # Each flood is refused long before its end (no kernel buffer holds 32 MiB), answered
    # 431 when the reset does not overtake the answer.
    assert len(outcomes) == 4 and None not in outcomes, outcomes
    for raw in outcomes:
        assert raw is not None and (raw == b"" or raw.startswith(b"HTTP/1.1 431 ")), raw
    assert seconds < 10
    assert server.peak_memory_kib() - peak_before < 16 * 1024  # 4 x 32 MiB, if they were kept
    assert healthz_answers(server)


# --- time -------------------------------------------------------------------------------


def trickle(sock: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send `data` a byte every 0.1 s until told to stop or refused."""
    for byte in data:
        if stop.wait(0.1):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


@pytest.mark.parametrize("manner", ["stalled", "trickled"])
def test_a_slow_head_is_408_at_the_timeout_while_others_are_served(
    server: Server, manner: str
) -> None:
    stop = threading.Event()
    with server.connect() as slow:
        connected = time.monotonic()
        slow.sendall(REQUEST_LINE[:10])
        if manner == "trickled":  # never idle: a byte every 0.1 s
            threading.Thread(target=trickle, args=(slow, REQUEST_LINE[10:] * 10, stop)).start()
        try:
            assert healthz_answers(server)
            assert time.monotonic() - connected < TIMEOUT  # answered while the slow one waits
            answer = read_until_closed(slow, 5)
        finally:
            stop.set()
    cut_after = time.monotonic() - connected
    assert answer.closed
    assert TIMEOUT * 0.9 <= cut_after <= TIMEOUT + 1.5, cut_after
    response = answer.response()
    problem = assert_problem(response, 408)
    assert problem["detail"] == "The request line and headers did not arrive within 1 s."
    assert response.headers["connection"] == "close"


def test_a_connection_that_sends_nothing_is_closed_at_the_timeout(server: Server) -> None:
    with server.connect() as idle:
        connected = time.monotonic()
        answer = read_until_closed(idle, 5)
    assert answer.closed
    assert answer.raw == b""  # nothing was asked: nothing is answered
    assert TIMEOUT * 0.9 <= time.monotonic() - connected <= TIMEOUT + 1.5


def test_a_stalled_second_request_on_a_kept_alive_connection_is_cut(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(REQUEST_LINE + b"\r\n")
        assert read_one_answer(sock).status_code == 200
        time.sleep(TIMEOUT / 2)  # idle between requests: uvicorn's keep-alive (5 s) rules
        sent = time.monotonic()
        sock.sendall(REQUEST_LINE[:20])
        answer = read_until_closed(sock, 5)
    assert answer.closed
    assert TIMEOUT * 0.9 <= time.monotonic() - sent <= TIMEOUT + 1.5
    assert_problem(answer.response(), 408)


def test_a_kept_alive_connection_is_not_cut_while_its_requests_arrive_in_time(
    server: Server,
) -> None:
    with server.connect() as sock:
        for _ in range(4):  # 4 requests over about 2 timeouts
            sock.sendall(REQUEST_LINE + b"\r\n")
            assert read_one_answer(sock).status_code == 200
            time.sleep(TIMEOUT / 2)
