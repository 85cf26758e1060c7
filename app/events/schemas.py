"""Request and response bodies of the /events routes."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.enums import EventType

StoreId = Annotated[str, Field(min_length=1, max_length=200)]


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    app_id: StoreId
    sku_id: StoreId | None = None
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with offset); default: receipt."
    )
    data: dict[str, Any] = Field(default_factory=dict)


class EventAccepted(BaseModel):
    id: str
    deliveries: int


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: EventType
    app_id: str
    sku_id: str | None
    occurred_at: datetime
    data: dict[str, Any]
    created_at: datetime
