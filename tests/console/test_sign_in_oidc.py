"""People sign in to the console at the store's identity provider (issue 18, point 2): a
real node-oidc-provider (tests/support/oidc_provider.py) and its own login and consent
pages, the authorization code flow with PKCE from the page, the token kept in the tab."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from app.core.enums import Scope
from tests.conftest import free_port
from tests.console.conftest import Console
from tests.support.oidc_provider import (
    AUDIENCE,
    CONSOLE_CLIENT,
    OidcProvider,
    Person,
    running_provider,
)


@pytest.fixture
def provider(tmp_path: Path, console_port: int) -> Iterator[OidcProvider]:
    workdir = tmp_path / "provider"
    workdir.mkdir()
    console_url = f"http://127.0.0.1:{console_port}/ui/"
    with running_provider(free_port(), workdir, console_redirect_uri=console_url) as running:
        yield running


@pytest.fixture
def console_settings(provider: OidcProvider) -> dict[str, str]:
    return {
        "STOREHOOKS_OIDC_ISSUER": provider.issuer,
        "STOREHOOKS_OIDC_AUDIENCE": AUDIENCE,
        "STOREHOOKS_OIDC_CONSOLE_CLIENT_ID": CONSOLE_CLIENT,
    }


async def sign_in_at_provider(
    page: Page, provider: OidcProvider, console: Console, name: str, *scopes: str, ttl: int = 300
) -> None:
    """`name`, a person of the console's account holding `scopes`, signs in through the
    provider's login and consent pages and comes back to the list."""
    login = name.split()[0].lower()
    provider.add(
        login, Person(name=name, account_id=console.account_id, permissions=scopes, ttl=ttl)
    )
    await page.goto("/ui/")
    await expect(page.get_by_label("API key")).to_have_count(0)
    await page.get_by_role(
        "button", name=f"Sign in with {provider.issuer.removeprefix('http://')}"
    ).click()
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()  # the consent
    await expect(page.get_by_role("heading", name="Web Hooks", level=1)).to_be_visible()


async def test_a_reader_signs_in_and_sees_their_name_and_no_create_button(
    page: Page, console: Console, provider: OidcProvider
) -> None:
    await sign_in_at_provider(page, provider, console, "Dana Reader", "webhooks:read")

    await expect(page.locator(".account .who")).to_have_text("Dana Reader")
    await expect(page.get_by_role("button", name="Add Web Hook")).to_have_count(0)
    assert page.url == f"{console.base_url}/ui/"  # no code=, state= or token in the address
    assert await page.evaluate("localStorage.length") == 0
    token = await page.evaluate("sessionStorage.getItem('storehooks.accessToken')")
    assert token.count(".") == 2  # a JWT, and the one the API takes
    me = await console.api.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "Dana Reader"
    assert me.json()["scopes"] == ["webhooks:read"]

    await page.reload()  # the tab keeps the sign-in
    await expect(page.locator(".account .who")).to_have_text("Dana Reader")

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Yes, sign me out").click()  # at the provider
    await expect(
        page.get_by_role("button", name="Sign in with 127.0.0.1", exact=False)
    ).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_person_holding_every_scope_adds_a_web_hook(
    page: Page, console: Console, provider: OidcProvider
) -> None:
    await sign_in_at_provider(
        page, provider, console, "Sam Admin", *(scope.value for scope in Scope)
    )

    await page.get_by_role("button", name="Add Web Hook").click()
    await page.get_by_label("Name").fill("orders")
    await page.get_by_label("URI End Point").fill("https://hooks.example.com/orders")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="orders", level=1)).to_be_visible()
    assert [hook["name"] for hook in (await console.get("/webhooks"))["data"]] == ["orders"]


async def test_an_expired_sign_in_goes_back_to_the_sign_in_page(
    page: Page, console: Console, provider: OidcProvider
) -> None:
    await sign_in_at_provider(page, provider, console, "Kim Brief", "webhooks:read", ttl=6)

    await expect(page.get_by_role("alert")).to_have_text(
        "Your sign-in has expired: sign in again.", timeout=20_000
    )
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_code_this_tab_did_not_ask_for_is_refused(
    page: Page, console: Console, provider: OidcProvider
) -> None:
    await page.goto("/ui/?code=stolen&state=forged#/webhooks")

    await expect(page.get_by_role("alert")).to_have_text(
        "This sign-in was not started in this tab: sign in again."
    )
    assert page.url == f"{console.base_url}/ui/"
    assert await page.evaluate("sessionStorage.length") == 0
