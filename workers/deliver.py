"""The `deliver` job: claim one attempt in the database, send it, record it, schedule the next.

The job carries only a delivery id; the database decides. The claim is a
conditional update on (status, attempt_count) plus a unique attempt row, so a
duplicated or re-run job can never send the same attempt twice. While an
attempt is in flight its `next_attempt_at` is pushed out by a lease, so the
sweeper leaves it alone unless the worker died.
"""

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import queue
from app.db import session_scope, utcnow
from app.enums import DeliveryKind, DeliveryStatus, DisabledReason, HttpMethod, PayloadType
from app.ids import new_id
from app.metrics import ATTEMPT_SECONDS, ATTEMPTS, DELIVERIES_FINISHED
from app.models import Delivery, DeliveryAttempt, Event, Webhook
from app.settings import Settings
from workers import payloads
from workers.retry_policy import next_delay, parse_retry_after
from workers.signing import notification_headers
from workers.transport import USER_AGENT, RefusedTarget, UnresolvableHost

logger = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 1024
INTERRUPTED = "Interrupted: the worker stopped before this attempt had an outcome; retried."
# A job that comes a little before its time (clock skew, arq's poll) still runs.
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class Claim:
    delivery_id: str
    webhook_id: str
    number: int
    kind: DeliveryKind
    url: str
    method: HttpMethod
    payload_type: PayloadType
    payload: dict[str, Any]
    secrets: list[str]


@dataclass(frozen=True)
class Outcome:
    category: str  # for metrics: succeeded, status, timeout, network, tls, refused
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.category == "succeeded"


def lease(settings: Settings) -> timedelta:
    """How long an attempt in flight keeps the sweeper away: longer than any send."""
    return timedelta(seconds=settings.delivery_timeout_seconds + 30)


async def deliver(ctx: dict[str, Any], delivery_id: str) -> None:
    settings: Settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    claim = await claim_attempt(sessionmaker, settings, delivery_id)
    if claim is None:
        return
    outcome = await send(ctx["http"], claim, settings.delivery_timeout_seconds)
    next_attempt_at = await record_outcome(sessionmaker, settings, claim, outcome)
    ATTEMPTS.labels(outcome.category).inc()
    ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
    logger.info(
        "attempt %s",
        outcome.category,
        extra={
            "delivery_id": claim.delivery_id,
            "webhook_id": claim.webhook_id,
            "attempt": claim.number,
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
        },
    )
    if next_attempt_at is not None:
        redis: ArqRedis = ctx["redis"]
        await queue.enqueue(redis, delivery_id, claim.number + 1, next_attempt_at)


async def claim_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, delivery_id: str
) -> Claim | None:
    async with session_scope(sessionmaker) as session:
        # On PostgreSQL a worker that finds the row locked leaves it to the one that
        # holds it; SQLite serialises writers with BEGIN IMMEDIATE instead.
        row = (
            await session.execute(
                select(Delivery, Webhook)
                .join(Webhook, Webhook.id == Delivery.webhook_id)
                .where(Delivery.id == delivery_id)
                .with_for_update(of=Delivery, skip_locked=True)
            )
        ).one_or_none()
        if row is None:
            return None
        delivery, webhook = row
        now = utcnow()
        if delivery.status != DeliveryStatus.PENDING:
            return None
        if (
            delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now + EARLY_TOLERANCE
        ):
            return None  # not due yet: its own deferred job, or the sweeper, will come
        if not webhook.active or webhook.deleted_at is not None:
            _finish(delivery, DeliveryStatus.CANCELLED, now)
            delivery.last_error = "Not sent: the webhook is inactive or deleted."
            return None
        if delivery.attempt_count > 0:
            await _record_interruption(session, delivery)
        number = delivery.attempt_count + 1
        claimed = await session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.attempt_count == delivery.attempt_count,
            )
            .values(
                attempt_count=number,
                attempt_limit=delivery.attempt_limit,
                next_attempt_at=now + lease(settings),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        session.add(
            DeliveryAttempt(
                id=new_id("att"), delivery_id=delivery_id, number=number, started_at=now
            )
        )
        return Claim(
            delivery_id=delivery.id,
            webhook_id=webhook.id,
            number=number,
            kind=delivery.kind,
            url=webhook.url,
            method=webhook.http_method,
            payload_type=webhook.payload_type,
            payload=await _payload(session, delivery),
            secrets=_signing_secrets(webhook, now),
        )


async def _record_interruption(session: AsyncSession, delivery: Delivery) -> None:
    """An attempt that never got an outcome died with its worker (SIGKILL, power loss):
    record that, and do not count it against the budget."""
    interrupted = await session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.delivery_id == delivery.id,
            DeliveryAttempt.number == delivery.attempt_count,
            DeliveryAttempt.status_code.is_(None),
            DeliveryAttempt.error.is_(None),
        )
        .values(error=INTERRUPTED)
    )
    if interrupted.rowcount == 1:  # type: ignore[attr-defined]
        delivery.attempt_limit += 1
        delivery.last_error = INTERRUPTED


async def _payload(session: AsyncSession, delivery: Delivery) -> dict[str, Any]:
    if delivery.event_id is None:
        return payloads.ping_payload(int(delivery.created_at.timestamp()))
    event = await session.get(Event, delivery.event_id)
    assert event is not None  # deliveries cascade with their event
    return payloads.event_payload(
        event_id=event.id,
        event_type=event.type.value,
        occurred_at=event.occurred_at,
        app_id=event.app_id,
        sku_id=event.sku_id,
        data=event.data,
    )


def _signing_secrets(webhook: Webhook, now: datetime) -> list[str]:
    secrets = [webhook.secret]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret and expires is not None and expires > now:
        secrets.append(webhook.previous_secret)
    return secrets


async def send(client: httpx.AsyncClient, claim: Claim, timeout_seconds: float) -> Outcome:
    body, content_type = payloads.render_body(claim.payload_type, claim.payload)
    headers = notification_headers(
        delivery_id=claim.delivery_id,
        timestamp=int(time.time()),
        body=body,
        content_type=content_type,
        secrets=claim.secrets,
        user_agent=USER_AGENT,
    )
    started = time.perf_counter()
    status_code: int | None = None
    response_body: str | None = None
    retry_after: float | None = None
    error: str | None
    try:
        async with asyncio.timeout(timeout_seconds):
            request = client.build_request(
                claim.method.value, claim.url, content=body, headers=headers
            )
            response = await client.send(request, stream=True)
            try:
                status_code = response.status_code
                retry_after = parse_retry_after(status_code, response.headers.get("retry-after"))
                response_body = await _read_prefix(response)
            finally:
                await response.aclose()
    except Exception as exc:  # every way a send can fail is a failed attempt, in words
        category, error = describe_failure(exc, timeout_seconds)
    else:
        category = "succeeded" if status_code == 200 else "status"
        error = None if status_code == 200 else describe_status(status_code)
    return Outcome(
        category=category,
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
    return received[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")


def describe_status(status_code: int | None) -> str:
    if status_code is not None and 300 <= status_code < 400:
        return f"The receiver answered HTTP {status_code}; redirects are not followed."
    return f"The receiver answered HTTP {status_code}; only 200 counts as success."


def describe_failure(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(metric category, words for the user) of a send that raised."""
    if isinstance(exc, RefusedTarget):
        return "refused", str(exc)
    if isinstance(exc, UnresolvableHost):
        return "network", str(exc)
    timed_out = f"Timed out: no complete answer within {timeout:g} s."
    if isinstance(exc, TimeoutError):  # the whole-request deadline
        return "timeout", timed_out
    # The causes first: the aiohttp transport reports a refused connection as httpx's
    # ConnectTimeout, with the operating system's error underneath.
    tls_error = _tls_cause(exc)
    if tls_error is not None:
        return "tls", f"TLS failed: {tls_error}."
    socket_error = _socket_cause(exc)
    if socket_error is not None:
        return "network", f"Could not connect: {socket_error}."
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", timed_out
    if isinstance(exc, httpx.ConnectError):
        return "network", f"Could not connect: {exc or 'connection failed'}."
    if isinstance(exc, httpx.HTTPError):
        return "network", f"The HTTP exchange failed: {type(exc).__name__}: {exc}."
    return "network", f"The attempt failed: {type(exc).__name__}: {exc}."


def _socket_cause(exc: BaseException) -> str | None:
    """The operating system's words ("Connection refused") under httpx's wrapping."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_cause(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return (
                getattr(seen, "verify_message", None) or getattr(seen, "reason", None) or str(seen)
            )
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return text if "SSL" in text or "certificate" in text else None


async def record_outcome(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    claim: Claim,
    outcome: Outcome,
) -> datetime | None:
    """Stores the attempt and decides what follows; returns when the next attempt is due."""
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(DeliveryAttempt)
            .where(
                DeliveryAttempt.delivery_id == claim.delivery_id,
                DeliveryAttempt.number == claim.number,
            )
            .values(
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=outcome.error,
                response_body=outcome.response_body,
            )
        )
        delivery = await session.get(Delivery, claim.delivery_id, with_for_update=True)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.PENDING
            or delivery.attempt_count != claim.number
        ):
            return None  # cancelled or moved on while this attempt was in flight
        now = utcnow()
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.succeeded:
            _finish(delivery, DeliveryStatus.SUCCEEDED, now)
            return None
        if claim.number >= delivery.attempt_limit:
            _finish(delivery, DeliveryStatus.FAILED, now)
            if claim.kind == DeliveryKind.TEST:
                await _disable_after_failed_test(session, claim.webhook_id, now)
            return None
        delay = next_delay(settings, claim.number, outcome.retry_after)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.updated_at = now
        return delivery.next_attempt_at


def _finish(delivery: Delivery, status: DeliveryStatus, now: datetime) -> None:
    DELIVERIES_FINISHED.labels(status.value).inc()
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.completed_at = now
    delivery.updated_at = now


async def _disable_after_failed_test(session: AsyncSession, webhook_id: str, now: datetime) -> None:
    await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.active.is_(True))
        .values(active=False, disabled_reason=DisabledReason.TEST_FAILED, updated_at=now)
    )
