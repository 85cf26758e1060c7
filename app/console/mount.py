"""Serves the console at /ui: its static files, with headers that keep its pages safe,
and config.json, how it signs people in (app/console/sign_in.py)."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.console.sign_in import API_KEY, config_of, connect_sources
from app.errors import ProblemError

STATIC = Path(__file__).parent / "static"


def security_headers(connect: str = "'self'") -> dict[str, str]:
    """Scripts and styles from this origin only, requests to it (and to the identity
    provider's token endpoint: `connect`), never inside a frame: a page holding a key or
    a token must not run injected script or be clickjacked."""
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


SECURITY_HEADERS = security_headers()


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        try:
            config = await config_of(scope["app"])
        except ProblemError:  # the provider is unreachable: config.json says so
            config = API_KEY
        response.headers.update(security_headers(connect_sources(config)))
        return response


def mount_console(app: FastAPI) -> None:
    @app.api_route("/ui", methods=["GET", "HEAD"], include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    # No key needed: the page reads it before anyone signs in, and nothing in it is secret.
    @app.get("/ui/config.json", include_in_schema=False)
    async def console_config(request: Request) -> JSONResponse:
        config = await config_of(request.app)
        return JSONResponse(dict(config), headers={"Cache-Control": "no-cache"})

    app.mount("/ui", ConsoleFiles(directory=STATIC, html=True), name="console")
