"""Access tokens from a real OpenID provider (node-oidc-provider on 127.0.0.1, started by
tests/support/oidc_provider.py), beside API keys: who they speak for, what they may
do, and every way a token must be refused."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.enums import Scope
from app.core.settings import Settings
from tests.conftest import Tenant, client_for, free_port, running_app
from tests.support.oidc_provider import (
    AUDIENCE,
    CLIENT_ALGORITHMS,
    OTHER_AUDIENCE,
    OidcProvider,
    Person,
    claims_of,
    key_set,
    running_provider,
    signing_key,
)
from tests.support.receivers import Answer, Receiver, TestCA
from tests.test_tenancy import SERVED_PROBES, path_ids, populate, snapshot

EVERY_SCOPE = [scope.value for scope in Scope]


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with running_provider(free_port(), tmp_path_factory.mktemp("oidc")) as running:
        yield running


def oidc_settings(
    database_url: str, redis_url: str, provider: OidcProvider, **more: Any
) -> Settings:
    """Settings that trust `provider`, for the API's audience."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        oidc_issuer=provider.issuer,
        oidc_audience=AUDIENCE,
        **more,
    )


@pytest.fixture
def settings(database_url: str, redis_url: str, provider: OidcProvider) -> Settings:
    return oidc_settings(database_url, redis_url, provider)


async def token(provider: OidcProvider, login: str, **options: Any) -> str:
    return await asyncio.to_thread(provider.token_for, login, **options)


async def person_token(
    provider: OidcProvider, tenant: Tenant, login: str, *permissions: str, **options: Any
) -> str:
    """A token for a new person of `tenant` holding `permissions`."""
    provider.add(
        login, Person(name=login.title(), account_id=tenant.account_id, permissions=permissions)
    )
    return await token(provider, login, **options)


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}"


def header_of(jwt: str) -> dict[str, Any]:
    encoded = jwt.split(".")[0]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return decoded


async def answer(
    app: FastAPI, bearer: str, method: str = "GET", path: str = "/me", **kw: Any
) -> httpx.Response:
    async with client_for(app, bearer) as client:
        return await client.request(method, path, **kw)


async def refusal(app: FastAPI, bearer: str) -> str:
    """The detail of the 401 that `bearer` gets from GET /me."""
    response = await answer(app, bearer)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail: str = response.json()["detail"]
    return detail


# --- who a token speaks for ---------------------------------------------------------------


@pytest.mark.parametrize("client_id", sorted(CLIENT_ALGORITHMS))
async def test_a_token_of_each_algorithm_speaks_for_its_person(
    app: FastAPI, tenant: Tenant, provider: OidcProvider, client_id: str
) -> None:
    bearer = await person_token(
        provider, tenant, "dana", "webhooks:read", "deliveries:read", client_id=client_id
    )
    assert header_of(bearer)["alg"] == CLIENT_ALGORITHMS[client_id]
    response = await answer(app, bearer)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "account_id": tenant.account_id,
        "key_id": None,
        "subject": "dana",
        "name": "Dana",
        "scopes": ["deliveries:read", "webhooks:read"],
    }


async def test_permissions_are_scopes_and_nothing_more(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    reader = await person_token(provider, tenant, "rita", "webhooks:read", "admin:everything")
    creator = await person_token(provider, tenant, "carl", "webhooks:read", "webhooks:create")
    body = {
        "name": "orders",
        "url": "https://hooks.example.com/x",
        "http_method": "POST",
        "payload_type": "json",
    }

    assert (await answer(app, reader)).json()["scopes"] == ["webhooks:read"]  # unknown one dropped
    refused = await answer(app, reader, "POST", "/webhooks", json=body)
    assert refused.status_code == 403
    assert "webhooks:create" in refused.json()["detail"]
    created = await answer(app, creator, "POST", "/webhooks", json=body)
    assert created.status_code == 201, created.text
    listed = await answer(app, reader, "GET", "/webhooks")
    assert [webhook["id"] for webhook in listed.json()["data"]] == [created.json()["id"]]
    assert (
        await answer(app, reader, "DELETE", f"/webhooks/{created.json()['id']}")
    ).status_code == 403


async def test_a_person_with_every_permission_manages_keys(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    owner = await person_token(provider, tenant, "olga", *EVERY_SCOPE)
    minted = await answer(
        app, owner, "POST", "/api-keys", json={"name": "ci", "scopes": ["events:write"]}
    )
    assert minted.status_code == 201, minted.text
    revoked = await answer(app, owner, "DELETE", f"/api-keys/{minted.json()['id']}")
    assert revoked.status_code == 204


async def test_api_keys_work_beside_tokens(app: FastAPI, tenant: Tenant) -> None:
    response = await tenant.api.get("/me")
    assert response.status_code == 200
    assert response.json()["key_id"] is not None and response.json()["subject"] is None


async def test_a_persons_token_reaches_no_other_accounts_objects(
    app: FastAPI, tenant: Tenant, other: Tenant, provider: OidcProvider
) -> None:
    """Every route with an id (tests/test_tenancy.py's probes), as a person of B with
    every permission, on A's objects: 404, and A's objects unchanged."""
    a, b = await populate(tenant, "A orders", "app_a"), await populate(other, "B orders", "app_b")
    before = await snapshot(a)
    bearer = await person_token(provider, other, "bob", *EVERY_SCOPE)
    async with client_for(app, bearer) as person:
        for probe in SERVED_PROBES:
            path = probe.path.format(**path_ids(probe, a, b, made_up=False))
            response = await person.request(probe.method, path, json=probe.body)
            assert response.status_code == 404, (probe.name, response.text)
        listed = await person.get("/webhooks")
    assert [webhook["id"] for webhook in listed.json()["data"]] == [b.ids["webhook_id"]]
    assert await snapshot(a) == before


async def test_a_token_for_an_account_that_does_not_exist_is_refused(
    app: FastAPI, provider: OidcProvider
) -> None:
    provider.add("ghost", Person(name="Ghost", account_id="acc_nobody", permissions=EVERY_SCOPE))
    assert "acc_nobody" in await refusal(app, await token(provider, "ghost"))


async def test_a_token_without_an_account_claim_is_refused(
    app: FastAPI, provider: OidcProvider
) -> None:
    provider.add("drifter", Person(name="Drifter", account_id="", permissions=EVERY_SCOPE))
    assert "account_id" in await refusal(app, await token(provider, "drifter"))


async def test_a_token_is_checked_before_a_broken_body(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    bearer = await person_token(provider, tenant, "bea", *EVERY_SCOPE)
    broken = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert (await answer(app, bearer, "POST", "/webhooks", **broken)).status_code == 422
    assert (await answer(app, bearer + "x", "POST", "/webhooks", **broken)).status_code == 401


# --- tokens that must be refused ----------------------------------------------------------


async def test_an_expired_token_is_refused(
    database_url: str, redis_url: str, provider: OidcProvider, tenant: Tenant
) -> None:
    settings = oidc_settings(database_url, redis_url, provider, oidc_leeway_seconds=0)
    # Long enough to outlast the sign-in and the app's start on a loaded machine; the
    # second half then waits on the wall clock for the token's own exp.
    provider.add(
        "brief", Person(name="Brief", account_id=tenant.account_id, permissions=EVERY_SCOPE, ttl=8)
    )
    bearer = await token(provider, "brief")
    async with running_app(settings) as strict:
        assert (await answer(strict, bearer)).status_code == 200
        await asyncio.sleep(max(0.0, claims_of(bearer)["exp"] - time.time()) + 1.1)
        assert "expired" in await refusal(strict, bearer)


async def test_the_leeway_forgives_a_token_just_expired(
    app: FastAPI, provider: OidcProvider, tenant: Tenant
) -> None:
    provider.add(
        "late", Person(name="Late", account_id=tenant.account_id, permissions=EVERY_SCOPE, ttl=1)
    )
    bearer = await token(provider, "late")
    # Past exp, well within the default 30 s leeway.
    await asyncio.sleep(max(0.0, claims_of(bearer)["exp"] - time.time()) + 1.1)
    assert (await answer(app, bearer)).status_code == 200


async def test_a_token_for_another_audience_is_refused(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    bearer = await person_token(provider, tenant, "otto", *EVERY_SCOPE, resource=OTHER_AUDIENCE)
    assert claims_of(bearer)["aud"] == OTHER_AUDIENCE
    assert "aud" in await refusal(app, bearer)


async def test_a_token_from_another_issuer_with_the_same_keys_is_refused(
    app: FastAPI, tenant: Tenant, provider: OidcProvider, tmp_path: Path
) -> None:
    with running_provider(free_port(), tmp_path, keys=provider.keys) as impostor:
        impostor.add(
            "ivan", Person(name="Ivan", account_id=tenant.account_id, permissions=EVERY_SCOPE)
        )
        bearer = await token(impostor, "ivan")
    assert header_of(bearer)["kid"] in {key["kid"] for key in provider.keys}  # it would verify
    assert "iss" in await refusal(app, bearer)


async def test_alg_none_is_refused(app: FastAPI, tenant: Tenant, provider: OidcProvider) -> None:
    genuine = await person_token(provider, tenant, "nora", *EVERY_SCOPE)
    forged = unsigned({"alg": "none", "typ": "at+jwt"}, dict(claims_of(genuine))) + "."
    assert "'none'" in await refusal(app, forged)


async def test_hs256_signed_with_the_public_key_is_refused(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    genuine = await person_token(provider, tenant, "hal", *EVERY_SCOPE)
    rsa_key = next(key for key in provider.keys if key["alg"] == "RS256")
    public = {name: rsa_key[name] for name in ("kty", "n", "e", "kid", "alg", "use")}
    for secret in (json.dumps(public).encode(), rsa_key["n"].encode()):
        signing_input = unsigned(
            {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key["kid"]}, dict(claims_of(genuine))
        )
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        response = await answer(app, forged)
        assert response.status_code == 401
        assert "HS256" in response.json()["detail"]


async def test_an_algorithm_the_key_was_not_made_for_is_refused(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    genuine = await person_token(provider, tenant, "eve", *EVERY_SCOPE, client_id="tests-rs256")
    _header, _claims, signature = genuine.split(".")
    relabelled = unsigned({**header_of(genuine), "alg": "ES256"}, dict(claims_of(genuine)))
    assert "not in the identity provider's key set" in await refusal(
        app, f"{relabelled}.{signature}"
    )


async def test_a_changed_claim_breaks_the_signature(
    app: FastAPI, tenant: Tenant, other: Tenant, provider: OidcProvider
) -> None:
    genuine = await person_token(provider, tenant, "mal", "webhooks:read")
    _header, _claims, signature = genuine.split(".")
    widened = unsigned(header_of(genuine), {**claims_of(genuine), "account_id": other.account_id})
    assert "signature" in await refusal(app, f"{widened}.{signature}")


async def test_with_no_provider_configured_a_token_is_just_an_unknown_key(
    database_url: str, redis_url: str, provider: OidcProvider, tenant: Tenant
) -> None:
    bearer = await person_token(provider, tenant, "una", *EVERY_SCOPE)
    async with running_app(Settings(database_url=database_url, redis_url=redis_url)) as keys_only:
        assert "API key" in await refusal(keys_only, bearer)


async def test_an_unreachable_provider_is_a_503_to_retry(
    database_url: str, redis_url: str, provider: OidcProvider, tenant: Tenant
) -> None:
    bearer = await person_token(provider, tenant, "uma", *EVERY_SCOPE)
    settings = oidc_settings(
        database_url, redis_url, provider, oidc_jwks_url=f"http://127.0.0.1:{free_port()}/jwks"
    )
    async with running_app(settings) as cut_off:
        response = await answer(cut_off, bearer)
        assert (await tenant.api.get("/me")).status_code == 200  # keys do not need it
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="OIDC_AUDIENCE"):
        Settings(oidc_issuer="https://id.example.com")


# --- the provider's keys change -----------------------------------------------------------


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[OidcProvider]:
    with running_provider(free_port(), tmp_path) as running:
        yield running


@pytest.fixture
async def rotating_app(
    database_url: str, redis_url: str, rotating: OidcProvider
) -> AsyncIterator[FastAPI]:
    settings = oidc_settings(database_url, redis_url, rotating)
    async with running_app(settings) as application:
        yield application


async def test_a_new_key_at_the_provider_is_fetched_once_and_made_up_ones_not_at_all(
    rotating_app: FastAPI, rotating: OidcProvider, database_url: str
) -> None:
    from tests.conftest import tenant_of

    async with tenant_of(rotating_app, "Rotor") as tenant:
        before = await person_token(rotating, tenant, "rob", *EVERY_SCOPE)
        assert (await answer(rotating_app, before)).status_code == 200
        assert rotating.jwks_requests() == 1

        await asyncio.sleep(10.5)  # past the refetch limit (UNKNOWN_KEY_REFETCH_SECONDS)
        new_key = signing_key("RS256")
        await asyncio.to_thread(rotating.restart, [new_key, *rotating.keys])
        after = await token(rotating, "rob")
        assert header_of(after)["kid"] == new_key["kid"]
        assert (await answer(rotating_app, after)).status_code == 200  # unknown kid: fetched
        assert (await answer(rotating_app, before)).status_code == 200  # the old key is still there
        assert rotating.jwks_requests() == 1  # the restarted provider counts from zero

        made_up = []
        for number in range(5):
            _header, _claims, signature = after.split(".")
            renamed = unsigned(
                {**header_of(after), "kid": f"made-up-{number}"}, dict(claims_of(after))
            )
            made_up.append(f"{renamed}.{signature}")
        answers = await asyncio.gather(*(answer(rotating_app, forged) for forged in made_up))
        assert [response.status_code for response in answers] == [401] * 5
        assert all("made-up" in response.json()["detail"] for response in answers)
        assert rotating.jwks_requests() == 1  # fetched a moment ago: not again

        await asyncio.to_thread(rotating.restart, key_set())  # every old key withdrawn
        await asyncio.sleep(10.5)
        stranger = await token(rotating, "rob")
        assert (await answer(rotating_app, stranger)).status_code == 200
        assert rotating.jwks_requests() == 1
        withdrawn = await answer(rotating_app, after)
        assert withdrawn.status_code == 401  # its key is gone from the new set


async def test_a_person_has_a_request_budget_of_their_own(
    database_url: str, redis_url: str, provider: OidcProvider, tenant: Tenant
) -> None:
    # One request, then a refill every 100 s: no machine is slow enough to refill the
    # bucket between the test's two requests.
    settings = oidc_settings(database_url, redis_url, provider, rate_limit_per_second=0.01)
    bearer = await person_token(provider, tenant, "quinn", *EVERY_SCOPE)
    async with running_app(settings) as limited:
        assert (await answer(limited, bearer)).status_code == 200
        spent = await answer(limited, bearer)
        assert spent.status_code == 429
        assert int(spent.headers["retry-after"]) >= 1
        async with client_for(limited, tenant.token) as key:  # the account's key: its own budget
            assert (await key.get("/me")).status_code == 200


async def test_the_key_set_is_fetched_over_verified_tls_only(
    database_url: str, redis_url: str, provider: OidcProvider, tenant: Tenant, tmp_path: Path
) -> None:
    """A key set served over HTTPS by a certificate of the tests' own CA: refused until
    STOREHOOKS_CA_BUNDLE names that CA, never fetched unverified."""
    bearer = await person_token(provider, tenant, "tess", *EVERY_SCOPE)
    async with httpx.AsyncClient() as client:
        published = (await client.get(f"{provider.issuer}/jwks")).content
    test_ca = TestCA(tmp_path)
    with Receiver(tls=test_ca.server_context(), host="localhost") as key_server:
        key_server.default = Answer(body=published, headers={"content-type": "application/json"})
        results = []
        for ca_bundle in (None, str(test_ca.bundle)):
            settings = oidc_settings(
                database_url,
                redis_url,
                provider,
                oidc_jwks_url=key_server.url,
                ca_bundle=ca_bundle,
            )
            async with running_app(settings) as application:
                results.append((await answer(application, bearer)).status_code)
    assert results == [503, 200]
    assert len(key_server.requests) == 1  # the unverified handshake sent no request


async def test_a_persons_changes_are_attributed_to_them(
    app: FastAPI, tenant: Tenant, provider: OidcProvider
) -> None:
    webhook = await tenant.webhook(url="https://hooks.example.com/old")
    bearer = await person_token(provider, tenant, "dana", *EVERY_SCOPE)
    new_url = {"url": "https://hooks.example.com/new"}
    changed = await answer(app, bearer, "PATCH", f"/webhooks/{webhook['id']}", json=new_url)
    assert changed.status_code == 200, changed.text

    history = await tenant.api.get("/audit-events", params={"target_id": webhook["id"]})
    assert history.status_code == 200, history.text
    by_person, by_key = history.json()["data"]
    assert (by_person["actor_type"], by_person["actor_id"], by_person["actor_name"]) == (
        "user",
        "dana",
        "Dana",
    )
    assert by_person["action"] == "webhook.updated"
    assert by_person["changes"] == {
        "url": {"before": "https://hooks.example.com/old", "after": new_url["url"]}
    }
    assert (by_key["actor_type"], by_key["action"]) == ("api_key", "webhook.created")
    theirs = await answer(app, bearer, "GET", "/audit-events", params={"actor": "dana"})
    assert [entry["id"] for entry in theirs.json()["data"]] == [by_person["id"]]


async def test_a_provider_that_is_down_is_asked_again_only_after_a_while(
    database_url: str, redis_url: str
) -> None:
    with Receiver() as down:
        down.default = Answer(500, b"down")
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            oidc_issuer=f"http://127.0.0.1:{down.port}",
            oidc_audience=AUDIENCE,
            oidc_console_client_id="storehooks-console",
        )
        async with running_app(settings) as application:
            async with client_for(application) as anonymous:
                pages = [await anonymous.get("/ui/config.json") for _ in range(3)]
            forged = unsigned({"alg": "RS256", "kid": "k"}, {"sub": "x"}) + ".c2ln"
            refused = await answer(application, forged)
    assert [page.status_code for page in pages] == [503] * 3
    assert refused.status_code == 503
    assert [request.path for request in down.requests] == ["/.well-known/openid-configuration"]
