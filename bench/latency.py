"""Stage 4, end-to-end latency: with the worker running, events are posted at a fixed
rate (an open loop: each POST when it is due), and each event's latency is the time from
the POST's answer to its arrival at the receiver, matched by event_id via /arrivals."""

import time

import aiohttp

from bench.deployment import Deployment, event_requests
from bench.load import fixed_rate
from bench.probes import arrivals, reset_receiver, wait_for_receipts
from bench.report import percentile
from bench.services import Process


async def latency_run(
    session: aiohttp.ClientSession,
    deployment: Deployment,
    receiver: Process,
    rate: float,
    seconds: float,
    run: int,
    samples: list[float] | None = None,
) -> dict[str, float]:
    """`samples`, if given, gets every event's latency (ms)."""
    await reset_receiver(session, receiver.url)
    make = event_requests(deployment.key, tag=f"l{run}")
    started = time.time()
    answers, achieved = await fixed_rate(session, deployment.events_url, make, rate, seconds)
    failed = [answer for answer in answers if answer.status != 202]
    if failed:
        raise RuntimeError(f"{len(failed)} POST /events failed, e.g. {failed[0].document}")
    answered = {answer.document["id"]: answer.answered_at for answer in answers}
    await wait_for_receipts(session, receiver.url, len(answered), within=60)
    arrived = await arrivals(session, receiver.url)
    missing = [event_id for event_id in answered if event_id not in arrived]
    if missing:
        raise RuntimeError(f"{len(missing)} events never reached the receiver, e.g. {missing[0]}")
    latencies = [arrived[event_id] - at for event_id, at in answered.items()]
    if samples is not None:
        samples += [latency * 1000 for latency in latencies]
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "sent_events_per_s": achieved,
        "answered_events_per_s": len(answers) / (max(a.answered_at for a in answers) - started),
        "events": float(len(answered)),
    }
