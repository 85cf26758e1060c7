"""One attempt over HTTP: render the body, sign it, send it, and say what happened.

The attempt was claimed in the database before (`bookkeeping.py`); its outcome is
recorded after (`dispatcher.py`)."""

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Iterator

import httpx
from opentelemetry.trace import Tracer

from app.core import traceparent, tracing
from app.core.delivery_states import Claim, Outcome
from app.core.enums import ErrorClass, SuccessStatuses
from app.core.metrics import ATTEMPT_SECONDS, ATTEMPTS
from app.core.retry_policy import parse_retry_after
from app.core.signing import notification_headers
from workers import payloads, spans
from workers.transport import USER_AGENT, RefusedTarget, UnresolvableHost

RESPONSE_BODY_LIMIT = 1024

logger = logging.getLogger(__name__)


async def send(
    transport: httpx.AsyncBaseTransport,
    claim: Claim,
    timeout_seconds: float,
    tracer: Tracer | None = None,
) -> Outcome:
    """One attempt through the worker's transport (`workers/transport.py`): no client in
    between, so nothing of one receiver's answer (a cookie, say) reaches another.

    The notification's `traceparent` continues the event's trace: with `tracer`, from
    the span of this send (the transport is aiohttp's, which no httpx instrumentation
    sees, so the span is made here); without, the stored header as it is, since a hop
    that records nothing passes its parent on (W3C Trace Context). A test ping, which
    has no event, starts a trace per attempt."""
    if tracer is None:
        header = claim.traceparent or traceparent.new().header
        return await _send(transport, claim, timeout_seconds, header)
    with spans.sending(tracer, claim) as span:
        header = tracing.header_of(span.get_span_context())
        outcome = await _send(transport, claim, timeout_seconds, header)
        spans.annotate(span, outcome)
    return outcome


async def _send(
    transport: httpx.AsyncBaseTransport, claim: Claim, timeout_seconds: float, trace: str
) -> Outcome:
    started = time.perf_counter()
    status_code: int | None = None
    response_body: str | None = None
    retry_after: float | None = None
    retry_after_header: str | None = None
    error_class: ErrorClass | None
    error: str | None
    try:
        body, content_type = payloads.render_body(claim.payload_type, claim.payload)
    except (ValueError, TypeError, RecursionError) as exc:
        # A failed attempt with its reason, not a job that crashes after its claim and
        # comes back, claimed and crashing, forever.
        return Outcome(
            error_class=ErrorClass.PAYLOAD,
            status_code=None,
            error=f"The payload could not be rendered: {type(exc).__name__}: {exc}.",
            response_body=None,
            duration_ms=0,
            retry_after=None,
        )
    try:
        headers = notification_headers(
            delivery_id=claim.delivery_id,
            timestamp=int(time.time()),
            body=body,
            content_type=content_type,
            secrets=claim.secrets,
            user_agent=USER_AGENT,
        )
        headers["traceparent"] = trace  # not signed: Standard Webhooks signs id.timestamp.body
        async with asyncio.timeout(timeout_seconds):
            request = httpx.Request(claim.method.value, claim.url, content=body, headers=headers)
            response = await transport.handle_async_request(request)
            try:
                status_code = response.status_code
                retry_after_header = response.headers.get("retry-after")
                retry_after = parse_retry_after(status_code, retry_after_header)
                response_body = await _read_prefix(response)
            finally:
                await response.aclose()
    except Exception as exc:  # every way a send can fail is a failed attempt, in words
        error_class, error = describe_failure(exc, timeout_seconds)
    else:
        if claim.success_statuses.accepts(status_code):
            error_class, error = None, None
        else:
            error_class = classify_status(status_code, retry_after_header)
            error = describe_status(status_code, claim.success_statuses)
    return Outcome(
        error_class=error_class,
        status_code=status_code,
        error=error,
        response_body=response_body,
        duration_ms=round((time.perf_counter() - started) * 1000),
        retry_after=retry_after,
    )


async def _read_prefix(response: httpx.Response) -> str:
    """The first KiB of the answer; the rest is never read (a receiver cannot flood us)."""
    received = b""
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) >= RESPONSE_BODY_LIMIT:
            break
    text = received[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")  # PostgreSQL's text cannot hold a NUL


def report(claim: Claim, outcome: Outcome) -> None:
    """The attempt's metrics and its log line (never the body or the secrets)."""
    ATTEMPTS.labels(outcome.label).inc()
    ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
    logger.info(
        "attempt %s",
        outcome.label,
        extra={
            "delivery_id": claim.delivery_id,
            "webhook_id": claim.webhook_id,
            "attempt": claim.number,
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
        },
    )


def classify_status(status_code: int, retry_after: str | None) -> ErrorClass:
    """A 429 is the receiver asking us to slow down; so is a 503 that says when to come
    back. Any other unaccepted answer is an HTTP status."""
    if status_code == 429 or (status_code == 503 and retry_after is not None):
        return ErrorClass.RATE_LIMITED
    return ErrorClass.HTTP_STATUS


def describe_status(status_code: int, rule: SuccessStatuses) -> str:
    if 300 <= status_code < 400:
        return f"The receiver answered HTTP {status_code}; redirects are not followed."
    if status_code == 410:
        return "The receiver answered HTTP 410 Gone; the webhook is turned off."
    expected = "200" if rule is SuccessStatuses.ONLY_200 else "a 2xx status"
    return f"The receiver answered HTTP {status_code}; only {expected} counts as success."


def describe_failure(exc: BaseException, timeout: float) -> tuple[ErrorClass, str]:
    """(error class, words for the user) of a send that raised."""
    if isinstance(exc, RefusedTarget):
        return ErrorClass.REFUSED_TARGET, str(exc)
    if isinstance(exc, UnresolvableHost):
        return ErrorClass.DNS, str(exc)
    timed_out = f"Timed out: no complete answer within {timeout:g} s."
    if isinstance(exc, TimeoutError):  # the whole-request deadline
        return ErrorClass.TIMEOUT, timed_out
    # The causes first: the aiohttp transport reports a refused connection as httpx's
    # ConnectTimeout, with the operating system's error underneath.
    tls_error = _tls_cause(exc)
    if tls_error is not None:
        return ErrorClass.TLS, f"TLS failed: {tls_error}."
    unresolved = next((c for c in _causes(exc) if isinstance(c, socket.gaierror)), None)
    if unresolved is not None:
        return ErrorClass.DNS, f"The host name did not resolve: {unresolved.strerror}."
    socket_error = _socket_cause(exc)
    if socket_error is not None:
        return ErrorClass.CONNECT, f"Could not connect: {socket_error}."
    if isinstance(exc, httpx.TimeoutException):
        return ErrorClass.TIMEOUT, timed_out
    if isinstance(exc, httpx.ConnectError):
        return ErrorClass.CONNECT, f"Could not connect: {exc or 'connection failed'}."
    if isinstance(exc, httpx.HTTPError):
        return ErrorClass.CONNECT, f"The HTTP exchange failed: {type(exc).__name__}: {exc}."
    return ErrorClass.CONNECT, f"The attempt failed: {type(exc).__name__}: {exc}."


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those under it, outermost first (httpx and aiohttp wrap)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _socket_cause(exc: BaseException) -> str | None:
    """The operating system's words ("Connection refused") under httpx's wrapping."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno is not None:
            return os.strerror(cause.errno).lower()
    return None


def _tls_cause(exc: BaseException) -> str | None:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return (
                getattr(cause, "verify_message", None)
                or getattr(cause, "reason", None)
                or str(cause)
            )
    text = str(exc)
    return text if "SSL" in text or "certificate" in text else None
