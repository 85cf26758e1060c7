"""arq WorkerSettings for `storehooks worker`: the deliver job, the sweeper cron, and the
resources every job shares (sessionmaker, one pooled HTTP client), built at start-up."""

import asyncio
import logging
import math
import time
from typing import Any

import uvloop
from arq import cron
from arq.connections import RedisSettings
from arq.worker import func
from prometheus_client import start_http_server
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.db import make_engine, make_sessionmaker
from app.core.settings import Settings, get_settings
from workers.bookkeeping import Bookkeeper, lease
from workers.dispatcher import Dispatcher, deliver
from workers.job_runner import DeliveryWorker
from workers.retention import purge
from workers.sweeper import sweep
from workers.transport import make_transport

logger = logging.getLogger(__name__)

# arq's own jobs at once: the sweeper and the retention cron.
MAX_CONCURRENT_JOBS = 10
SWEEP_SECONDS = set(range(0, 60, 5))


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database_url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    ctx["bookkeeper"] = Bookkeeper(ctx["engine"], settings, ctx["redis"])
    ctx["http"] = make_transport(settings, max_connections=settings.worker_concurrency * 2)
    ctx["dispatcher"] = Dispatcher(
        ctx["bookkeeper"],
        ctx["http"],
        settings.delivery_timeout_seconds,
        capacity=settings.worker_concurrency,
    )
    ctx["metrics_server"] = _serve_metrics(
        settings.worker_metrics_port, settings.worker_metrics_host
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    ctx["dispatcher"].close()
    await ctx["dispatcher"].wait()
    await ctx["http"].aclose()
    ctx["bookkeeper"].close()
    await ctx["engine"].dispose()
    if ctx.get("metrics_server") is not None:
        ctx["metrics_server"].shutdown()
        ctx["metrics_server"].server_close()


def _serve_metrics(port: int, host: str) -> Any:
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:  # another worker on this host holds the port
        logger.warning("worker metrics not served on port %d: %s", port, exc)
        return None
    logger.info("worker metrics on port %d at /metrics", port)
    return server


def redis_settings(redis_url: str) -> RedisSettings:
    """Every command retries through a Redis restart (about half a minute) instead of
    killing the worker; the sweeper then rebuilds whatever the restart lost."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_retries = 30
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    # OSError too: a refused connection reaches the retry as ConnectionRefusedError.
    settings.retry = Retry(
        ExponentialBackoff(cap=2.0, base=0.1),
        retries=30,
        supported_errors=(RedisConnectionError, RedisTimeoutError, OSError),  # type: ignore[arg-type]
    )
    return settings


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker (also used by the tests' in-process workers)."""
    return {
        "functions": [func(deliver, name="deliver", max_tries=1000)],
        "cron_jobs": [
            cron(sweep, second=SWEEP_SECONDS, run_at_startup=True, unique=True),
            cron(purge, hour=3, minute=17, second=0, unique=True),
        ],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "ctx": {"settings": settings},
        "max_jobs": MAX_CONCURRENT_JOBS,
        "job_timeout": lease(settings).total_seconds(),
        "keep_result": 0,
        # SIGTERM/SIGINT: take no new job, let the attempts in flight finish (each is
        # bounded by the delivery timeout), then exit.
        "job_completion_wait": math.ceil(settings.delivery_timeout_seconds) + 1,
        "poll_delay": 0.01,
    }


def run_worker(settings: Settings) -> None:
    """Runs a worker until a signal stops it. Redis commands already retry for about
    half a minute, but some failures still end arq's loop (a longer outage, or a
    connection lost in the middle of a WATCH, which redis-py reports as WatchError):
    then a new worker is started."""
    while True:
        asyncio.set_event_loop(uvloop.new_event_loop())  # arq runs on the current loop
        try:
            DeliveryWorker(**worker_options(settings)).run()
            return
        except (RedisError, OSError) as exc:
            logger.error("worker lost Redis; starting again in 2 s", extra={"error": str(exc)})
            time.sleep(2)
