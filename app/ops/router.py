"""GET /healthz, /readyz and /metrics: no key needed."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app import resources
from app.core.storage_faults import storage_fault
from app.errors import RETRY_AFTER_SECONDS, problem_response, problem_responses
from app.ops import gauges
from app.ops.schemas import Health, Readiness

router = APIRouter(tags=["operations"])
# No key needed: `security: []` says so to generators and linters.
PUBLIC: dict[str, Any] = {"security": []}
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health, operation_id="getHealth", openapi_extra=PUBLIC)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=problem_responses(503),
    operation_id="getReadiness",
    openapi_extra=PUBLIC,
)
async def readyz(request: Request) -> Response:
    state = resources.of(request.app)
    checks = {
        "database": await _check(_database_writes(state.engine)),
        "redis": await _check(state.redis.ping()),
    }
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        return problem_response(
            503,
            f"Not ready: {' and '.join(failing)} unavailable.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"checks": checks},
        )
    return JSONResponse({"status": "ok", "checks": checks})


async def _database_writes(engine: Any) -> None:
    """Ready means the database takes writes, not only that it answers: a read-only or
    failing disk, a standby or a read-only transaction pass `SELECT 1`."""
    if engine.dialect.name == "sqlite":
        # SQLite writes nothing before the commit, so only a committed write finds a
        # disk that refuses: the header's user_version, set to what it is (one page).
        async with engine.begin() as connection:
            version = (await connection.exec_driver_sql("PRAGMA user_version")).scalar_one()
            await connection.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        return
    # PostgreSQL refuses a write to a read-only transaction or without the privilege
    # when the statement starts, so inserting no row and rolling back finds out.
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO events SELECT * FROM events WHERE false"))
        await connection.rollback()


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        fault = storage_fault(exc)
        return f"error: {type(exc).__name__}" if fault is None else f"error: {fault}"
    return "ok"


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    operation_id="getMetrics",
    openapi_extra=PUBLIC,
)
async def metrics(request: Request) -> Response:
    await gauges.refresh(resources.of(request.app))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
