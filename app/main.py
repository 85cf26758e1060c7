"""create_app(): the FastAPI application, its resources and its routers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from app import __version__, openapi, request_spans
from app.actions.router import router as actions_router
from app.api_docs.mount import mount_api_docs
from app.audit.router import router as audit_router
from app.auth.body_guard import on_validation_error_after_auth
from app.auth.lookup import KeyLookup
from app.auth.oidc import OidcVerifier
from app.auth.rate_limit import RateLimiter
from app.auth.router import router as auth_router
from app.body_limit import BodyLimitMiddleware
from app.console.mount import mount_console
from app.core import queue, tracing
from app.core.db import make_engine, make_sessionmaker, read_only
from app.core.settings import Settings, get_settings
from app.deliveries.router import router as deliveries_router
from app.errors import install_error_handlers
from app.events.router import router as events_router
from app.events.writer import EventWriter
from app.notices.router import router as notices_router
from app.operations_webhooks.router import router as operations_webhooks_router
from app.ops.router import router as ops_router
from app.resources import Resources
from app.webhooks.router import router as webhooks_router

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


def create_app(
    settings: Settings | None = None, span_exporter: "SpanExporter | None" = None
) -> FastAPI:
    """`span_exporter` switches tracing on with it in place of OTLP (the tests')."""
    settings = settings or get_settings()
    traced = tracing.start(settings, tracing.API, span_exporter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        redis = queue.connect(settings.redis_url)
        if traced is not None:
            traced.instrument_engine(engine.sync_engine)
            traced.instrument_redis(redis)
        oidc = OidcVerifier(settings, read_only(engine)) if settings.oidc_issuer else None
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            redis=redis,
            key_lookup=KeyLookup(read_only(engine)),
            rate_limiter=RateLimiter(settings.rate_limit_per_second),
            event_writer=EventWriter(engine, redis, settings.max_attempts),
            tracing=traced,
            oidc=oidc,
        )
        try:
            yield
        finally:
            if oidc is not None:
                await oidc.aclose()
            await redis.aclose()
            await engine.dispose()
            if traced is not None:
                traced.shutdown()

    app = FastAPI(
        title="storehooks",
        version=__version__,
        description="Webhook management and delivery for an app store.",
        lifespan=lifespan,
        docs_url=None,  # mount_api_docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_exception_handler(RequestValidationError, on_validation_error_after_auth)
    openapi.install(app)
    app.add_middleware(BodyLimitMiddleware)
    for router in (
        auth_router,
        webhooks_router,
        actions_router,
        events_router,
        deliveries_router,
        notices_router,
        operations_webhooks_router,
        audit_router,
        ops_router,
    ):
        app.include_router(router)
    mount_console(app)
    mount_api_docs(app)
    if traced is not None:
        request_spans.instrument(app, traced)
    return app
