"""Authenticates the bearer key and checks the one scope each route needs (docs/api.md,
Auth, accounts and scopes)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import resources
from app.core.enums import Scope
from app.errors import Forbidden, Unauthorized

_KNOWN_SCOPES = frozenset(scope.value for scope in Scope)
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an API key (`key_id`, and the key's `name`), or a person
    signed in at the identity provider (`subject`, their `name`)."""

    account_id: str
    scopes: frozenset[Scope]
    key_id: str | None = None
    subject: str | None = None
    name: str | None = None

    @property
    def actor_id(self) -> str:
        """The key's id or the person's subject: what the audit log names as the actor."""
        actor = self.key_id or self.subject
        assert actor is not None, "a principal is a key or a person"
        return actor


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    lookup = resources.of(request.app).key_lookup
    key = await lookup.find(credentials.credentials)
    if key is None:
        raise Unauthorized("The API key is unknown or revoked.")
    limiter = resources.of(request.app).rate_limiter
    limiter.spend(key.id)
    return Principal(
        account_id=key.account_id,
        key_id=key.id,
        name=key.name,
        scopes=frozenset(Scope(scope) for scope in key.scopes if scope in _KNOWN_SCOPES),
    )


def _require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"This API key lacks the `{scope.value}` scope.")
        return principal

    return check


def requires(scope: Scope) -> Any:
    """`principal: Annotated[Principal, requires(Scope.X)]` in a route's signature."""
    return Depends(_require(scope))


AnyKey = Annotated[Principal, Depends(authenticate)]
