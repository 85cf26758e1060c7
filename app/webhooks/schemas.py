"""Request and response bodies of the /webhooks routes."""

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.enums import DisabledReason, HttpMethod, PayloadType, SuccessStatuses
from app.text import storable_text

MAX_URL_LENGTH = 2048


def _check_url(url: str) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an absolute http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user:password part")
    if any(char.isspace() for char in url):
        raise ValueError("must not contain white space")
    storable_text(url)
    del port
    return url


def _not_null(value: object) -> object:
    # Reached only when a client sends null explicitly; an absent field keeps
    # its current value and never gets here.
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
Url = Annotated[str, AfterValidator(_check_url)]
MaxInFlight = Annotated[
    int, Field(ge=1, le=100, description="At most this many attempts to this webhook at once.")
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    url: Url
    http_method: HttpMethod
    payload_type: PayloadType
    active: bool = True
    success_statuses: SuccessStatuses = SuccessStatuses.ONLY_200
    ordered: bool = False
    max_in_flight: MaxInFlight = 10


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Name | None, AfterValidator(_not_null)] = None
    url: Annotated[Url | None, AfterValidator(_not_null)] = None
    http_method: Annotated[HttpMethod | None, AfterValidator(_not_null)] = None
    payload_type: Annotated[PayloadType | None, AfterValidator(_not_null)] = None
    active: Annotated[bool | None, AfterValidator(_not_null)] = None
    success_statuses: Annotated[SuccessStatuses | None, AfterValidator(_not_null)] = None
    ordered: Annotated[bool | None, AfterValidator(_not_null)] = None
    max_in_flight: Annotated[MaxInFlight | None, AfterValidator(_not_null)] = None


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    url: str
    http_method: HttpMethod
    payload_type: PayloadType
    active: bool
    disabled_reason: DisabledReason | None
    success_statuses: SuccessStatuses
    ordered: bool
    max_in_flight: int
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str


class Secret(BaseModel):
    secret: str
