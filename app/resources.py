"""What the API process holds for its lifetime (built by `create_app`'s lifespan), typed,
in one place rather than as loose attributes of `app.state`."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from app.auth.lookup import KeyLookup
from app.auth.oidc import OidcVerifier
from app.auth.rate_limit import RateLimiter
from app.core import queue
from app.core.settings import Settings
from app.core.tracing import Tracing
from app.events.writer import EventWriter


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: queue.Client
    key_lookup: KeyLookup
    rate_limiter: RateLimiter
    event_writer: EventWriter
    tracing: Tracing | None = None  # None: tracing is off
    oidc: OidcVerifier | None = None  # None: no identity provider, API keys only


def of(app: ASGIApp) -> Resources:
    """The resources of a started app (`request.app`)."""
    resources: Resources = app.state.resources  # type: ignore[attr-defined]
    return resources
