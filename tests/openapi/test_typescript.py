"""TypeScript users' view of the document (issue 14, point 6): openapi-typescript makes
types of /openapi.json, and client.ts, the README walkthrough written with openapi-fetch,
must type-check against them: request fields with a default optional, answer fields
required, PATCH fields never null (its @ts-expect-error lines must each be an error).

openapi-typescript runs with --default-non-nullable false: by default it makes every
property with a `default` required, request bodies' included, which is what users
reported (docs/decisions.md, "OpenAPI for client generators"). With the flag it reads
`required`, which the document now states for every answer."""

import json
import subprocess
from pathlib import Path

from fastapi import FastAPI

HERE = Path(__file__).parent


def generate_types(node_tools: Path, app: FastAPI, tmp_path: Path, *flags: str) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.openapi()))
    (HERE / "generated").mkdir(exist_ok=True)
    subprocess.run(
        [
            node_tools / "openapi-typescript",
            document,
            *flags,
            "--output",
            HERE / "generated" / "schema.d.ts",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def type_check(node_tools: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node_tools / "tsc", "--project", HERE / "tsconfig.json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_walkthrough_type_checks(node_tools: Path, app: FastAPI, tmp_path: Path) -> None:
    generate_types(node_tools, app, tmp_path, "--default-non-nullable", "false")
    result = type_check(node_tools)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_flag_defaults_are_required(
    node_tools: Path, app: FastAPI, tmp_path: Path
) -> None:
    """What the flag is for, and what makes the test above able to fail."""
    generate_types(node_tools, app, tmp_path)
    result = type_check(node_tools)
    assert result.returncode != 0
    assert "missing the following properties" in result.stdout
    assert "active, success_statuses, ordered, max_in_flight" in result.stdout
