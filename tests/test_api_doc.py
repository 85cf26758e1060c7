"""docs/api.md keeps up with the code: every route the app serves is described there and
every route described there is served, every `docs/api.md#…` anchor cited anywhere in the
repository names one of its headings, and the README's settings table names every
setting."""

import re

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ROOT

API_DOC = ROOT / "docs" / "api.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`?]*)")
# Served, but by FastAPI itself rather than by a route of ours.
FRAMEWORK_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs")}


def _shape(path: str) -> str:
    """`/webhooks/{webhook_id}` and `/webhooks/{id}` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented_routes() -> set[tuple[str, str]]:
    return {(method, _shape(path)) for method, path in ROUTE.findall(API_DOC.read_text("utf-8"))}


def _served_routes() -> set[tuple[str, str]]:
    paths = create_app(Settings()).openapi()["paths"]
    return {(method.upper(), _shape(path)) for path, methods in paths.items() for method in methods}


def test_every_served_route_is_documented() -> None:
    missing = _served_routes() - _documented_routes()
    assert not missing, f"routes missing from docs/api.md: {sorted(missing)}"


def test_every_documented_route_is_served() -> None:
    unknown = _documented_routes() - _served_routes() - FRAMEWORK_ROUTES
    assert not unknown, f"docs/api.md describes routes the app does not serve: {sorted(unknown)}"


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_cited_anchor_of_docs_api_md_exists() -> None:
    text = API_DOC.read_text("utf-8")
    anchors = {_github_slug(h) for h in re.findall(r"^#{2,4} (.+)$", text, re.MULTILINE)}
    citing = [ROOT / "README.md"] + [
        path
        for folder in ("docs", "tests", "scripts", "app", "workers", "bench")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".md", ".py", ".sh", ".js", ".html"}
    ]
    cited = {
        (path.relative_to(ROOT).as_posix(), anchor)
        for path in citing
        for anchor in re.findall(r"api\.md#([a-z0-9-]+)", path.read_text("utf-8"))
    }
    assert cited, "no file cites docs/api.md#…: the pattern above no longer finds them"
    dangling = sorted((where, anchor) for where, anchor in cited if anchor not in anchors)
    assert not dangling, f"anchors that docs/api.md has no heading for: {dangling}"


def test_the_readme_settings_table_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    table = readme[readme.index("## Settings") : readme.index("## Commands")]
    missing = [
        name for name in Settings.model_fields if f"`STOREHOOKS_{name.upper()}`" not in table
    ]
    assert not missing, f"settings missing from the README's table: {missing}"


def test_the_anchor_rule_matches_githubs() -> None:
    # The two kinds of heading docs/api.md has: plain words, and words with punctuation.
    assert _github_slug("Delivery policies") == "delivery-policies"
    assert _github_slug("Headers and signatures") == "headers-and-signatures"
    assert _github_slug("Outbound requests (v2)") == "outbound-requests-v2"
