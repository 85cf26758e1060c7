"""Response bodies of GET /audit-events."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.enums import ActorType, AuditAction, AuditTarget
from app.pagination import Page


class FieldChange(BaseModel):
    """One field's value before and after the change, as the API shows it."""

    before: Any = Field(description="The value before; null for a creation.")
    after: Any = Field(description="The value after; null for a deletion.")


class AuditEvent(BaseModel):
    """One change made through the API (docs/api.md#audit-log)."""

    model_config = ConfigDict(from_attributes=True)

    id: Annotated[str, Field(description="The entry's id (`aud_…`); ids sort by time.")]
    occurred_at: Annotated[datetime, Field(description="When the change was made.")]
    actor_type: Annotated[
        ActorType,
        Field(description="`api_key` for a key, `user` for a person's identity-provider token."),
    ]
    actor_id: Annotated[
        str, Field(description="The API key's id, or the person's subject at the provider.")
    ]
    actor_name: Annotated[
        str | None,
        Field(description="The key's name or the person's name at the time of the change."),
    ]
    action: Annotated[AuditAction, Field(description="What was done: `<target_type>.<verb>`.")]
    target_type: Annotated[AuditTarget, Field(description="What kind of object it was done to.")]
    target_id: Annotated[str, Field(description="The id of the object it was done to.")]
    changes: Annotated[
        dict[str, FieldChange],
        Field(
            description="The fields that changed, each with its value before and after; "
            "fields that kept their value are left out. Never holds a secret: a rotation "
            "shows only public fields (an `ed25519` webhook's `public_key`)."
        ),
    ]


class AuditEventPage(Page[AuditEvent]):
    """One page of the audit log, newest first."""
