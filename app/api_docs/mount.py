"""Serves /docs (Swagger UI) and /redoc from files shipped in Python packages: the
pages and Swagger UI's init script here, and the Swagger UI and ReDoc bundles of
fastapi-offline. Nothing comes from a CDN, so the pages work with no internet."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.console.mount import SECURITY_HEADERS

PAGES = Path(__file__).parent / "pages"
STATIC_URL = "/docs/static"

# Swagger UI runs under the console's policy as it is. ReDoc does not: it writes
# <style> elements at run time (styled-components), which no hash can cover, and
# builds its search index in a worker made from a blob: URL. Scripts stay 'self' only.
REDOC_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'; worker-src blob:"
    ),
}


class DocsFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_api_docs(app: FastAPI) -> None:
    """Takes the place of FastAPI's own pages: create the app with docs_url=None and
    redoc_url=None."""

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui() -> FileResponse:
        return FileResponse(PAGES / "swagger.html", headers=SECURITY_HEADERS)

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc() -> FileResponse:
        return FileResponse(PAGES / "redoc.html", headers=REDOC_HEADERS)

    app.mount(
        STATIC_URL,
        DocsFiles(packages=[("app.api_docs", "static"), ("fastapi_offline", "static")]),
        name="api-docs",
    )
