"""The measurements of one database kind, stage after stage, each repeated `runs` times.

A stage that fails is recorded (and the ones that need it are skipped); the others go on.
Stage 2 gets a fresh database and a fresh worker per run; stages 3 and 4 use the API of
its last run (the worker stopped for 3, running for 4); stage 5 fills run r's database;
stages 6 to 9 get a fresh database, API and worker(s) per run. Stage 2 runs when chosen
or when 3, 4 or 5 is.
"""

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import ceilings, profile
from bench.backlog import backlog_run
from bench.databases import Databases, count_by_status
from bench.delivery import DeliveryRun, delivery_run
from bench.deployment import Deployment
from bench.fairness import fairness_run
from bench.flash_sale import flash_sale_run
from bench.ingestion import ingestion_run
from bench.latency import latency_run
from bench.many_webhooks import many_webhooks_run
from bench.report import (
    BACKLOG,
    CEILINGS,
    DELIVERY,
    FAIRNESS,
    FLASH_SALE,
    INGESTION,
    LATENCY,
    MANY_WEBHOOKS,
    SLOTS,
    DatabaseResults,
)
from bench.services import Process, Services
from bench.slots import Point, points, slots_run, violations

ALL_STAGES = frozenset(range(1, 10))
NEED_STAGE_2 = frozenset({3, 4, 5})  # they use its deployment


@dataclass(frozen=True)
class Plan:
    events: int
    runs: int
    latency_rate: float
    latency_seconds: float
    backlog: int
    stages: frozenset[int] = ALL_STAGES
    fairness_rate: float = 50
    fairness_seconds: float = 10
    fairness_backlog: int = 10_000
    slots_delays_ms: tuple[int, ...] = (1, 50)
    slots_max_in_flight: tuple[int, ...] = (1, 10, 25, 50, 100)
    slots_seconds: float = 2.0  # a point's events are sized to take about this long
    slots_most_events: int = 3_000

    @property
    def slots_points(self) -> list[Point]:
        return points(self.slots_delays_ms, self.slots_max_in_flight)

    @property
    def ingestion_requests(self) -> int:
        return max(self.events // 4, 500)


@dataclass
class Shared:
    services: Services
    session: aiohttp.ClientSession
    receiver: Process
    bare: Process
    scratch: Path
    profile: bool = False


def say(kind: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] [{kind}] {message}", file=sys.stderr, flush=True)


@asynccontextmanager
async def stage(result: DatabaseResults, name: str) -> AsyncIterator[None]:
    say(result.kind, f"stage {name} …")
    try:
        yield
    except Exception as exc:  # recorded, reported, and the run goes on
        result.errors[name] = f"{type(exc).__name__}: {exc}"
        say(result.kind, f"stage {name} FAILED: {result.errors[name]}")


async def measure_database(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    await databases.prepare(shared.services)
    if 1 in plan.stages:
        async with stage(result, CEILINGS):
            await measure_ceilings(shared, databases, plan, result)
    if plan.stages & ({2} | NEED_STAGE_2):
        await measure_stage_2_and_its_users(shared, databases, plan, result)
    if 6 in plan.stages:
        async with stage(result, FAIRNESS):
            await measure_fairness(shared, databases, plan, result)
    if 7 in plan.stages:
        async with stage(result, SLOTS):
            await measure_slots(shared, databases, plan, result)
    if 8 in plan.stages:
        async with stage(result, FLASH_SALE):
            await measure_flash_sale(shared, databases, plan, result)
    if 9 in plan.stages:
        async with stage(result, MANY_WEBHOOKS):
            await measure_many_webhooks(shared, databases, plan, result)


async def measure_stage_2_and_its_users(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    runs: list[DeliveryRun] = []
    async with stage(result, DELIVERY):
        await measure_delivery(shared, databases, plan, result, runs)
    if not runs:
        for number, name in ((3, INGESTION), (4, LATENCY), (5, BACKLOG)):
            if number in plan.stages:
                result.errors.setdefault(name, "skipped: no deployment from stage 2")
        return
    last = runs[-1].deployment
    deployments = [run.deployment for run in runs]
    try:
        if 3 in plan.stages:
            async with stage(result, INGESTION):
                await measure_ingestion(shared, last, plan, result)
        if 4 in plan.stages:
            async with stage(result, LATENCY):
                await measure_latency(shared, last, plan, result)
        if 5 in plan.stages:
            async with stage(result, BACKLOG):
                await measure_backlog(shared, databases, deployments, plan, result)
    finally:
        shared.services.stop(last.api)


async def measure_ceilings(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    session, url, redis_url = shared.session, shared.receiver.url, shared.services.redis_url
    postgres_url = await databases.fresh() if databases.kind == "postgresql" else None
    for run in range(plan.runs):
        figures = _prefixed("raw", await ceilings.raw(session, url, plan.events))
        figures |= _prefixed(
            "sqlite_bookkeeping",
            await ceilings.sqlite_bookkeeping(session, url, plan.events, redis_url, shared.scratch),
        )
        if postgres_url is not None:
            figures |= _prefixed(
                "postgresql_bookkeeping",
                await ceilings.postgres_bookkeeping(
                    session, url, plan.events, redis_url, postgres_url
                ),
            )
        result.add(CEILINGS, figures)
        say(result.kind, f"ceilings run {run + 1}: " + _brief(figures))


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{name}": value for name, value in figures.items()}


def _brief(figures: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in figures.items())


async def measure_delivery(
    shared: Shared,
    databases: Databases,
    plan: Plan,
    result: DatabaseResults,
    runs: list[DeliveryRun],
) -> None:
    for run in range(plan.runs):
        if runs:  # the API of the previous run's database
            shared.services.stop(runs[-1].deployment.api)
        database_url = await databases.fresh()
        profile_to = shared.services.logs / f"worker-profile-{result.kind}.txt"
        profiling = shared.profile and run == 0
        done = await delivery_run(
            shared.services,
            shared.session,
            database_url,
            shared.receiver,
            plan.events,
            profile_to if profiling else None,
        )
        runs.append(done)
        result.add(DELIVERY, done.figures)
        say(result.kind, f"delivery run {run + 1}: " + _brief(done.figures))
        if profiling and profile_to.exists():
            summary = profile.summarise(profile_to)
            profile_to.with_suffix(".summary.txt").write_text(summary + "\n")
            print(summary, file=sys.stderr)


async def measure_ingestion(
    shared: Shared, deployment: Deployment, plan: Plan, result: DatabaseResults
) -> None:
    for run in range(plan.runs):
        figures = await ingestion_run(
            shared.session, deployment, shared.bare, plan.ingestion_requests, run
        )
        result.add(INGESTION, figures)
        say(result.kind, f"ingestion run {run + 1}: " + _brief(figures))


async def measure_latency(
    shared: Shared, deployment: Deployment, plan: Plan, result: DatabaseResults
) -> None:
    worker = shared.services.start_worker(deployment.database_url, name="worker_latency")
    try:
        await wait_for_no_pending(deployment.database_url, within=120)  # stage 3's events
        for run in range(plan.runs):
            figures = await latency_run(
                shared.session,
                deployment,
                shared.receiver,
                plan.latency_rate,
                plan.latency_seconds,
                run,
                samples=result.samples.setdefault(LATENCY, []),
            )
            result.add(LATENCY, figures)
            say(result.kind, f"end-to-end run {run + 1}: " + _brief(figures))
    finally:
        shared.services.stop(worker)


async def wait_for_no_pending(database_url: str, within: float) -> None:
    deadline = time.monotonic() + within
    while (by_status := await count_by_status(database_url)).get("pending", 0):
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries still pending after {within:g} s: {by_status}")
        await asyncio.sleep(0.2)


async def measure_backlog(
    shared: Shared,
    databases: Databases,
    deployments: list[Deployment],
    plan: Plan,
    result: DatabaseResults,
) -> None:
    for run in range(plan.runs):
        database_url = deployments[run % len(deployments)].database_url
        figures = await backlog_run(
            databases, database_url, shared.services.redis_url, plan.backlog
        )
        result.add(BACKLOG, figures)
        say(result.kind, f"retry backlog run {run + 1}: " + _brief(figures))


async def measure_fairness(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    for run in range(plan.runs):
        figures = await fairness_run(
            shared.services,
            shared.session,
            await databases.fresh(),
            shared.receiver,
            plan.fairness_rate,
            plan.fairness_seconds,
            plan.fairness_backlog,
        )
        result.add(FAIRNESS, figures)
        say(result.kind, f"fairness run {run + 1}: " + _brief(figures))


async def measure_slots(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    for run in range(plan.runs):
        figures = await slots_run(
            shared.services,
            shared.session,
            await databases.fresh(),
            shared.receiver,
            plan.slots_points,
            plan.slots_seconds,
            plan.slots_most_events,
        )
        result.add(SLOTS, figures)
        rates = {name: value for name, value in figures.items() if name.endswith("_per_s")}
        say(result.kind, f"slots run {run + 1}: " + _brief(rates))
        if found := violations(figures):
            raise RuntimeError("max_in_flight exceeded at the receiver: " + "; ".join(found))


async def measure_flash_sale(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    for run in range(plan.runs):
        figures = await flash_sale_run(
            shared.services, shared.session, await databases.fresh(), shared.receiver, plan.events
        )
        result.add(FLASH_SALE, figures)
        say(result.kind, f"flash sale run {run + 1}: " + _brief(figures))
        if figures["most_open"] > figures["max_in_flight"]:
            raise RuntimeError(
                f"max_in_flight exceeded at the receiver: {figures['most_open']:.0f} open at "
                f"once, max_in_flight {figures['max_in_flight']:.0f}"
            )


async def measure_many_webhooks(
    shared: Shared, databases: Databases, plan: Plan, result: DatabaseResults
) -> None:
    for run in range(plan.runs):
        figures = await many_webhooks_run(
            shared.services, shared.session, await databases.fresh(), shared.receiver, plan.events
        )
        result.add(MANY_WEBHOOKS, figures)
        say(result.kind, f"many webhooks run {run + 1}: " + _brief(figures))
