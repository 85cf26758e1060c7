"""Request and response bodies of the /events routes."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.enums import EventType
from app.pagination import Page
from app.text import UNSTORABLE, storable, storable_text
from app.times import UtcDatetime

StoreId = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
MAX_DATA_DEPTH = 32


def _renderable(data: dict[str, Any]) -> dict[str, Any]:
    """One walk over `data`, level by level, for what no body could carry:
    - nesting deeper than MAX_DATA_DEPTH: it could be stored but not rendered back
      (the serializers recurse), so it is refused up front;
    - a NUL (PostgreSQL's jsonb refuses it) or a lone surrogate (JSON can spell
      "\\ud800"; UTF-8, in which the md5 is taken and every body is sent, cannot) in a
      key or a string;
    - a "]" in a key: a form body nests keys in brackets, and payload[data][a][b] could
      not tell {"a][b": …} from {"a": {"b": …}} (Stripe refuses brackets in metadata keys).
    """
    level: list[Any] = [data]
    for depth in range(1, MAX_DATA_DEPTH + 1):
        children: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                if not all(storable(key) for key in node):
                    raise ValueError(f"keys {UNSTORABLE}")
                if any("]" in key for key in node):
                    raise ValueError("keys must not contain ']'")
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    children.append(child)
                elif isinstance(child, str) and not storable(child):
                    raise ValueError(f"strings {UNSTORABLE}")
        if not children:
            return data
        if depth == MAX_DATA_DEPTH:
            break
        level = children
    raise ValueError(f"must not nest objects or lists more than {MAX_DATA_DEPTH} levels deep")


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    app_id: StoreId
    sku_id: StoreId | None = None
    occurred_at: UtcDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with offset); default: receipt."
    )
    data: Annotated[dict[str, Any], AfterValidator(_renderable)] = Field(default_factory=dict)
    ordering_key: StoreId | None = Field(
        default=None,
        description="E.g. the customer or subscription id: an ordered webhook gets the events "
        "of one key strictly in event order.",
    )


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
    ordering_key: str | None
    created_at: datetime


class EventPage(Page[EventOut]):
    """One page of events, newest first."""
