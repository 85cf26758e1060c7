"""Authenticates the bearer key and checks the one scope each route needs (docs/api.md,
Auth, accounts and scopes)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import resources
from app.auth.oidc import looks_like_jwt
from app.auth.principal import Principal as Principal  # the routes import it from here
from app.core.enums import Scope
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key, or an access token from the store's identity provider when one "
    "is configured: `Authorization: Bearer <token>`.",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    principal = await principal_for(resources.of(request.app), credentials.credentials)
    resources.of(request.app).rate_limiter.spend(principal.key_id or f"person:{principal.subject}")
    return principal


async def principal_for(state: resources.Resources, token: str) -> Principal:
    """The key or the person a bearer token speaks for; Unauthorized otherwise."""
    if state.oidc is not None and looks_like_jwt(token):
        return await state.oidc.verify(token)
    key = await state.key_lookup.find(token)
    if key is None:
        raise Unauthorized("The API key is unknown or revoked.")
    return Principal(
        account_id=key.account_id,
        key_id=key.id,
        name=key.name,
        scopes=Scope.known(key.scopes),
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
