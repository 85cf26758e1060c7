"""The delivery state machine: an attempt claimed, its outcome, and the state the
delivery moves to (docs/delivery.md#outcomes). Pure: the worker's bookkeeping stores
what this decides."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    ErrorClass,
    HttpMethod,
    PayloadType,
    SuccessStatuses,
)
from app.core.retry_policy import next_delay
from app.core.settings import Settings


@dataclass(frozen=True)
class Claim:
    """An attempt the worker holds, with everything its send needs."""

    delivery_id: str
    webhook_id: str
    number: int
    attempt_limit: int
    kind: DeliveryKind
    url: str
    method: HttpMethod
    payload_type: PayloadType
    payload: dict[str, Any]
    secrets: list[str]
    success_statuses: SuccessStatuses = SuccessStatuses.ONLY_200
    ordering_key: str | None = None
    # The event's W3C traceparent, which the send continues (None: a test ping, or an
    # event stored before traces were kept; each attempt then starts a trace of its own).
    traceparent: str | None = None


@dataclass(frozen=True)
class Outcome:
    error_class: ErrorClass | None  # None: it succeeded
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.error_class is None

    @property
    def label(self) -> str:
        """The attempts metric's label: `succeeded`, or the error class."""
        return "succeeded" if self.error_class is None else self.error_class.value


@dataclass(frozen=True)
class Transition:
    """Where an attempt's outcome moves its delivery: finished (succeeded or failed) at
    `completed_at`, or still pending with its next attempt due at `next_attempt_at`."""

    status: DeliveryStatus
    next_attempt_at: datetime | None
    completed_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status is not DeliveryStatus.PENDING


def next_state(claim: Claim, outcome: Outcome, now: datetime, settings: Settings) -> Transition:
    if outcome.succeeded:
        return Transition(DeliveryStatus.SUCCEEDED, next_attempt_at=None, completed_at=now)
    if claim.number >= claim.attempt_limit or gone(claim, outcome):
        return Transition(DeliveryStatus.FAILED, next_attempt_at=None, completed_at=now)
    delay = next_delay(settings, claim.number, outcome.retry_after)
    return Transition(
        DeliveryStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay), completed_at=None
    )


def gone(claim: Claim, outcome: Outcome) -> bool:
    """A 410 to an event: the receiver says it is gone for good. (A test ping's failure,
    410 included, is the test_failed rule, docs/api.md#webhooks.)"""
    return claim.kind == DeliveryKind.EVENT and outcome.status_code == 410


def failed_test(claim: Claim, transition: Transition) -> bool:
    """A test ping that failed, which turns its webhook off (`test_failed`)."""
    return claim.kind == DeliveryKind.TEST and transition.status is DeliveryStatus.FAILED
