"""The benchmark's receiver, run as its own process: `python -m bench.receiver --port P`.

Answers 200 to every POST and PUT and records, per `webhook-id` header, the first
arrival time (unix seconds) and the JSON body's `event_id` (at the top level or under
`payload`, where storehooks puts it). It also counts, per path, the requests it is
handling now and the most it handled at once (a sender's in-flight limit, seen from the
receiving end).

    GET /stats      {"requests": n, "distinct": distinct webhook-ids,
                     "first_arrival": t, "last_arrival": t,
                     "hang": {"requests": n, "open": n, "most_open": n},
                     "paths": {path: {"requests": n, "open": n, "most_open": n}}}
    GET /arrivals   {event_id: arrival unix time} (first arrival of each webhook-id)
    DELETE /stats   forget everything (but the requests still open)

POST /delay/{ms} (any path under it, e.g. /delay/50/w7) answers 200 after `ms`
milliseconds, and is recorded like any other POST: a receiver that takes its time.

POST /hang is a dead endpoint instead: it holds each request open for `?seconds=`
(default 60) or until the sender gives up and closes the connection, then answers 503.
It records nothing in /arrivals; /stats counts its requests and how many were open at
once (the sender's in-flight limit, seen from the receiving end).
"""

import argparse
import asyncio
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass
class Arrivals:
    by_webhook_id: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    requests: int = 0
    first_arrival: float = 0.0
    last_arrival: float = 0.0

    def reset(self) -> None:
        self.by_webhook_id.clear()
        self.requests = 0
        self.first_arrival = self.last_arrival = 0.0


@dataclass
class Concurrency:
    """The requests to one path: all, open now, most open at once."""

    requests: int = 0
    open: int = 0
    most_open: int = 0

    def opened(self) -> None:
        self.requests += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)

    def closed(self) -> None:
        self.open -= 1

    def reset(self) -> None:
        self.requests = 0
        self.most_open = self.open

    def counts(self) -> dict[str, int]:
        return {"requests": self.requests, "open": self.open, "most_open": self.most_open}


class Paths(dict[str, Concurrency]):
    def of(self, request: web.Request) -> Concurrency:
        return self.setdefault(request.path, Concurrency())

    def reset(self) -> None:
        for path, concurrency in list(self.items()):
            if concurrency.open:
                concurrency.reset()
            else:
                del self[path]


ARRIVALS = web.AppKey("arrivals", Arrivals)
HANGING = web.AppKey("hanging", Concurrency)
PATHS = web.AppKey("paths", Paths)
HANG_SECONDS = 60.0
HANG_POLL_SECONDS = 0.05


def event_id_of(body: bytes) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    payload = document.get("payload", document)
    found = payload.get("event_id") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


async def receive(request: web.Request) -> web.Response:
    concurrency = request.app[PATHS].of(request)
    concurrency.opened()
    try:
        _record(request, await request.read())
    finally:
        concurrency.closed()
    return web.Response(text="ok")


async def delay(request: web.Request) -> web.Response:
    """Records the request, then answers after `ms` milliseconds."""
    concurrency = request.app[PATHS].of(request)
    concurrency.opened()
    try:
        _record(request, await request.read())
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    finally:
        concurrency.closed()
    return web.Response(text="ok")


def _record(request: web.Request, body: bytes) -> None:
    now = time.time()
    arrivals = request.app[ARRIVALS]
    if not arrivals.requests:
        arrivals.first_arrival = now
    arrivals.requests += 1
    arrivals.last_arrival = now
    webhook_id = request.headers.get("webhook-id", "")
    if webhook_id not in arrivals.by_webhook_id:
        arrivals.by_webhook_id[webhook_id] = (now, event_id_of(body))


async def hang(request: web.Request) -> web.Response:
    await request.read()
    hanging = request.app[HANGING]
    hanging.opened()
    try:
        await _hold(request, float(request.query.get("seconds", HANG_SECONDS)))
    finally:
        hanging.closed()
    return web.Response(status=503, text="unavailable")


async def _hold(request: web.Request, seconds: float) -> None:
    """Until `seconds` have passed or the sender has closed the connection."""
    deadline = time.monotonic() + seconds
    while True:
        gone = request.transport is None or request.transport.is_closing()
        if gone or time.monotonic() >= deadline:
            return
        await asyncio.sleep(HANG_POLL_SECONDS)


async def stats(request: web.Request) -> web.Response:
    arrivals, hanging = request.app[ARRIVALS], request.app[HANGING]
    return web.json_response(
        {
            "requests": arrivals.requests,
            "distinct": len(arrivals.by_webhook_id),
            "first_arrival": arrivals.first_arrival,
            "last_arrival": arrivals.last_arrival,
            "hang": hanging.counts(),
            "paths": {path: counts.counts() for path, counts in request.app[PATHS].items()},
        }
    )


async def arrival_times(request: web.Request) -> web.Response:
    seen: dict[str, float] = {}
    for arrived, event_id in request.app[ARRIVALS].by_webhook_id.values():
        if event_id is not None and event_id not in seen:
            seen[event_id] = arrived
    return web.Response(body=orjson.dumps(seen), content_type="application/json")


async def reset(request: web.Request) -> web.Response:
    request.app[ARRIVALS].reset()
    request.app[HANGING].reset()
    request.app[PATHS].reset()
    return web.Response(status=204)


def make_app() -> web.Application:
    app = web.Application()
    app[ARRIVALS] = Arrivals()
    app[HANGING] = Concurrency()
    app[PATHS] = Paths()
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrival_times)
    app.router.add_delete("/stats", reset)
    app.router.add_post("/hang", hang)
    app.router.add_post(r"/delay/{ms:\d+}{tail:(/.*)?}", delay)
    app.router.add_route("POST", "/{tail:.*}", receive)
    app.router.add_route("PUT", "/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
