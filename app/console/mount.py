"""Serves the console's static files at /ui, with headers that keep its pages safe."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

# Scripts, styles and API calls from this origin only, and never inside a frame: a
# page holding an API key must not run injected script or be clickjacked.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    @app.api_route("/ui", methods=["GET", "HEAD"], include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", ConsoleFiles(directory=STATIC, html=True), name="console")
