"""Answers 401 before any word about a body that is not JSON.

FastAPI decodes a JSON body before it runs the route's dependencies, so without
this a caller with no valid key would learn parse details (422) instead of
being told to authenticate (401).
"""

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param

from app import resources
from app.auth.dependencies import principal_for
from app.errors import ProblemError, Unauthorized, on_validation_error, problem_response


async def on_validation_error_after_auth(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    decoded_before_auth = any(error.get("type") == "json_invalid" for error in exc.errors())
    if decoded_before_auth and not await _has_valid_key(request):
        denied = Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
        return problem_response(401, denied.detail, headers=denied.headers)
    return await on_validation_error(request, exc)


async def _has_valid_key(request: Request) -> bool:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        await principal_for(resources.of(request.app), token)
    except ProblemError:
        return False
    return True
