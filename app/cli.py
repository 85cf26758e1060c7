"""The `storehooks` command: migrate, serve, worker, dev, accounts and keys."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.core import log_format
from app.core.db import make_engine, make_sessionmaker, session_scope
from app.core.enums import Scope
from app.core.models import Account
from app.core.settings import Settings, get_settings

cli = typer.Typer(
    help="storehooks: webhook management and delivery. Settings come from STOREHOOKS_* "
    "environment variables (see README).",
    no_args_is_help=True,
    add_completion=False,
)
accounts = typer.Typer(help="Create accounts.", no_args_is_help=True)
keys = typer.Typer(help="Create API keys.", no_args_is_help=True)
cli.add_typer(accounts, name="accounts")
cli.add_typer(keys, name="keys")


def _installed_command(name: str) -> Callable[[Settings], None]:
    """A command another package of this distribution provides (pyproject.toml's
    `storehooks.commands` entry points): the worker lives in workers/, which the API
    package never imports, and is loaded only when asked for."""
    (found,) = entry_points(group="storehooks.commands", name=name)
    command: Callable[[Settings], None] = found.load()
    return command


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@cli.command()
def migrate() -> None:
    """Upgrade STOREHOOKS_DATABASE_URL to the newest schema (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    command.upgrade(config, "head")
    typer.echo("database is at the newest revision", err=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    from app import head_limit

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        # httptools, bounded: request heads of at most 16 KiB, arriving in time.
        http=head_limit.protocol(get_settings().header_timeout_seconds),
        proxy_headers=False,
        log_config=log_format.logging_config(),
    )


@cli.command()
def worker() -> None:
    """Run one delivery worker (arq): sends notifications, retries, sweeps the queue."""
    log_format.configure()
    run_worker = _installed_command("worker")
    run_worker(get_settings())


@cli.command()
def dev() -> None:
    """Run the whole service on this machine (what `make run` starts): a Redis of its own
    unless STOREHOOKS_REDIS_URL is set, the migrations, one worker and the API on
    STOREHOOKS_HOST:STOREHOOKS_PORT (127.0.0.1:8000); restarts any that dies; Ctrl-C
    stops them all."""
    from app.devstack import main as run_stack

    run_stack()


@accounts.command("create")
def create_account(
    name: Annotated[str, typer.Argument(help="The account's display name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an account and an API key that holds every scope; the key is shown only once."""

    async def run() -> tuple[str, str]:
        async with _session() as session:
            account, _key, token = await service.create_account(session, name)
            return account.id, token

    account_id, token = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps({"account_id": account_id, "api_key": token}))
    else:
        typer.echo(
            f"account {account_id}\napi key {token}\n(store the key now: it is not shown again)"
        )


@keys.command("create")
def create_key(
    account: Annotated[str, typer.Option("--account", help="The account id.")],
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="A scope to grant; repeat for more.")
    ],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a further API key for an account, holding only the given scopes."""

    async def run() -> tuple[str, str] | None:
        async with _session() as session:
            if await session.get(Account, account) is None:
                return None
            key, token = await service.create_key(session, account, name, scope)
            return key.id, token

    created = asyncio.run(run())
    if created is None:
        typer.echo(f"no account {account}", err=True)
        raise typer.Exit(code=1)
    key_id, token = created
    if as_json:
        typer.echo(json.dumps({"key_id": key_id, "api_key": token}))
    else:
        typer.echo(f"key {key_id}\napi key {token}\n(store the key now: it is not shown again)")


@asynccontextmanager
async def _session() -> AsyncIterator[AsyncSession]:
    engine = make_engine(get_settings().database_url)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
