"""Stage 7, slots stay full: does one webhook get as many deliveries per second as its
`max_in_flight` allows against a receiver that takes its time?

One deployment (a fresh database, an API) per run. For each receiver delay (1 ms and
50 ms: POST /delay/{ms} on the receiver) and each `max_in_flight`, a webhook with that
limit is created through the API, bound to an app of its own, and its point's events
are posted with no worker running (pre-posted, so the API's pace is not measured); then
one `storehooks worker` is started, and stopped once the receiver has every event and
the database has them `succeeded`. Per point: deliveries/s from the first arrival to the
last ((n - 1) / (last - first), the worker's start-up left out), the ideal rate
max_in_flight / delay, their ratio, and the most requests the receiver had open at once
on the webhook's path (more than max_in_flight is a violation: the stage fails).

A point has as many events as it should deliver in about `seconds`, so that every
point takes a few seconds whatever the worker's pace: at the least of the rate its limit
allows with a few ms of the worker's own per delivery, 1,000/s, and twice the rate the
point before it on the same receiver reached (GROWTH; the limits go up); and at least
WAVES × max_in_flight (the slots filled that many times over) and MIN_EVENTS, at most
`most_events`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bench.deployment import Deployment, add_webhook, deploy, event_requests, post_events
from bench.probes import flush_redis, reset_receiver, wait_for_receipts, wait_for_succeeded
from bench.services import Process, Services

MIN_EVENTS = 10
WAVES = 10
GROWTH = 4.0  # a point is expected at most this much faster than the one before it
OWN_SECONDS_GUESS = 0.005  # a delivery's own time in the worker, only to size a point
RATE_GUESS = 1000.0  # about what one worker delivers, only to size a point


@dataclass(frozen=True)
class Point:
    delay_ms: int
    max_in_flight: int

    @property
    def name(self) -> str:
        """The prefix of the point's figures, e.g. `50ms_mif10`."""
        return f"{self.delay_ms}ms_mif{self.max_in_flight}"

    @property
    def ideal_per_s(self) -> float:
        return self.max_in_flight * 1000 / self.delay_ms

    def events(self, seconds: float, most_events: int, rate_before: float | None) -> int:
        """How many events to post; `rate_before`: the deliveries/s of the point before
        this one on the same receiver, if any."""
        guess = min(self.max_in_flight / (self.delay_ms / 1000 + OWN_SECONDS_GUESS), RATE_GUESS)
        if rate_before is not None:
            guess = min(guess, rate_before * GROWTH)
        least = max(MIN_EVENTS, WAVES * self.max_in_flight)
        return min(most_events, max(least, round(guess * seconds)))


def points(delays_ms: Sequence[int], limits: Sequence[int]) -> list[Point]:
    return [Point(delay, limit) for delay in delays_ms for limit in limits]


async def slots_run(
    services: Services,
    session: aiohttp.ClientSession,
    database_url: str,
    receiver: Process,
    chosen: Sequence[Point],
    seconds: float,
    most_events: int,
) -> dict[str, float]:
    """One run on a fresh database: every point in turn; the API is stopped at the end."""
    await flush_redis(services.redis_url)
    deployment = await deploy(services, session, database_url, receiver.url)
    figures: dict[str, float] = {}
    delivered = 0
    rates: dict[int, float] = {}  # receiver delay → the last point's deliveries/s
    try:
        for point in chosen:
            events = point.events(seconds, most_events, rates.get(point.delay_ms))
            delivered += events
            found = await point_run(
                services, session, deployment, receiver, point, events, delivered
            )
            figures |= {f"{point.name}_{name}": value for name, value in found.items()}
            rates[point.delay_ms] = found["deliveries_per_s"]
    finally:
        services.stop(deployment.api)
    return figures


async def point_run(
    services: Services,
    session: aiohttp.ClientSession,
    deployment: Deployment,
    receiver: Process,
    point: Point,
    events: int,
    succeeded_after: int,
) -> dict[str, float]:
    """`succeeded_after`: the deliveries succeeded in the database once this point is done
    (this point's and the earlier points'); the worker is stopped after that."""
    path = f"/delay/{point.delay_ms}/{point.name}"
    app_id = f"app_slots_{point.name}"
    await add_webhook(
        session,
        deployment.api.url,
        deployment.key,
        f"slots {point.name}",
        f"{receiver.url}{path}",
        app_id,
        max_in_flight=point.max_in_flight,
    )
    await reset_receiver(session, receiver.url)
    make = event_requests(deployment.key, tag=point.name, app_ids=(app_id,))
    await post_events(session, deployment.events_url, make, events)
    worker = services.start_worker(deployment.database_url, name="worker_slots")
    try:
        within = 60 + events * 20 / min(point.ideal_per_s, RATE_GUESS)
        stats = await wait_for_receipts(session, receiver.url, events, within)
        await wait_for_succeeded(deployment.database_url, succeeded_after, within=60)
    finally:
        services.stop(worker)
    rate = (events - 1) / max(stats["last_arrival"] - stats["first_arrival"], 1e-6)
    return {
        "events": float(events),
        "deliveries_per_s": rate,
        "ideal_per_s": point.ideal_per_s,
        "ratio": rate / point.ideal_per_s,
        "most_open": float(stats["paths"][path]["most_open"]),
        "max_in_flight": float(point.max_in_flight),
    }


def violations(figures: dict[str, float]) -> list[str]:
    """The points whose receiver saw more requests at once than their max_in_flight."""
    found = []
    for name, most_open in figures.items():
        if name.endswith("_most_open"):
            point = name.removesuffix("_most_open")
            limit = figures[f"{point}_max_in_flight"]
            if most_open > limit:
                found.append(f"{point}: {most_open:.0f} open at once, max_in_flight {limit:.0f}")
    return found
