"""One error shape for every answer that is not a success: RFC 9457 problem details.

Services raise `ProblemError` subclasses; the handlers here render them, and
also FastAPI's validation errors, Starlette's HTTP errors (unknown route,
wrong method) and the database's storage faults (a 503: retry later), as
`application/problem+json`.
"""

import logging
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.storage_faults import storage_fault

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
# What a 503 tells the caller to wait: a database that recovers takes about this long
# to be written again (its connections are replaced on their next use).
RETRY_AFTER_SECONDS = 5
# One log line per this many seconds while the database refuses, not one per request.
FAULT_LOG_INTERVAL_SECONDS = 10.0


class ProblemDetail(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """The body of every error answer."""

    # `type` is always sent; `errors` only on a 422, and never as null.
    model_config = ConfigDict(json_schema_extra={"required": ["type", "title", "status", "detail"]})

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: Annotated[
        list[ProblemDetail] | SkipJsonSchema[None],
        Field(json_schema_extra=lambda schema: schema.pop("default")),
    ] = None


class ProblemError(Exception):
    status: ClassVar[int] = 500
    default_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(self.default_headers if headers is None else headers)


class Unauthorized(ProblemError):
    status = 401
    default_headers = MappingProxyType({"WWW-Authenticate": "Bearer"})


class IdentityProviderUnavailable(ProblemError):
    """The identity provider's keys could not be fetched, so no token can be checked."""

    status = 503
    default_headers = MappingProxyType({"Retry-After": str(RETRY_AFTER_SECONDS)})


class Forbidden(ProblemError):
    status = 403


class NotFound(ProblemError):
    status = 404


class Conflict(ProblemError):
    status = 409


class PayloadTooLarge(ProblemError):
    status = 413


class Unprocessable(ProblemError):
    """A validation failure found after parsing (e.g. a refused URL), naming its field."""

    status = 422

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = list(loc)


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


# The headers that always come with a problem of that status.
PROBLEM_HEADERS: Mapping[int, dict[str, Any]] = MappingProxyType(
    {
        401: {
            "WWW-Authenticate": {
                "description": "`Bearer`: send an API key (or an identity provider's access "
                "token) as `Authorization: Bearer <token>`.",
                "required": True,
                "schema": {"type": "string"},
            }
        },
        429: {
            "Retry-After": {
                "description": "Whole seconds until the key may send another request.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        503: {
            "Retry-After": {
                "description": "Whole seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry declaring that a route may answer these problems."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
            **({"headers": PROBLEM_HEADERS[status]} if status in PROBLEM_HEADERS else {}),
        }
        for status in statuses
    }


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) if not isinstance(part, int) else part for part in err["loc"]],
            "msg": err["msg"].removeprefix("Value error, "),
        }
        for err in exc.errors()
    ]


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    if isinstance(exc, Unprocessable):
        errors = [{"loc": exc.loc, "msg": exc.detail}]
        return problem_response(422, _summary(errors), errors=errors)
    return problem_response(exc.status, exc.detail, headers=exc.headers)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    return problem_response(422, _summary(errors), errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    undecodable = _undecodable_body(exc)
    if undecodable is not None:
        # The app's own validation handler, so a caller without a valid key still gets 401.
        handler = request.app.exception_handlers.get(RequestValidationError, on_validation_error)
        response: JSONResponse = await handler(request, undecodable)
        return response
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the first route's methods; FastAPI has one route per method.
        headers = {"Allow": ", ".join(_allowed_methods(request))}
    return problem_response(exc.status_code, detail, headers=headers)


def _undecodable_body(exc: StarletteHTTPException) -> RequestValidationError | None:
    """FastAPI answers a bare 400 when a JSON body cannot be decoded at all: bytes that
    are not UTF-8, or nesting beyond the parser's recursion limit. That is malformed
    JSON like any other, so it gets the same 422 as a syntax error."""
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, RequestValidationError):
        return cause  # app/json_body.py: a number that cannot be kept as sent
    if exc.status_code != 400 or not isinstance(cause, UnicodeDecodeError | RecursionError):
        return None
    why = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body",),
                "msg": f"JSON decode error: {why}",
                "input": {},
            }
        ]
    )


def _allowed_methods(request: Request) -> list[str]:
    return [
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


class FaultLog:
    """Logs a storage fault once per interval, with how many more came meanwhile: a
    database that refuses for a minute under load is a few lines, not thousands of
    tracebacks."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next_at = 0.0
        self._held_back = 0

    def record(self, fault: str) -> None:
        now = time.monotonic()
        if now < self._next_at:
            self._held_back += 1
            return
        logger.warning(
            "the database cannot store (%s): answering 503 (%d more since the last line)",
            fault,
            self._held_back,
        )
        self._next_at = now + self._interval
        self._held_back = 0


_fault_log = FaultLog(FAULT_LOG_INTERVAL_SECONDS)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    fault = storage_fault(exc)
    if fault is None:  # a query the database refused for what it is: a bug
        return await _on_unexpected(request, exc)
    _fault_log.record(fault)
    return problem_response(
        503,
        "The database cannot store or read right now; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "An unexpected error occurred; it has been logged.")


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Registers the Problem schema that every declared error response refers to."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    return openapi


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PoolTimeout, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
