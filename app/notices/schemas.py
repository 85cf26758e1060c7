"""Response bodies of the /notices routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.core.enums import DisabledReason, NoticeKind
from app.pagination import Page


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    kind: NoticeKind
    reason: DisabledReason
    created_at: datetime


class NoticePage(Page[NoticeOut]):
    """One page of notices, newest first."""
