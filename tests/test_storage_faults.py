"""A database that cannot store is a 503 with Retry-After, not a 500, and /readyz says so
(docs/operations.md#processes): the errors that are storage faults, the answers, and one
log line for many faults. The same against a real `storehooks serve` under load is in
test_storage_faults_serve.py."""

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from app.core.storage_faults import keeps_connection_broken, storage_fault
from app.errors import FaultLog, install_error_handlers
from tests.conftest import Tenant, client_for
from tests.support.databases import Databases
from tests.support.problems import assert_problem

RECOVERY_SECONDS = 10.0


def sqlite_error(message: str, code: int, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    error.sqlite_errorname = name
    return error


class PgError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the SQLSTATE as `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(error: Exception, cls: type[DBAPIError] = OperationalError) -> DBAPIError:
    return cls("INSERT INTO events …", {}, error)


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (sqlite_error("disk I/O error", 778, "SQLITE_IOERR_WRITE"), "SQLITE_IOERR_WRITE"),
        (
            sqlite_error("attempt to write a readonly database", 8, "SQLITE_READONLY"),
            "SQLITE_READONLY",
        ),
        (sqlite_error("database or disk is full", 13, "SQLITE_FULL"), "SQLITE_FULL"),
        (sqlite_error("unable to open database file", 14, "SQLITE_CANTOPEN"), "SQLITE_CANTOPEN"),
        (sqlite_error("database is locked", 5, "SQLITE_BUSY"), "SQLITE_BUSY"),
        (PgError("25006"), "SQLSTATE 25006"),
        (PgError("42501"), "SQLSTATE 42501"),
        (PgError("08006"), "SQLSTATE 08006"),
        (PgError("53100"), "SQLSTATE 53100"),
        (PgError("57P01"), "SQLSTATE 57P01"),
        (PgError("58030"), "SQLSTATE 58030"),
    ],
)
def test_storage_faults_are_named_by_the_drivers_code(error: Exception, fault: str) -> None:
    assert storage_fault(wrapped(error)) == fault


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (sqlite_error("no such table: evnts", 1, "SQLITE_ERROR"), OperationalError),
        (sqlite_error("UNIQUE constraint failed", 2067, "SQLITE_CONSTRAINT"), IntegrityError),
        (PgError("42601"), ProgrammingError),  # syntax error
        (PgError("23505"), IntegrityError),  # unique violation
        (PgError("57014"), DBAPIError),  # query cancelled: class 57, but not 57P
        (ValueError("not a driver error"), DBAPIError),
    ],
)
def test_a_query_that_is_wrong_is_not_a_storage_fault(
    error: Exception, cls: type[DBAPIError]
) -> None:
    assert storage_fault(wrapped(error, cls)) is None
    assert not keeps_connection_broken(error)


def test_a_busy_lock_keeps_its_connection_and_other_faults_replace_it() -> None:
    assert not keeps_connection_broken(sqlite_error("database is locked", 5, "SQLITE_BUSY"))
    assert keeps_connection_broken(sqlite_error("disk I/O error", 778, "SQLITE_IOERR_WRITE"))
    assert keeps_connection_broken(PgError("25006"))


@pytest.fixture
async def raising() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose only route raises what it is told, with the real error handlers."""
    app = FastAPI()
    install_error_handlers(app)
    errors = {
        "io": wrapped(sqlite_error("disk I/O error", 778, "SQLITE_IOERR_WRITE")),
        "read-only": wrapped(PgError("25006")),
        "bug": wrapped(sqlite_error("no such table: evnts", 1, "SQLITE_ERROR")),
    }

    @app.get("/{kind}")
    async def fail(kind: str) -> None:
        raise errors[kind]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.mark.parametrize("kind", ["io", "read-only"])
async def test_a_storage_fault_is_a_503_with_retry_after(
    raising: httpx.AsyncClient, kind: str
) -> None:
    response = await raising.get(f"/{kind}")
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert "retry later" in problem["detail"]


async def test_a_database_error_that_is_a_bug_stays_a_500(raising: httpx.AsyncClient) -> None:
    response = await raising.get("/bug")
    assert_problem(response, 500)
    assert "retry-after" not in response.headers


def test_many_faults_make_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    log = FaultLog(interval=60)
    with caplog.at_level(logging.WARNING, logger="app.errors"):
        for _ in range(500):
            log.record("SQLITE_IOERR_WRITE")
    assert len(caplog.records) == 1
    assert "SQLITE_IOERR_WRITE" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is None


# --- against the real database ----------------------------------------------------------


@pytest.fixture
async def unwritable(
    databases: Databases, database_url: str, tmp_path: Path
) -> AsyncIterator[Databases]:
    why_not = databases.why_writes_cannot_be_refused(tmp_path)
    if why_not is not None:
        pytest.skip(why_not)
    yield databases
    await databases.allow_writes(database_url)


async def test_post_events_is_503_while_the_database_refuses_writes_then_202_again(
    app: FastAPI, tenant: Tenant, unwritable: Databases, database_url: str
) -> None:
    stored = await tenant.event()
    await unwritable.refuse_writes(database_url)

    refused = await tenant.api.post("/events", json={"type": "purchase", "app_id": "app_42"})
    problem = assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "5"
    assert "retry later" in problem["detail"]
    async with client_for(app) as anonymous:
        not_ready = await anonymous.get("/readyz")
    assert not_ready.status_code == 503, not_ready.text
    assert not_ready.headers["retry-after"] == "5"
    reason = not_ready.json()["checks"]["database"]
    assert reason.startswith("error: SQLITE_") or reason == "error: SQLSTATE 25006", reason

    await unwritable.allow_writes(database_url)
    accepted = await _post_until_accepted(tenant.api)
    async with client_for(app) as anonymous:
        ready = await anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert await tenant.fetch(f"/events/{stored['id']}")
    assert await tenant.fetch(f"/events/{accepted['id']}")


async def test_readyz_finds_a_database_that_answers_reads_but_refuses_writes(
    app: FastAPI, tenant: Tenant, unwritable: Databases, database_url: str
) -> None:
    await unwritable.refuse_writes(database_url)
    listed = await tenant.api.get("/events")  # reads still work
    assert listed.status_code == 200, listed.text
    async with client_for(app) as anonymous:
        not_ready = await anonymous.get("/readyz")
    assert not_ready.status_code == 503, not_ready.text
    assert not_ready.json()["checks"]["database"] != "ok"


async def _post_until_accepted(client: httpx.AsyncClient) -> dict[str, Any]:
    """A connection opened while the database refused may refuse once more; the next
    one is new. A caller that honours Retry-After sees this as one retry."""
    deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
    while True:
        response = await client.post("/events", json={"type": "purchase", "app_id": "app_42"})
        if response.status_code == 202:
            accepted: dict[str, Any] = response.json()
            return accepted
        assert response.status_code == 503, response.text
        assert asyncio.get_running_loop().time() < deadline, "POST /events did not recover"
        await asyncio.sleep(0.1)
