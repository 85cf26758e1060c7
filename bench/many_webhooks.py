"""Stage 9, the worker alone with many webhooks: 100 webhooks at the default policies
(created without `max_in_flight`), each on a path of its own on the receiver
(`/many/NNN`, answered at once) and bound to an app of its own; N events (default
20,000) posted with no worker running, spread evenly (event i is of app i mod 100);
then one worker is started and timed as in stage 2 (`bench.delivery.drain`: from its
start until the receiver has N distinct webhook-ids and the database N `succeeded`).

Reported as stage 2 (deliveries/s, from the first arrival too, the worker's CPU ms per
delivery from /proc) plus the rate at which the API took the backlog and the most
requests any one webhook's path had open at once. The report divides deliveries/s by
stage 1b's bookkeeping ceiling.
"""

import asyncio

import aiohttp

from bench.delivery import drain
from bench.deployment import Deployment, add_webhook, deploy, event_requests, post_events
from bench.probes import flush_redis, receiver_stats, reset_receiver
from bench.services import Process, Services

WEBHOOKS = 100
CREATED_AT_ONCE = 10


def path_of(number: int) -> str:
    return f"/many/{number:03d}"


def app_of(number: int) -> str:
    return f"app_many_{number:03d}"


async def many_webhooks_run(
    services: Services,
    session: aiohttp.ClientSession,
    database_url: str,
    receiver: Process,
    events: int,
) -> dict[str, float]:
    """One run on a fresh database; its API is stopped at the end."""
    await flush_redis(services.redis_url)
    deployment = await deploy(services, session, database_url, receiver.url)
    try:
        await add_webhooks(session, deployment, receiver)
        await reset_receiver(session, receiver.url)
        app_ids = [app_of(number) for number in range(WEBHOOKS)]
        make = event_requests(deployment.key, tag="many", app_ids=app_ids)
        posted = await post_events(session, deployment.events_url, make, events)
        figures = await drain(services, session, deployment, receiver, events, None)
        paths = (await receiver_stats(session, receiver.url))["paths"]
    finally:
        services.stop(deployment.api)
    figures["fill_events_per_s"] = posted.per_second
    figures["most_open_per_webhook"] = float(
        max(paths.get(path_of(number), {}).get("most_open", 0) for number in range(WEBHOOKS))
    )
    return figures


async def add_webhooks(
    session: aiohttp.ClientSession, deployment: Deployment, receiver: Process
) -> None:
    """WEBHOOKS webhooks at the default policies, CREATED_AT_ONCE requests at a time."""
    for start in range(0, WEBHOOKS, CREATED_AT_ONCE):
        await asyncio.gather(
            *(
                add_webhook(
                    session,
                    deployment.api.url,
                    deployment.key,
                    f"many {number:03d}",
                    f"{receiver.url}{path_of(number)}",
                    app_of(number),
                    max_in_flight=None,
                )
                for number in range(start, min(start + CREATED_AT_ONCE, WEBHOOKS))
            )
        )
