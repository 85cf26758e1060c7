"""Access tokens from the store's identity provider: JWTs signed with one of the
provider's published keys (docs/security.md#identity-provider-tokens).

A token is accepted when its algorithm is one of RS256, ES256 and EdDSA, its key is in
the provider's key set, and its `iss`, `aud`, `exp` and `nbf` hold (with a small leeway).
The key set is fetched when first needed, trusted for `KEY_SET_MAX_AGE` seconds, and
fetched again at once for a key id it lacks, but not more often than every
`UNKNOWN_KEY_REFETCH_SECONDS`, so tokens with made-up key ids cannot make the API hammer
the provider."""

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.principal import Principal
from app.core.enums import Scope
from app.core.settings import Settings
from app.core.tables import accounts
from app.core.tls import ssl_context
from app.errors import IdentityProviderUnavailable, Unauthorized

ALGORITHMS = ("RS256", "ES256", "EdDSA")
# RFC 9068's type of a JWT access token; providers that predate it send JWT or none.
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt"})
KEY_SET_MAX_AGE = 900.0
UNKNOWN_KEY_REFETCH_SECONDS = 10.0
_FETCH_TIMEOUT_SECONDS = 5.0


def looks_like_jwt(token: str) -> bool:
    """An API key is `<id>.<secret>`; a JWT is three base64url parts."""
    return token.count(".") == 2


class OidcVerifier:
    """Checks access tokens against one provider's keys. One per API process."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.oidc_issuer and settings.oidc_audience
        self._engine = engine
        self._known_accounts: set[str] = set()  # accounts are never deleted
        self._issuer = settings.oidc_issuer
        self._audience = settings.oidc_audience
        self._jwks_url = settings.oidc_jwks_url
        self._account_claim = settings.oidc_account_claim
        self._permissions_claim = settings.oidc_permissions_claim
        self._leeway = settings.oidc_leeway_seconds
        self._client = client or httpx.AsyncClient(
            timeout=_FETCH_TIMEOUT_SECONDS, verify=ssl_context(settings.ca_bundle)
        )
        self._clock = clock
        self._discovery: Mapping[str, Any] | None = None
        self._discovery_failure: tuple[float, IdentityProviderUnavailable] | None = None
        self._discovering = asyncio.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetching = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def discovery(self) -> Mapping[str, Any]:
        """The provider's OpenID configuration (`/.well-known/openid-configuration`),
        fetched once; its `issuer` must be the configured one (OpenID Connect Discovery
        1.0, section 4.3)."""
        async with self._discovering:  # requests that arrive together fetch once
            if self._discovery is not None:
                return self._discovery
            # A failure is answered again for a while rather than fetched again at every
            # request (and every console file) while the provider is down.
            failed = self._discovery_failure
            if failed is not None and self._clock() - failed[0] < UNKNOWN_KEY_REFETCH_SECONDS:
                raise failed[1]
            try:
                self._discovery = await self._fetch_discovery()
            except IdentityProviderUnavailable as error:
                self._discovery_failure = (self._clock(), error)
                raise
            return self._discovery

    async def _fetch_discovery(self) -> Mapping[str, Any]:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url)
        if document.get("issuer") != self._issuer:
            raise IdentityProviderUnavailable(
                f"The identity provider at {url} names another issuer: "
                f"{document.get('issuer')!r}, not {self._issuer!r}."
            )
        return document

    async def verify(self, token: str) -> Principal:
        """The person a valid token speaks for; Unauthorized, saying why, otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthorized("The bearer token is neither an API key nor a JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthorized(
                f"The token's algorithm {algorithm!r} is not accepted ({', '.join(ALGORITHMS)})."
            )
        if str(header.get("typ", "jwt")).lower() not in _ACCESS_TOKEN_TYPES:
            raise Unauthorized(f"The token's type {header.get('typ')!r} is not an access token.")
        key = await self._key(header.get("kid"), algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("The token is not valid yet (nbf).") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"The token is not for this API (aud {self._audience}).") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(f"The token is not from {self._issuer} (iss).") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("The token's signature does not verify.") from None
        except jwt.PyJWTError as error:
            raise Unauthorized(f"The token is not valid: {error}.") from None
        principal = self._principal(claims)
        if not await self._account_exists(principal.account_id):
            raise Unauthorized(f"The token's account {principal.account_id!r} does not exist here.")
        return principal

    async def _account_exists(self, account_id: str) -> bool:
        if account_id not in self._known_accounts:
            async with self._engine.connect() as connection:
                found = await connection.scalar(
                    select(accounts.c.id).where(accounts.c.id == account_id)
                )
            if found is None:
                return False
            self._known_accounts.add(account_id)
        return True

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        account_id = claims.get(self._account_claim)
        if not isinstance(account_id, str) or not account_id:
            raise Unauthorized(f"The token names no account (claim `{self._account_claim}`).")
        granted = claims.get(self._permissions_claim, [])
        if isinstance(granted, str):  # a space-separated `scope` claim
            granted = granted.split()
        if not isinstance(granted, list):
            granted = []
        name = next(
            (claims[c] for c in ("name", "preferred_username", "email") if claims.get(c)), None
        )
        return Principal(
            account_id=account_id,
            scopes=Scope.known(granted),
            subject=str(claims["sub"]),
            name=str(name) if name is not None else None,
        )

    async def _key(self, kid: Any, algorithm: str) -> Any:
        if self._stale():
            await self._refresh(only_if_older_than=KEY_SET_MAX_AGE)
        found = self._find(kid, algorithm)
        if found is None:
            await self._refresh(only_if_older_than=UNKNOWN_KEY_REFETCH_SECONDS)
            found = self._find(kid, algorithm)
        if found is None:
            raise Unauthorized(
                f"The token's key (kid {kid!r}, {algorithm}) is not in the identity "
                "provider's key set."
            )
        return found.key

    def _find(self, kid: Any, algorithm: str) -> jwt.PyJWK | None:
        if kid is None:  # a provider with a single key may leave the id out
            keys = list(self._keys.values())
            found = keys[0] if len(keys) == 1 else None
        else:
            found = self._keys.get(str(kid))
        # A key serves the algorithm it names (or its type's default): a token whose header
        # names another one, an RSA key's HS256 say, is refused before any signature check.
        if found is None or found.algorithm_name != algorithm:
            return None
        return found

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= KEY_SET_MAX_AGE

    async def _refresh(self, only_if_older_than: float) -> None:
        async with self._fetching:  # requests that miss together fetch once
            if (
                self._fetched_at is not None
                and self._clock() - self._fetched_at < only_if_older_than
            ):
                return
            try:
                url = self._jwks_url or (await self.discovery())["jwks_uri"]
                document = await self._get_json(url)
            except IdentityProviderUnavailable:
                if self._keys:  # keep checking with the keys known so far
                    self._fetched_at = self._clock()
                    return
                raise
            self._keys = _signing_keys(document)
            self._fetched_at = self._clock()

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        try:
            answer = await self._client.get(url)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise IdentityProviderUnavailable(
                f"The identity provider could not be reached at {url}: {error}."
            ) from None
        if not isinstance(document, Mapping):
            raise IdentityProviderUnavailable(
                f"The identity provider's {url} is not a JSON object."
            )
        return document


def _signing_keys(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The set's keys for signatures of the accepted algorithms, by key id (or by
    position, for a key without one)."""
    keys: dict[str, jwt.PyJWK] = {}
    for position, data in enumerate(document.get("keys", [])):
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if data.get("alg") not in (None, *ALGORITHMS):
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue  # a key this library cannot use (another curve, say)
        keys[str(data.get("kid", f"#{position}"))] = key
    return keys
