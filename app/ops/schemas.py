"""Response bodies of /healthz and /readyz."""

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(
        description='Each dependency ("database", "redis") and "ok"; a 503 problem names '
        "the failing ones the same way."
    )
