"""What a worker process holds for its lifetime, typed, in one place: built by the
worker's on_startup (`workers/settings.py`) into arq's job context as `ctx["resources"]`.
arq's own `ctx["redis"]` stays where arq puts it, and `ctx["dispatcher"]` is where the
queue's worker looks for what takes delivery jobs (`app/core/queue.py`)."""

from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.settings import Settings
from app.core.tracing import Tracing
from workers.bookkeeping import Bookkeeper
from workers.dispatcher import Dispatcher


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bookkeeper: Bookkeeper
    http: httpx.AsyncBaseTransport
    dispatcher: Dispatcher
    metrics_server: WSGIServer | None
    tracing: Tracing | None = None


def of(ctx: dict[str, Any]) -> Resources:
    """The resources in a job's context."""
    resources: Resources = ctx["resources"]
    return resources
