"""A real OpenID provider for the tests: node-oidc-provider (npm, locked in
tests/support/oidc_provider/package-lock.json), run on 127.0.0.1 with its development
login pages. The tests choose its signing keys, its people and their permissions, and
get access tokens from it the way a browser does: the authorization code flow with PKCE
through its login and consent forms."""

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

HERE = Path(__file__).parent / "oidc_provider"
AUDIENCE = "https://storehooks.test/api"
OTHER_AUDIENCE = "https://other.test/api"
# One test client per signing algorithm (the provider signs a client's access tokens
# with the algorithm named here), and the console's.
CLIENT_ALGORITHMS = {"tests-rs256": "RS256", "tests-es256": "ES256", "tests-eddsa": "EdDSA"}
CONSOLE_CLIENT = "storehooks-console"
REDIRECT_URI = "http://127.0.0.1/callback"


def install() -> None:
    """`npm ci` into tests/support/oidc_provider/node_modules when missing or stale."""
    lock = HERE / "package-lock.json"
    installed = HERE / "node_modules" / ".installed"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is missing: apt-get install nodejs npm (.ci/run does)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    installed.touch()


def signing_key(algorithm: str, kid: str | None = None) -> dict[str, Any]:
    """A new private key as a JWK, for the provider's key set."""
    jwk: dict[str, Any]
    if algorithm == "RS256":
        jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048), as_dict=True)
    elif algorithm == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    elif algorithm == "EdDSA":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    else:
        raise ValueError(algorithm)
    return {**jwk, "alg": algorithm, "use": "sig", "kid": kid or secrets.token_hex(8)}


def key_set() -> list[dict[str, Any]]:
    return [signing_key(algorithm) for algorithm in ("RS256", "ES256", "EdDSA")]


@dataclass
class Person:
    name: str
    account_id: str
    permissions: Sequence[str]
    ttl: int = 300  # seconds an access token lasts


@dataclass
class OidcProvider:
    """One running provider. `people` maps a login name to who it is; the provider reads
    the file on every sign-in, so tests add people while it runs."""

    port: int
    workdir: Path
    keys: list[dict[str, Any]]
    console_redirect_uri: str = REDIRECT_URI
    people: dict[str, Person] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, login: str, person: Person) -> None:
        self.people[login] = person
        (self.workdir / "people.json").write_text(
            json.dumps({name: vars(someone) for name, someone in self.people.items()})
        )

    def start(self) -> None:
        if not (self.workdir / "people.json").exists():
            (self.workdir / "people.json").write_text("{}")
        clients = [
            {
                "client_id": client_id,
                "token_endpoint_auth_method": "none",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
            for client_id in CLIENT_ALGORITHMS
        ] + [
            {
                "client_id": CONSOLE_CLIENT,
                "token_endpoint_auth_method": "none",
                "redirect_uris": [self.console_redirect_uri],
                "post_logout_redirect_uris": [self.console_redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ]
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": self.keys},
            "audience": AUDIENCE,
            "other_audiences": [OTHER_AUDIENCE],
            "clients": clients,
            "client_algs": {**CLIENT_ALGORITHMS, CONSOLE_CLIENT: "ES256"},
            "people_file": str(self.workdir / "people.json"),
        }
        (self.workdir / "config.json").write_text(json.dumps(config))
        log = (self.workdir / "provider.log").open("ab")
        self.process = subprocess.Popen(
            ["node", str(HERE / "provider.mjs"), str(self.workdir / "config.json")],
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start: {self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, keys: list[dict[str, Any]]) -> None:
        """The provider again on the same port, signing with `keys` (its first key of each
        algorithm signs): a key rotation."""
        self.stop()
        self.keys = keys
        self.start()

    def log(self) -> str:
        return (self.workdir / "provider.log").read_text(errors="replace")[-4000:]

    def jwks_requests(self) -> int:
        count: int = httpx.get(f"{self.issuer}/test/jwks-requests").json()["count"]
        return count

    def _answers(self) -> bool:
        try:
            url = f"{self.issuer}/.well-known/openid-configuration"
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def token_for(
        self, login: str, client_id: str = "tests-rs256", resource: str = AUDIENCE
    ) -> str:
        """An access token for `login`, by the code flow with PKCE through the provider's
        own login and consent forms."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "resource": resource,
        }
        with httpx.Client(base_url=self.issuer, timeout=10) as browser:
            page = browser.get("/auth", params=params, follow_redirects=True)
            for form in (
                {"prompt": "login", "login": login, "password": "x"},
                {"prompt": "consent"},
            ):
                if page.status_code != 200:
                    raise AssertionError(f"the provider answered {page.status_code}: {page.text}")
                action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
                assert action is not None, page.text
                page = browser.post(urljoin(str(page.url), action.group(1)), data=form)
                while page.is_redirect and not _is_callback(page):
                    page = browser.get(urljoin(str(page.url), page.headers["location"]))
                if _is_callback(page):
                    break
            assert _is_callback(page), page.text
            query = parse_qs(urlsplit(page.headers["location"]).query)
            assert "code" in query, query
            answer = browser.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": REDIRECT_URI,
                    "client_id": client_id,
                    "code_verifier": verifier,
                },
            )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


def _is_callback(response: httpx.Response) -> bool:
    return response.is_redirect and response.headers["location"].startswith(REDIRECT_URI)


@contextmanager
def running_provider(
    port: int, workdir: Path, keys: list[dict[str, Any]] | None = None, **options: Any
) -> Iterator[OidcProvider]:
    install()
    provider = OidcProvider(port=port, workdir=workdir, keys=keys or key_set(), **options)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


def claims_of(token: str) -> Mapping[str, Any]:
    """A token's claims, unverified (for the tests' own checks)."""
    payload = token.split(".")[1]
    decoded: Mapping[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded
