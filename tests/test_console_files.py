"""The console's static files at /ui: served without a key, with headers that keep a
page holding an API key safe (docs/console.md)."""

import httpx
from fastapi import FastAPI

from app.console.mount import SECURITY_HEADERS


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
