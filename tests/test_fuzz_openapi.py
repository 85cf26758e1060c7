"""Schemathesis against the app's own OpenAPI document (the Hardening issue, part 1).

Every operation of `/openapi.json` is fuzzed in process (schemathesis' ASGI transport)
twice: with an all-scopes key of a fresh account, and without a key. Each answer must
not be a 5xx, must use a status code and a body its operation documents, and, when it
is an error, must be `application/problem+json`; without a key every authenticated
operation must answer 401. A plain test then checks that the document declares, for
each route, the problem answers (401, 403, 404, 409, 413, 422) that the route can give.

Reproducible: a fixed schemathesis seed (which Hypothesis' `derandomize` would not be
enough for: schemathesis hands Hypothesis a seed of its own, random unless configured),
no example database. No delivery goes out: no worker runs in these tests, and
`allow_private_networks` is off as in production.
"""

import copy
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.auth import service as auth_service
from app.body_limit import MAX_BODY_BYTES
from app.core.db import make_engine, make_sessionmaker, session_scope
from app.core.settings import Settings
from app.errors import PROBLEM_CONTENT_TYPE, PROBLEM_SCHEMA_REF, Problem
from app.main import create_app
from tests.conftest import WEBHOOK_BODY, client_for
from tests.support.databases import Databases

SEED = 20261129
PUBLIC_URL = "https://hooks.example.com/fuzz"
# Only the document is read here; the fuzzed app is built per module below.
DOCUMENT: dict[str, Any] = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(
    copy.deepcopy(DOCUMENT), config=schemathesis.Config(seed=SEED)
)

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
OPERATIONS = [
    (method, path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in HTTP_METHODS
]
AUTHENTICATED = frozenset(
    (method.upper(), path) for method, path, operation in OPERATIONS if operation.get("security")
)
# The routes that answer 409 (docs/api.md#errors): a ping or retry on an inactive webhook, a
# retry of a delivery that is neither failed nor cancelled, a duplicate action.
CONFLICTS = frozenset(
    {
        ("post", "/webhooks/{webhook_id}/test"),
        ("post", "/webhooks/{webhook_id}/actions"),
        ("post", "/deliveries/{delivery_id}/retry"),
    }
)
# The methods whose bodies BodyLimitMiddleware reads, and so may refuse with 413.
UNLIMITED_METHODS = frozenset({"get", "head", "options", "delete"})


# --- checks --------------------------------------------------------------------------


def errors_are_problems(_ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx answer is `application/problem+json` with a Problem body whose
    `status` is the answer's status code."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM_CONTENT_TYPE, (
        f"{case.method} {case.formatted_path} answered {response.status_code} "
        f"as {content_type!r}, not {PROBLEM_CONTENT_TYPE}"
    )
    problem = Problem.model_validate(json.loads(response.content))
    assert problem.status == response.status_code, response.content
    return None


def refused_without_a_key(_ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Without a key, an operation that needs one answers 401, whatever else is wrong."""
    if (case.method.upper(), case.path) in AUTHENTICATED:
        assert response.status_code == 401, (
            f"{case.method} {case.formatted_path} without a key answered "
            f"{response.status_code}: {response.content[:300]!r}"
        )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    errors_are_problems,
]


# --- the app under test --------------------------------------------------------------


@dataclass
class Fuzzed:
    app: FastAPI
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Seeded:
    """Real ids of the account's objects, by the parameter name that takes them."""

    ids: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        self.ids.setdefault(name, []).append(value)


@pytest.fixture(scope="module")
async def fuzzed(
    databases: Databases, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fuzzed]:
    """The app on a database of its own, with one account and its all-scopes key (made
    by the service, as `storehooks accounts create` does). Schemathesis runs the app's
    lifespan on its own event loop; it is shut down when the module is done."""
    redis.Redis.from_url(redis_server).flushall()
    url = await databases.migrated(tmp_path_factory.mktemp("fuzz"))
    engine = make_engine(url)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            _account, _key, token = await auth_service.create_account(session, "Fuzz Games")
    finally:
        await engine.dispose()
    app = create_app(
        Settings(database_url=url, redis_url=redis_server, allow_private_networks=False)
    )
    try:
        yield Fuzzed(app, token)
    finally:
        asgi.shutdown_lifespans()
        await databases.drop(url)


def client_of(app: FastAPI) -> asgi.ASGIClient:
    """A `requests` session into `app` on schemathesis' event loop, where its lifespan runs."""
    return asgi.get_client(app)  # type: ignore[arg-type]  # Starlette's ASGI types are wider


def created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def seeded(fuzzed: Fuzzed) -> Iterator[Seeded]:
    """Fresh objects for one operation's run, so that generated requests reach real
    objects too, not only 404s: an active webhook with an action, an event delivered to
    it and a test delivery; an inactive webhook; a spare API key."""
    seeded = Seeded()
    with client_of(fuzzed.app) as client:
        client.headers.update(fuzzed.auth)
        active = created(client.post("/webhooks", json=WEBHOOK_BODY))
        inactive = created(client.post("/webhooks", json={**WEBHOOK_BODY, "active": False}))
        action = created(
            client.post(
                f"/webhooks/{active['id']}/actions",
                json={"event_type": "purchase", "app_id": "app_42"},
            )
        )
        event = created(client.post("/events", json={"type": "purchase", "app_id": "app_42"}), 202)
        ping = created(client.post(f"/webhooks/{active['id']}/test"), 202)
        deliveries = client.get("/deliveries", params={"event_id": event["id"]}).json()["data"]
        key = created(client.post("/api-keys", json={"name": "spare", "scopes": ["events:read"]}))
    seeded.add("webhook_id", active["id"])
    seeded.add("webhook_id", inactive["id"])
    seeded.add("action_id", action["id"])
    seeded.add("event_id", event["id"])
    seeded.add("delivery_id", ping["delivery_id"])
    for delivery in deliveries:
        seeded.add("delivery_id", delivery["id"])
    seeded.add("key_id", key["id"])
    yield seeded


def with_real_values(case: Any, data: st.DataObject, seeded: Seeded) -> None:
    """Replaces each id-taking path or query parameter by a real id, and a body's `url`
    by one the app accepts, or keeps the generated value (Hypothesis shrinks towards
    keeping it): otherwise nearly every request would end in a 404 or a 422."""
    for parameters in (case.path_parameters, case.query):
        for name, value in list((parameters or {}).items()):
            real = seeded.ids.get(name)
            if real and isinstance(value, str):
                parameters[name] = data.draw(st.sampled_from([value, *real]), label=name)
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body["url"] = data.draw(st.sampled_from([case.body["url"], PUBLIC_URL]), label="url")


# --- fuzzing -------------------------------------------------------------------------


@schema.parametrize()
@schema.given(data=st.data())
@settings(FUZZ_SETTINGS, max_examples=50)
def test_fuzz_with_a_key(case: Any, data: st.DataObject, fuzzed: Fuzzed, seeded: Seeded) -> None:
    with_real_values(case, data, seeded)
    # On the case itself: a negative case that only left the key out becomes a positive
    # one (its transport would drop a key passed beside it); test_fuzz_without_a_key
    # covers the missing key.
    case.headers = {**(case.headers or {}), **fuzzed.auth}
    case.call_and_validate(app=fuzzed.app, checks=CHECKS)


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=10)
def test_fuzz_without_a_key(case: Any, fuzzed: Fuzzed) -> None:
    case.headers = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() != "authorization"
    }
    case.call_and_validate(app=fuzzed.app, checks=[*CHECKS, refused_without_a_key])


# --- the document --------------------------------------------------------------------


def expected_problems(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The problem answers a route can give, read from what the route takes."""
    parameters = operation.get("parameters", [])
    expected: set[int] = set()
    if operation.get("security"):
        expected |= {401, 403}  # no or a bad key; a key without the route's scope
    if any(parameter["in"] == "path" for parameter in parameters):
        expected.add(404)  # an id of no object of the account
    if "requestBody" in operation or any(parameter["in"] != "path" for parameter in parameters):
        expected.add(422)  # a body, query or header that does not validate
    if "requestBody" in operation or method not in UNLIMITED_METHODS:
        expected.add(413)  # BodyLimitMiddleware reads the body of every such request
    if (method, path) in CONFLICTS:
        expected.add(409)
    return expected


def test_the_conflict_routes_exist() -> None:
    assert CONFLICTS - {(method, path) for method, path, _ in OPERATIONS} == set()


@pytest.mark.parametrize(
    ("method", "path"),
    [(method, path) for method, path, _ in OPERATIONS],
    ids=[f"{method.upper()} {path}" for method, path, _ in OPERATIONS],
)
def test_a_body_over_the_limit_is_413_exactly_where_expected(
    fuzzed: Fuzzed, method: str, path: str
) -> None:
    """What `expected_problems` assumes: BodyLimitMiddleware refuses a large body, before
    any routing or key check, on every request but those of UNLIMITED_METHODS."""
    url = path.format_map(defaultdict(lambda: "x"))
    with client_of(fuzzed.app) as client:
        response = client.request(
            method,
            url,
            data=b"{" + b" " * MAX_BODY_BYTES + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert (response.status_code == 413) == (method not in UNLIMITED_METHODS), response.text


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    OPERATIONS,
    ids=[f"{method.upper()} {path}" for method, path, _ in OPERATIONS],
)
def test_the_document_declares_every_problem_a_route_can_answer(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    missing = sorted(expected_problems(method, path, operation) - {int(s) for s in responses})
    assert missing == [], f"{method.upper()} {path} does not declare {missing}"
    for status in expected_problems(method, path, operation):
        content = responses[str(status)].get("content", {})
        assert set(content) == {PROBLEM_CONTENT_TYPE}, (method, path, status, content)
        assert content[PROBLEM_CONTENT_TYPE]["schema"] == {"$ref": PROBLEM_SCHEMA_REF}


async def test_the_fuzzed_document_is_the_one_the_running_app_serves(app: FastAPI) -> None:
    async with client_for(app) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT
