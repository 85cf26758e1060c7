"""GET /healthz, /readyz and /metrics: no key needed."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.errors import problem_response, problem_responses
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
    state = request.app.state
    checks = {
        "database": await _check(_ping_database(state.engine)),
        "redis": await _check(state.redis.ping()),
    }
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        return problem_response(
            503, f"Not ready: {' and '.join(failing)} unavailable.", extra={"checks": checks}
        )
    return JSONResponse({"status": "ok", "checks": checks})


async def _ping_database(engine: Any) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"error: {type(exc).__name__}"
    return "ok"


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    operation_id="getMetrics",
    openapi_extra=PUBLIC,
)
async def metrics(request: Request) -> Response:
    await gauges.refresh(request.app.state)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
