"""Response bodies of the /deliveries routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.enums import DeliveryKind, DeliveryStatus, ErrorClass
from app.pagination import Page
from app.times import UtcDatetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    event_id: str | None
    notice_id: str | None = Field(
        description="The notice an `operational` delivery sends to an operations webhook "
        "(docs/api.md#operations-webhooks); null for events and test pings."
    )
    kind: DeliveryKind
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_error_class: ErrorClass | None = Field(
        description="The last attempt's error class (docs/api.md#error-classes); null when it "
        "succeeded, before the first attempt, and when the delivery was cancelled."
    )
    created_at: datetime
    completed_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    duration_ms: int | None
    status_code: int | None
    error: str | None
    error_class: ErrorClass | None = Field(
        description="Why the attempt failed, for code to act on (docs/api.md#error-classes); "
        "null when it succeeded or is still in flight."
    )
    response_body: str | None


class DeliveryDetail(DeliveryOut):
    attempts: list[AttemptOut]
    waiting_for: str | None = Field(
        description="Held back by ordered delivery: the earlier pending delivery of the same "
        "ordering key that it waits for (docs/delivery.md, Ordered delivery); otherwise null."
    )


class RecoverWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: UtcDatetime
    until: UtcDatetime | None = None


class Recovered(BaseModel):
    deliveries: int


class RetryAccepted(BaseModel):
    delivery_id: str


class PingAccepted(BaseModel):
    delivery_id: str


class DeliveryPage(Page[DeliveryOut]):
    """One page of deliveries, newest first."""
