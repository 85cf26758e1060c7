"""The worker for `storehooks worker`: the deliver job, the sweeper cron, and the
resources every job shares (sessionmaker, one pooled HTTP client), built at start-up."""

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

import uvloop
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from app.core import queue, tracing
from app.core.db import make_engine, make_sessionmaker
from app.core.settings import Settings, get_settings
from workers import resources
from workers.bookkeeping import Bookkeeper, lease
from workers.dispatcher import Dispatcher, deliver
from workers.resources import Resources
from workers.retention import purge
from workers.sweeper import sweep
from workers.transport import make_transport

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

# arq's own jobs at once: the sweeper and the retention cron.
MAX_CONCURRENT_JOBS = 10


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    traced = tracing.start(settings, tracing.WORKER, ctx.get("span_exporter"))
    engine = make_engine(settings.database_url)
    if traced is not None:
        traced.instrument_engine(engine.sync_engine)
    bookkeeper = Bookkeeper(engine, settings, ctx["redis"], tracing=traced)
    http = make_transport(settings, max_connections=settings.worker_concurrency * 2)
    dispatcher = Dispatcher(
        bookkeeper,
        http,
        settings.delivery_timeout_seconds,
        capacity=settings.worker_concurrency,
        tracer=traced.tracer if traced is not None else None,
    )
    ctx["resources"] = Resources(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        bookkeeper=bookkeeper,
        http=http,
        dispatcher=dispatcher,
        metrics_server=_serve_metrics(settings.worker_metrics_port, settings.worker_metrics_host),
        tracing=traced,
    )
    ctx["dispatcher"] = dispatcher  # where the queue's worker finds it


async def on_shutdown(ctx: dict[str, Any]) -> None:
    held = resources.of(ctx)
    held.dispatcher.close()
    await held.dispatcher.wait()
    await held.http.aclose()
    held.bookkeeper.close()
    await held.engine.dispose()
    if held.metrics_server is not None:
        held.metrics_server.shutdown()
        held.metrics_server.server_close()
    if held.tracing is not None:
        held.tracing.shutdown()


def _serve_metrics(port: int, host: str) -> WSGIServer | None:
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:  # another worker on this host holds the port
        logger.warning("worker metrics not served on port %d: %s", port, exc)
        return None
    logger.info("worker metrics on port %d at /metrics", port)
    return server


def worker_options(
    settings: Settings, span_exporter: "SpanExporter | None" = None
) -> dict[str, Any]:
    """Keyword arguments for the queue's worker (also used by the tests' in-process
    workers); `span_exporter` switches tracing on with it in place of OTLP (the tests')."""
    ctx: dict[str, Any] = {"settings": settings}
    if span_exporter is not None:
        ctx["span_exporter"] = span_exporter
    return queue.worker_options(
        redis_url=settings.redis_url,
        deliver=deliver,
        sweep=sweep,
        sweep_seconds=set(range(0, 60, settings.sweep_interval_seconds)),
        purge=purge,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        ctx=ctx,
        max_jobs=MAX_CONCURRENT_JOBS,
        job_timeout_seconds=lease(settings).total_seconds(),
        # SIGTERM/SIGINT: take no new job, let the attempts in flight finish (each is
        # bounded by the delivery timeout), then exit.
        completion_wait_seconds=math.ceil(settings.delivery_timeout_seconds) + 1,
    )


def run_worker(settings: Settings) -> None:
    """Runs a worker until a signal stops it. Redis commands already retry for about
    half a minute, but some failures still end arq's loop (a longer outage, or a
    connection lost in the middle of a WATCH, which redis-py reports as WatchError):
    then a new worker is started."""
    while True:
        asyncio.set_event_loop(uvloop.new_event_loop())  # arq runs on the current loop
        try:
            queue.DeliveryWorker(**worker_options(settings)).run()
            return
        except (RedisError, OSError) as exc:
            logger.error("worker lost Redis; starting again in 2 s", extra={"error": str(exc)})
            time.sleep(2)
