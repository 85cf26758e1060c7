"""How the console signs people in (GET /ui/config.json, docs/console.md#sign-in): with an
API key, or, when the store's identity provider and the console's public client there are
configured, at the provider with the authorization code flow and PKCE."""

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.types import ASGIApp

from app import resources
from app.errors import IdentityProviderUnavailable

API_KEY: Mapping[str, Any] = {"sign_in": "api_key"}
SCOPE = "openid profile"
ENDPOINTS = ("issuer", "authorization_endpoint", "token_endpoint")


class Provider(Protocol):
    async def discovery(self) -> Mapping[str, Any]:
        """The provider's /.well-known/openid-configuration."""
        ...


async def sign_in_config(
    client_id: str | None, audience: str | None, provider: Provider | None
) -> Mapping[str, Any]:
    """What the page needs to sign a person in; nothing in it is secret (the console's
    client is public, and PKCE stands in for a client secret)."""
    if provider is None or not client_id:
        return API_KEY
    found = await provider.discovery()
    missing = [name for name in ENDPOINTS if not found.get(name)]
    if missing:
        raise IdentityProviderUnavailable(
            f"The identity provider's discovery document lacks {', '.join(missing)}."
        )
    return {
        "sign_in": "oidc",
        "issuer": found["issuer"],
        "client_id": client_id,
        "authorization_endpoint": found["authorization_endpoint"],
        "token_endpoint": found["token_endpoint"],
        "end_session_endpoint": found.get("end_session_endpoint"),
        "scope": SCOPE,
        "resource": audience,
    }


async def config_of(app: ASGIApp) -> Mapping[str, Any]:
    held = resources.of(app)
    settings = held.settings
    return await sign_in_config(settings.oidc_console_client_id, settings.oidc_audience, held.oidc)


def connect_sources(config: Mapping[str, Any]) -> str:
    """Where the page may send requests: its own origin, and the provider's token
    endpoint, where it trades the code for a token."""
    if config["sign_in"] != "oidc":
        return "'self'"
    parts = urlsplit(config["token_endpoint"])
    return f"'self' {parts.scheme}://{parts.netloc}"
