"""Redocly CLI's lint of the app's OpenAPI document (issue 14, point 6): no error and no
warning under redocly.yaml. Redocly is the version tests/openapi/package-lock.json locks
(conftest.py installs it)."""

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ROOT


@pytest.fixture(scope="session")
def redocly(node_tools: Path) -> Path:
    return node_tools / "redocly"


def lint(redocly: Path, document: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [redocly, "lint", "--config", ROOT / "redocly.yaml", "--format", "json", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (1 if report["totals"]["errors"] else 0), result.stderr
    return report


DOCUMENT = create_app(Settings()).openapi()


def test_the_document_is_clean(redocly: Path, tmp_path: Path) -> None:
    report = lint(redocly, DOCUMENT, tmp_path)
    problems = [(p["ruleId"], p["message"], p["location"]) for p in report["problems"]]
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems


def test_the_lint_catches_an_operation_with_no_security(redocly: Path, tmp_path: Path) -> None:
    """What makes the test above able to fail: redocly.yaml keeps the recommended rules."""
    document = copy.deepcopy(DOCUMENT)
    del document["paths"]["/healthz"]["get"]["security"]
    report = lint(redocly, document, tmp_path)
    assert [p["ruleId"] for p in report["problems"]] == ["security-defined"]
