"""/docs and /redoc (issue 14, point 5): the pages load only files this server ships,
those files are served, and every answer carries the console's security headers."""

import re
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI

from app.api_docs.mount import REDOC_HEADERS
from app.console.mount import SECURITY_HEADERS

PAGES = {"/docs": SECURITY_HEADERS, "/redoc": REDOC_HEADERS}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """Every URL a page loads: script and img sources, link hrefs, a ReDoc spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "spec-url"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1


async def references(client: httpx.AsyncClient, path: str) -> References:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    parsed = References()
    parsed.feed(page.text)
    return parsed


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_loads_only_same_origin_files_and_runs_no_inline_script(
    anonymous: httpx.AsyncClient, path: str
) -> None:
    parsed = await references(anonymous, path)
    assert parsed.inline_scripts == 0
    assert parsed.urls, "the page loads nothing?"
    for url in parsed.urls:
        assert re.fullmatch(r"/[^/].*", url), f"{path} loads {url}, not from this origin"


@pytest.mark.parametrize("path", PAGES)
async def test_every_file_a_page_loads_is_served_with_its_type_and_headers(
    anonymous: httpx.AsyncClient, path: str
) -> None:
    for url in (await references(anonymous, path)).urls:
        response = await anonymous.get(url)
        assert response.status_code == 200, url
        if url == "/openapi.json":
            continue
        suffix = url[url.rindex(".") :]
        assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (url, name)


async def test_the_bundles_are_swagger_ui_and_redoc(anonymous: httpx.AsyncClient) -> None:
    swagger = await anonymous.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in swagger.text[:2000]
    redoc = await anonymous.get("/docs/static/redoc.standalone.js")
    assert "Redoc" in redoc.text[:2000]
    init = await anonymous.get("/docs/static/swagger-init.js")
    assert 'url: "/openapi.json"' in init.text


@pytest.mark.parametrize(("path", "headers"), PAGES.items())
async def test_a_page_has_the_security_headers(
    anonymous: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await anonymous.get(path)
    for name, value in headers.items():
        assert response.headers[name] == value, name
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy
    if path == "/docs":
        assert policy == SECURITY_HEADERS["Content-Security-Policy"]  # the console's, as is


async def test_a_missing_file_is_a_404(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/docs/static/nope.js")).status_code == 404
    assert (await anonymous.get("/docs/static/../mount.py")).status_code == 404


async def test_fastapis_cdn_pages_are_gone(app: FastAPI, anonymous: httpx.AsyncClient) -> None:
    for path in PAGES:
        assert "cdn.jsdelivr.net" not in (await anonymous.get(path)).text
    assert (await anonymous.get("/docs/oauth2-redirect")).status_code == 404
    assert not [path for path in app.openapi()["paths"] if path.startswith(("/docs", "/redoc"))]
