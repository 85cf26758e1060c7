"""Response bodies of the /notices routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.core.enums import DisabledReason, ErrorClass, NoticeKind, OperationalEventType
from app.pagination import Page


class NoticeOut(BaseModel):
    """Something the service noticed about a webhook or an operations endpoint; each is
    also the operational event `type` (docs/api.md#notices)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    kind: NoticeKind
    reason: DisabledReason | None = Field(
        description="Why it was turned off (`disabled`: `gone` or `failing`); else null."
    )
    percent: int | None = Field(
        description="How far into STOREHOOKS_AUTO_DISABLE_AFTER_HOURS it has failed "
        "(`failing`: 50, 75 or 90); else null."
    )
    delivery_id: str | None = Field(
        description="The delivery it is about: the one exhausted (`delivery_exhausted`), the "
        "failed ping (`test_failed`), the success that ended the streak (`recovered`); "
        "else null."
    )
    error_class: ErrorClass | None = Field(
        description="The class of the failure behind it (`failing`, `delivery_exhausted`, "
        "`test_failed`); else null."
    )
    created_at: datetime

    @computed_field(  # type: ignore[prop-decorator]
        description="The operational event this notice was sent as to operations webhooks."
    )
    @property
    def type(self) -> OperationalEventType:
        return self.kind.event_type


class NoticePage(Page[NoticeOut]):
    """One page of notices, newest first."""
