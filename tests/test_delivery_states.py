"""The delivery state machine on its own: an outcome and the state it moves to."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.delivery_states import (
    Claim,
    Outcome,
    Transition,
    failed_test,
    next_state,
)
from app.core.enums import DeliveryKind, DeliveryStatus, ErrorClass, HttpMethod, PayloadType
from app.core.settings import Settings

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SETTINGS = Settings(retry_base_seconds=10, retry_max_delay_seconds=3600)


def claim(number: int = 1, limit: int = 20, kind: DeliveryKind = DeliveryKind.EVENT) -> Claim:
    return Claim(
        delivery_id="dlv_1",
        webhook_id="wh_1",
        number=number,
        attempt_limit=limit,
        kind=kind,
        url="https://receiver.example/hook",
        method=HttpMethod.POST,
        payload_type=PayloadType.JSON,
        payload={},
        secrets=[],
    )


def outcome(
    error_class: ErrorClass | None, status_code: int | None = None, retry_after: float | None = None
) -> Outcome:
    return Outcome(error_class, status_code, None, None, duration_ms=5, retry_after=retry_after)


def test_a_success_finishes_the_delivery() -> None:
    moved = next_state(claim(), outcome(None, 200), NOW, SETTINGS)
    assert moved == Transition(DeliveryStatus.SUCCEEDED, next_attempt_at=None, completed_at=NOW)
    assert moved.finished


@pytest.mark.parametrize("error_class", list(ErrorClass))
def test_a_failure_within_the_budget_is_retried_after_the_backoff(
    error_class: ErrorClass,
) -> None:
    moved = next_state(claim(number=3), outcome(error_class, 500), NOW, SETTINGS)
    assert moved.status is DeliveryStatus.PENDING and not moved.finished
    assert moved.completed_at is None
    assert moved.next_attempt_at is not None
    # Third failure: 10 s × 2² = 40 s, jittered to between half and all of it.
    assert NOW + timedelta(seconds=20) <= moved.next_attempt_at <= NOW + timedelta(seconds=40)


def test_retry_after_raises_the_delay() -> None:
    moved = next_state(claim(), outcome(ErrorClass.HTTP_STATUS, 503, 120.0), NOW, SETTINGS)
    assert moved.next_attempt_at == NOW + timedelta(seconds=120)


def test_the_last_attempt_of_the_budget_fails_the_delivery() -> None:
    moved = next_state(claim(number=20), outcome(ErrorClass.TIMEOUT), NOW, SETTINGS)
    assert moved == Transition(DeliveryStatus.FAILED, next_attempt_at=None, completed_at=NOW)


def test_a_410_to_an_event_fails_it_at_once() -> None:
    moved = next_state(claim(number=1), outcome(ErrorClass.HTTP_STATUS, 410), NOW, SETTINGS)
    assert moved.status is DeliveryStatus.FAILED


def test_only_a_failed_test_ping_is_a_failed_test() -> None:
    ping = claim(limit=1, kind=DeliveryKind.TEST)
    failed = next_state(ping, outcome(ErrorClass.HTTP_STATUS, 500), NOW, SETTINGS)
    succeeded = next_state(ping, outcome(None, 200), NOW, SETTINGS)
    event_failed = next_state(claim(number=20), outcome(ErrorClass.TLS), NOW, SETTINGS)
    assert failed_test(ping, failed)
    assert not failed_test(ping, succeeded)
    assert not failed_test(claim(number=20), event_failed)


def test_every_error_class_is_documented_for_the_attempts_metric() -> None:
    operations = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    [row] = [line for line in operations.splitlines() if "storehooks_attempts_total" in line]
    labels = {"succeeded"} | {error_class.value for error_class in ErrorClass}
    assert set(re.findall(r"`([a-z_]+)`", row)) >= labels
