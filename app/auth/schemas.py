"""Request and response bodies of /me and /api-keys."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.enums import Scope
from app.pagination import Page
from app.text import storable_text


class Me(BaseModel):
    account_id: str
    key_id: str | None = Field(description="The API key's id; null for a person's token.")
    subject: str | None = Field(
        description="A person's subject at the identity provider; null for a key."
    )
    name: str | None = Field(description="A person's name, or the API key's name.")
    scopes: list[Scope]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
    scopes: Annotated[list[Scope], Field(min_length=1)]


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    api_key: str


class ApiKeyPage(Page[ApiKeyOut]):
    """One page of API keys, newest first."""
