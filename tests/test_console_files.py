"""The console's static files at /ui: served without a key, with headers that keep a
page holding an API key safe (docs/console.md)."""

import inspect
import re

import httpx
from fastapi import FastAPI

from app.console.mount import SECURITY_HEADERS, STATIC
from app.core.enums import Scope
from tests.support.routes import api_routes


async def test_ui_redirects_to_the_page(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/ui")
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"


async def test_the_page_and_its_scripts_are_served_with_safe_headers(
    anonymous: httpx.AsyncClient,
) -> None:
    page = await anonymous.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/main.js">' in page.text
    script = await anonymous.get("/ui/js/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for response in (page, script):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_a_missing_file_is_a_404(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/ui/js/nope.js")).status_code == 404
    assert (await anonymous.get("/ui/../app/core/settings.py")).status_code == 404


async def test_the_console_is_not_part_of_the_api_description(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/ui")]


def _required_scopes(app: FastAPI) -> dict[str, set[str]]:
    """operationId -> the scopes its route's `requires(Scope.X)` checks."""
    found: dict[str, set[str]] = {}
    for route in api_routes(app):
        if route.operation_id is None:
            continue
        pending, scopes = list(route.dependant.dependencies), set()
        while pending:
            dependant = pending.pop()
            pending.extend(dependant.dependencies)
            if not inspect.isfunction(dependant.call):
                continue
            scope = inspect.getclosurevars(dependant.call).nonlocals.get("scope")
            if isinstance(scope, Scope):
                scopes.add(scope.value)
        found[route.operation_id] = scopes
    return found


async def test_the_console_asks_for_the_scopes_the_routes_require(app: FastAPI) -> None:
    """A control shows when its call would be allowed: the console's table of scopes is
    the routes' own, and every `may(...)` names an operation of that table."""
    api_js = (STATIC / "js" / "api.js").read_text()
    start = api_js.index("const NEEDS = {")
    table = api_js[start : api_js.index("};", start)]
    needs = dict(re.findall(r"^\s*(\w+): \"([a-z:]+)\",$", table, re.MULTILINE))
    assert needs, "the NEEDS table of api.js was not found"
    required = _required_scopes(app)
    assert {operation: {scope} for operation, scope in needs.items()} == {
        operation: required.get(operation) for operation in needs
    }
    scripts = " ".join(path.read_text() for path in (STATIC / "js").glob("*.js"))
    assert set(re.findall(r"\bmay\(\"(\w+)\"\)", scripts)) == set(needs)
