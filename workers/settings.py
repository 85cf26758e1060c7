"""arq WorkerSettings for `storehooks worker`: the deliver job, the sweeper cron, and the
resources every job shares (sessionmaker, one pooled HTTP client), built at start-up."""

import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from app.db import make_engine, make_sessionmaker
from app.settings import Settings, get_settings
from workers.deliver import deliver, lease
from workers.sweeper import sweep
from workers.transport import make_client

MAX_CONCURRENT_JOBS = 50
SWEEP_SECONDS = set(range(0, 60, 5))


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database_url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    ctx["http"] = make_client(settings, max_connections=MAX_CONCURRENT_JOBS * 2)
    # dicttoxml logs every value it converts at INFO: payload data stays out of logs.
    logging.getLogger("dicttoxml").setLevel(logging.WARNING)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].aclose()
    await ctx["engine"].dispose()


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker (also used by the tests' in-process workers)."""
    return {
        "functions": [func(deliver, name="deliver", max_tries=1000)],
        "cron_jobs": [cron(sweep, second=SWEEP_SECONDS, run_at_startup=True, unique=True)],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "ctx": {"settings": settings},
        "max_jobs": MAX_CONCURRENT_JOBS,
        "job_timeout": lease(settings).total_seconds(),
        "keep_result": 0,
        "poll_delay": 0.1,
    }
