"""Request and response bodies of the action routes."""

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.core.enums import EventType
from app.pagination import Page
from app.text import storable_text

StoreId = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: EventType
    app_id: StoreId | None = None
    sku_id: StoreId | None = Field(default=None, validate_default=True)

    @field_validator("sku_id")
    @classmethod
    def _app_or_sku(cls, sku_id: str | None, info: ValidationInfo) -> str | None:
        if sku_id is None and info.data.get("app_id") is None:
            raise ValueError("at least one of app_id and sku_id is required")
        return sku_id


class ActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    event_type: EventType
    app_id: str | None
    sku_id: str | None
    created_at: datetime


class ActionPage(Page[ActionOut]):
    """One page of actions, newest first."""
