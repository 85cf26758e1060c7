"""The `storehooks` console commands of docs/api.md#running-it, run as real subprocesses against
the same database file that the app under test reads."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.enums import Scope
from tests.conftest import client_for, me, run_cli, secret_part
from tests.support.databases import fetch_all

ALL_SCOPES = sorted(scope.value for scope in Scope)


def one_json_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    parsed = json.loads(lines[0])
    assert isinstance(parsed, dict), parsed
    return parsed


def create_account(database_url: str, name: str = "Acme Games") -> dict[str, Any]:
    created = one_json_object(
        run_cli("accounts", "create", name, "--json", database_url=database_url)
    )
    assert set(created) == {"account_id", "api_key"}
    return created


async def api_key_rows(database_url: str) -> list[tuple[Any, ...]]:
    rows = await fetch_all(database_url, "SELECT * FROM api_keys ORDER BY id")
    return [tuple(row) for row in rows]


def help_text(*args: str) -> str:
    """The help output with rich's box drawing and line wrapping taken out."""
    result = run_cli(*args, "--help", database_url="sqlite+aiosqlite:///unused.db")
    assert result.returncode == 0, result.stderr
    return re.sub(r"[\s│╭╮╰╯─]+", " ", result.stdout)


# --- accounts create --------------------------------------------------------------------


async def test_accounts_create_prints_a_key_that_works(app: FastAPI, database_url: str) -> None:
    created = create_account(database_url)
    async with client_for(app, created["api_key"]) as client:
        body = await me(client)
        response = await client.get("/webhooks")
    assert body["account_id"] == created["account_id"]
    assert sorted(body["scopes"]) == ALL_SCOPES
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


async def test_two_accounts_get_distinct_ids_and_keys(app: FastAPI, database_url: str) -> None:
    first = create_account(database_url, "First")
    second = create_account(database_url, "Second")
    assert first["account_id"] != second["account_id"]
    assert first["api_key"] != second["api_key"]
    async with client_for(app, second["api_key"]) as client:
        assert (await me(client))["account_id"] == second["account_id"]


# --- keys create ------------------------------------------------------------------------


async def test_keys_create_holds_exactly_the_given_scopes(app: FastAPI, database_url: str) -> None:
    account = create_account(database_url)
    result = run_cli(
        "keys",
        "create",
        "--account",
        account["account_id"],
        "--scope",
        "events:write",
        "--scope",
        "events:read",
        "--scope",
        "audit:read",
        "--json",
        database_url=database_url,
    )
    created = one_json_object(result)
    assert set(created) == {"key_id", "api_key"}
    async with client_for(app, created["api_key"]) as client:
        body = await me(client)
        assert set(body) == {"account_id", "key_id", "subject", "name", "scopes"}
        assert body["account_id"] == account["account_id"]
        assert body["key_id"] == created["key_id"]
        assert (body["subject"], body["name"]) == (None, "cli")
        assert sorted(body["scopes"]) == ["audit:read", "events:read", "events:write"]
        assert (await client.get("/events")).status_code == 200
        assert (await client.get("/audit-events")).status_code == 200
        assert (await client.get("/webhooks")).status_code == 403


async def test_keys_create_for_an_unknown_account_fails(database_url: str) -> None:
    before = await api_key_rows(database_url)
    result = run_cli(
        "keys",
        "create",
        "--account",
        "acc_nope",
        "--scope",
        "events:read",
        "--json",
        database_url=database_url,
    )
    assert result.returncode != 0
    assert result.stdout.strip() == ""
    assert "acc_nope" in result.stderr
    assert await api_key_rows(database_url) == before


async def test_keys_create_with_an_unknown_scope_fails(database_url: str) -> None:
    account = create_account(database_url)
    before = await api_key_rows(database_url)
    result = run_cli(
        "keys",
        "create",
        "--account",
        account["account_id"],
        "--scope",
        "events:admin",
        "--json",
        database_url=database_url,
    )
    assert result.returncode != 0
    assert result.stdout.strip() == ""
    assert "events:admin" in result.stderr
    assert await api_key_rows(database_url) == before


# --- secrets at rest --------------------------------------------------------------------


async def test_key_secrets_are_not_stored_in_clear(database_url: str) -> None:
    account = create_account(database_url)
    extra = one_json_object(
        run_cli(
            "keys",
            "create",
            "--account",
            account["account_id"],
            "--scope",
            "events:read",
            "--json",
            database_url=database_url,
        )
    )
    rows = await api_key_rows(database_url)
    assert len(rows) == 2
    stored = "\n".join(str(value) for row in rows for value in row)
    assert extra["key_id"] in stored  # the table read is the right one
    for token in (account["api_key"], extra["api_key"]):
        secret = secret_part(token, *(str(row[0]) for row in rows))
        assert len(secret) >= 32
        assert secret not in stored
        assert token not in stored


# --- help -------------------------------------------------------------------------------


HELP = {
    "storehooks": ((), ["webhook", "accounts", "keys"]),
    "accounts-create": (("accounts", "create"), ["account", "every scope", "--json"]),
    "keys-create": (("keys", "create"), ["key", "--account", "--scope", "--json"]),
}


@pytest.mark.parametrize(("args", "phrases"), HELP.values(), ids=HELP.keys())
def test_help_says_what_the_command_does(args: tuple[str, ...], phrases: list[str]) -> None:
    text = help_text(*args).lower()
    for phrase in phrases:
        assert phrase in text, (phrase, text)


@pytest.mark.parametrize("command", ["migrate", "serve", "worker", "accounts", "keys"])
def test_top_level_help_lists_each_documented_command(command: str) -> None:
    assert re.search(rf"\b{command}\b", help_text()), help_text()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "storehooks"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "accounts" in result.stdout
