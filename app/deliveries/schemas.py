"""Response bodies of the /deliveries routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.enums import DeliveryKind, DeliveryStatus


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    event_id: str | None
    kind: DeliveryKind
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    duration_ms: int | None
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryDetail(DeliveryOut):
    attempts: list[AttemptOut]


class RetryAccepted(BaseModel):
    delivery_id: str


class PingAccepted(BaseModel):
    delivery_id: str
