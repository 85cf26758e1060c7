"""Request and response bodies of the /events routes."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from app.enums import EventType
from app.text import UNSTORABLE, storable, storable_text

StoreId = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
MAX_DATA_DEPTH = 32


def _shallow_enough(data: dict[str, Any]) -> dict[str, Any]:
    # Deeper documents could be stored but not rendered back (serializers recurse),
    # so they are refused up front rather than accepted and unreadable later.
    level: list[Any] = [data]
    for _ in range(MAX_DATA_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return data
    raise ValueError(f"must not nest objects or lists more than {MAX_DATA_DEPTH} levels deep")


def _storable(data: dict[str, Any]) -> dict[str, Any]:
    # Checked after _shallow_enough, so the walk is short. No key or string may hold a
    # NUL (PostgreSQL's jsonb refuses it) or a lone surrogate (JSON can spell "\\ud800";
    # UTF-8, in which the md5 is taken and every body is sent, cannot carry it).
    pending: list[Any] = [data]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if not all(storable(key) for key in node):
                raise ValueError(f"keys {UNSTORABLE}")
            if any("]" in key for key in node):
                # A form body nests keys in brackets: payload[data][a][b] could not tell
                # {"a][b": …} from {"a": {"b": …}}. (Stripe refuses brackets in metadata keys.)
                raise ValueError("keys must not contain ']'")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str) and not storable(node):
            raise ValueError(f"strings {UNSTORABLE}")
    return data


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    app_id: StoreId
    sku_id: StoreId | None = None
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with offset); default: receipt."
    )
    data: Annotated[
        dict[str, Any],
        AfterValidator(_shallow_enough),
        AfterValidator(_storable),
    ] = Field(default_factory=dict)


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
