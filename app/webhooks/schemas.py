"""Request and response bodies of the /webhooks routes."""

from datetime import datetime
from typing import Annotated, Any
from unicodedata import category
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.enums import (
    DisabledReason,
    HttpMethod,
    PayloadType,
    SignatureScheme,
    SuccessStatuses,
)
from app.core.models import Webhook
from app.core.signing import readable_secret
from app.pagination import Page
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
    # No client can send such a URL (httpx refuses it as InvalidURL at every attempt),
    # so it is refused here rather than retried for days.
    if any(category(char) == "Cc" for char in url):
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
    storable_text(url)
    del port
    return url


def _not_null(value: object) -> object:
    # Reached only when a client sends null explicitly; an absent field keeps
    # its current value and never gets here.
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


def _omittable(schema: dict[str, Any]) -> None:
    """A field that may be left out but is never null: the schema says the same. None is
    only Python's mark for "left out" (and keeps validation errors at the field itself,
    where a union with a None branch would name the branch)."""
    schema.pop("default", None)
    branches = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if branches:
        (branch,) = branches
        schema.update({**branch, **schema})


NOT_NULL = AfterValidator(_not_null)
OMITTED = Field(json_schema_extra=_omittable)
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
Url = Annotated[str, AfterValidator(_check_url)]
MaxInFlight = Annotated[
    int, Field(ge=1, le=100, description="At most this many attempts to this webhook at once.")
]
Scheme = Annotated[
    SignatureScheme,
    Field(
        description="How notifications are signed: `hmac-sha256` (Standard Webhooks `v1`, "
        "a shared secret) or `ed25519` (`v1a`: receivers verify with `public_key`; the "
        "private key never leaves storehooks). Changing it is a rotation: the old key keeps "
        "signing beside the new one for 24 hours."
    ),
]
PUBLIC_KEY = Field(
    description="The Ed25519 public key receivers verify `v1a` signatures with: `whpk_` + "
    "base64 of its 32 raw bytes. Null for `hmac-sha256`."
)


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
    signature_scheme: Scheme = SignatureScheme.HMAC_SHA256


class WebhookUpdate(BaseModel):
    """Send only the fields to change: a field left out keeps its value. No field may be
    null."""

    # OMITTED keeps null out of the schema; NOT_NULL answers a null with a 422.

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Name | None, NOT_NULL, OMITTED] = None
    url: Annotated[Url | None, NOT_NULL, OMITTED] = None
    http_method: Annotated[HttpMethod | None, NOT_NULL, OMITTED] = None
    payload_type: Annotated[PayloadType | None, NOT_NULL, OMITTED] = None
    active: Annotated[bool | None, NOT_NULL, OMITTED] = None
    success_statuses: Annotated[SuccessStatuses | None, NOT_NULL, OMITTED] = None
    ordered: Annotated[bool | None, NOT_NULL, OMITTED] = None
    max_in_flight: Annotated[MaxInFlight | None, NOT_NULL, OMITTED] = None
    signature_scheme: Annotated[Scheme | None, NOT_NULL, OMITTED] = None


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
    signature_scheme: Scheme
    public_key: Annotated[str | None, PUBLIC_KEY]
    created_at: datetime
    updated_at: datetime


SHOWN_SECRET = Field(
    description="The shared signing secret of an `hmac-sha256` webhook (`whsec_` + base64 "
    "of 32 random bytes). Null for `ed25519`, whose private key is never shown: receivers "
    "verify with `public_key`."
)


class WebhookCreated(WebhookOut):
    secret: Annotated[str | None, SHOWN_SECRET]

    @classmethod
    def of(cls, webhook: Webhook) -> "WebhookCreated":
        shown = WebhookOut.model_validate(webhook).model_dump()
        return cls(**shown, secret=readable_secret(webhook.secret))


class Secret(BaseModel):
    """What a receiver verifies this webhook's signatures with: the shared `secret`
    (`hmac-sha256`) or the `public_key` (`ed25519`); the other is null."""

    signature_scheme: Scheme
    secret: Annotated[str | None, SHOWN_SECRET]
    public_key: Annotated[str | None, PUBLIC_KEY]

    @classmethod
    def of(cls, webhook: Webhook) -> "Secret":
        return cls(
            signature_scheme=webhook.signature_scheme,
            secret=readable_secret(webhook.secret),
            public_key=webhook.public_key,
        )


class WebhookPage(Page[WebhookOut]):
    """One page of webhooks, newest first."""
