"""How the console signs people in, GET /ui/config.json (docs/console.md#sign-in): with an
API key by default, at the identity provider when it and the console's client are set."""

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from app.console.sign_in import connect_sources, sign_in_config
from app.core.settings import Settings
from app.errors import IdentityProviderUnavailable
from tests.conftest import client_for, free_port, running_app

DISCOVERY = {
    "issuer": "https://id.example.com",
    "authorization_endpoint": "https://id.example.com/auth",
    "token_endpoint": "https://tokens.example.com/oauth/token",
    "jwks_uri": "https://id.example.com/jwks",
}


class Discovered:
    """Stands in for the identity provider's verifier (app/auth/oidc.py): its discovery."""

    def __init__(self, document: Mapping[str, Any] = DISCOVERY) -> None:
        self.document = document

    async def discovery(self) -> Mapping[str, Any]:
        return self.document


async def test_without_a_provider_the_console_takes_an_api_key(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/ui/config.json")
    assert response.status_code == 200
    assert response.json() == {"sign_in": "api_key"}
    assert response.headers["cache-control"] == "no-cache"
    page = await anonymous.get("/ui/")
    assert "connect-src 'self';" in page.headers["content-security-policy"]


async def test_with_a_provider_and_a_console_client_people_sign_in_there() -> None:
    config = await sign_in_config("storehooks-console", "https://api.example.com", Discovered())
    assert config == {
        "sign_in": "oidc",
        "issuer": "https://id.example.com",
        "client_id": "storehooks-console",
        "authorization_endpoint": "https://id.example.com/auth",
        "token_endpoint": "https://tokens.example.com/oauth/token",
        "end_session_endpoint": None,
        "scope": "openid profile",
        "resource": "https://api.example.com",
    }
    # the page trades the code at the token endpoint, wherever that is
    assert connect_sources(config) == "'self' https://tokens.example.com"


async def test_a_provider_without_a_console_client_leaves_api_keys() -> None:
    assert await sign_in_config(None, "https://api.example.com", Discovered()) == {
        "sign_in": "api_key"
    }
    assert await sign_in_config("storehooks-console", None, None) == {"sign_in": "api_key"}


async def test_a_discovery_document_without_the_endpoints_is_refused() -> None:
    lacking = Discovered({"issuer": "https://id.example.com"})
    with pytest.raises(IdentityProviderUnavailable, match="authorization_endpoint"):
        await sign_in_config("storehooks-console", "https://api.example.com", lacking)


async def test_an_unreachable_provider_is_a_503_and_the_page_still_loads(
    settings: Settings,
) -> None:
    unreachable = settings.model_copy(
        update={
            "oidc_issuer": f"http://127.0.0.1:{free_port()}",
            "oidc_audience": "https://api.example.com",
            "oidc_console_client_id": "storehooks-console",
        }
    )
    async with running_app(unreachable) as app, client_for(app) as anonymous:
        response = await anonymous.get("/ui/config.json")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        page = await anonymous.get("/ui/")  # which says the sign-in is unavailable
        assert page.status_code == 200
        assert "connect-src 'self';" in page.headers["content-security-policy"]
