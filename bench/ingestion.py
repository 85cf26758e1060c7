"""Stage 3, ingestion: POST /events on one API process (worker stopped, every event
matching the bench webhook: event + delivery rows and one enqueue each) beside the bare
endpoint (bench/bare_app.py), each at 50 in flight for the same number of requests.

Each side gets a short unmeasured warm-up first; the server's CPU per request is read
from /proc/<pid>/stat, the load generator's from time.process_time()."""

import aiohttp

from bench.deployment import Deployment, event_requests, post_events
from bench.load import MakeRequest
from bench.report import percentile
from bench.services import Process

CONCURRENCY = 50
WARM_UP = 100


async def measure(
    session: aiohttp.ClientSession, server: Process, path: str, make: MakeRequest, requests: int
) -> dict[str, float]:
    url = f"{server.url}{path}"
    await post_events(session, url, make, WARM_UP, CONCURRENCY)
    cpu = server.cpu_seconds()
    result = await post_events(session, url, make, requests, CONCURRENCY)
    return {
        "requests_per_s": result.per_second,
        "p50_ms": percentile(result.latencies, 0.50) * 1000,
        "p99_ms": percentile(result.latencies, 0.99) * 1000,
        "server_cpu_ms_per_request": (server.cpu_seconds() - cpu) * 1000 / requests,
        "client_cpu_ms_per_request": result.cpu_ms_per_request,
    }


async def ingestion_run(
    session: aiohttp.ClientSession, deployment: Deployment, bare: Process, requests: int, run: int
) -> dict[str, float]:
    make = event_requests(deployment.key, tag=f"i{run}")
    api = await measure(session, deployment.api, "/events", make, requests)
    plain = await measure(session, bare, "/events", make, requests)
    figures = {f"api_{name}": value for name, value in api.items()}
    figures |= {f"bare_{name}": value for name, value in plain.items()}
    figures["api_to_bare_ratio"] = api["requests_per_s"] / plain["requests_per_s"]
    return figures
