"""The npm tools of these tests (Redocly CLI, openapi-typescript, TypeScript), at the
versions package-lock.json locks, installed with `npm ci` into tests/openapi/node_modules
when missing or older than the lock."""

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BIN = HERE / "node_modules" / ".bin"


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """The folder of the installed tools' commands."""
    lock = HERE / "package-lock.json"
    installed = HERE / "node_modules" / ".installed"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        if shutil.which("npm") is None:
            pytest.fail("npm is missing: apt-get install nodejs npm (.ci/run does)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
        installed.touch()
    return BIN
