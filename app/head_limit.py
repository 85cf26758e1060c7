"""Bounds a request's head (request line and headers) in size and in time, before the app.

uvicorn's httptools protocol has neither bound: httptools keeps a header's bytes until it
ends, so one endless header grows the process without limit, and uvicorn's keep-alive
timer is not armed until a first answer, so a client that trickles a head holds its
connection forever. `HeadLimitedProtocol` counts the head's bytes as they arrive and
answers `431` past `MAX_HEAD_BYTES`; a head that is not complete within the timeout is
answered `408`. Both close the connection: what the client sends next is not read.
"""

import asyncio
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import PROBLEM_CONTENT_TYPE

MAX_HEAD_BYTES = 16 * 1024
DEFAULT_TIMEOUT_SECONDS = 10.0


class HeadLimitedProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_seconds = DEFAULT_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes of the current head received so far; None while a body is being read.
        self._head_bytes: int | None = 0
        # When the awaited head must be complete (loop time); None when none is awaited.
        self._head_deadline: float | None = None
        # At most one timer per connection, left running across quick requests (cheaper
        # than a timer per request): when it fires it checks the deadline as it is then.
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()  # a connection that never sends a byte is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None and self._head_deadline is None:
            self._await_head()  # on a kept-alive connection: from the next head's first byte
        # While a head is open, feed the parser no more than the bytes the head may still
        # take, so it never holds more than the limit.
        while self._head_bytes is not None and data and not self.transport.is_closing():
            budget = self.max_head_bytes - self._head_bytes
            piece, data = data[:budget], data[budget:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self._head_bytes is not None and self._head_bytes >= self.max_head_bytes:
                limit = f"{self.max_head_bytes:,} bytes"
                self._refuse(431, f"The request line and headers are longer than {limit}.")
                return
        if data and not self.transport.is_closing():
            super().data_received(data)

    # Parser callbacks: a head begins, ends; the message (body included) ends.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # a pipelined head, begun after a body in one read
            self._await_head()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._head_deadline = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # A pipelined head starting in the same read as this message's end is counted
        # from the next read: at most one read's bytes go uncounted.
        self._head_bytes = 0
        super().on_message_complete()

    def _await_head(self) -> None:
        self._head_deadline = self.loop.time() + self.head_timeout_seconds
        if self._head_timer is None:
            self._wake_at(self._head_deadline)

    def _wake_at(self, when: float) -> None:
        self._head_timer = self.loop.call_at(when, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        if self._head_deadline is None or self.transport.is_closing():
            return
        if self._head_deadline > self.loop.time():  # a later head than the one armed for
            self._wake_at(self._head_deadline)
            return
        if self.flow.read_paused or self._answering():  # we are the slow one, not the client
            self._await_head()
            return
        if not self._head_bytes:  # nothing of a head arrived: nothing to answer
            self.transport.close()
            return
        seconds = f"{self.head_timeout_seconds:g}"
        self._refuse(408, f"The request line and headers did not arrive within {seconds} s.")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer a problem and close; unless an answer is under way, which it would
        corrupt: then only close."""
        if not self._answering() and not self.pipeline:
            self.transport.write(_problem_answer(status, detail, self.server_state.default_headers))
        self.logger.warning("%s: %s", HTTPStatus(status).phrase, detail)
        self.transport.close()

    def _answering(self) -> bool:
        """Whether an answer to an earlier request is still being made."""
        return self.cycle is not None and not self.cycle.response_complete


def _problem_answer(status: int, detail: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP answer: the app's problem shape (app/errors.py), `connection: close`,
    after uvicorn's own headers (date, server) as on any answer."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps(
        {"type": "about:blank", "title": phrase, "status": status, "detail": detail}
    )
    lines = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: " + PROBLEM_CONTENT_TYPE.encode("ascii"),
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def protocol(head_timeout_seconds: float) -> type[HeadLimitedProtocol]:
    """The protocol class for uvicorn's `http=`, with this head timeout."""

    class Configured(HeadLimitedProtocol):
        pass

    Configured.head_timeout_seconds = head_timeout_seconds
    return Configured
