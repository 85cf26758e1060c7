"""`python -m bench`: start everything on 127.0.0.1, measure, print, write JSON.

    python -m bench [--events N] [--runs R] [--database sqlite|postgresql|both]
                    [--stages 1,2,…,9] [--smoke]

Beside the JSON it draws PNG plots (bench/plots.py; matplotlib, the `bench` extra).

PostgreSQL needs STOREHOOKS_TEST_DATABASE_URL (scripts/throwaway_postgres.sh sets it);
the benchmark creates its databases there and drops them at the end.
"""

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.databases import Databases, PostgresDatabases, SqliteDatabases
from bench.measure import ALL_STAGES, NEED_STAGE_2, Plan, Shared, measure_database, say
from bench.plots import write_plots
from bench.report import DatabaseResults, machine_facts, table, write_json
from bench.services import Services

POSTGRES_URL_VARIABLE = "STOREHOOKS_TEST_DATABASE_URL"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="N (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each stage (default 3)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql", "both"],
        default="both" if os.environ.get(POSTGRES_URL_VARIABLE) else "sqlite",
        help=f"default: both when {POSTGRES_URL_VARIABLE} is set, else sqlite",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker with py-spy during stage 2's first run (pip install py-spy)",
    )
    parser.add_argument(
        "--stages",
        default=",".join(str(number) for number in sorted(ALL_STAGES)),
        help="which stages to measure, e.g. 7,8,9 (default all 1-9; 3, 4 and 5 run 2 too)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a short check: tiny N, 1 run, SQLite only"
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> tuple[Plan, list[str]]:
    if args.smoke:
        smoke = Plan(
            events=200,
            runs=1,
            latency_rate=200,
            latency_seconds=5,
            backlog=5_000,
            fairness_seconds=1,
            fairness_backlog=2_000,
            slots_max_in_flight=(1, 10),
            slots_seconds=0.3,
            slots_most_events=100,
        )
        return smoke, ["sqlite"]
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if "postgresql" in kinds and not os.environ.get(POSTGRES_URL_VARIABLE):
        raise SystemExit(f"--database postgresql needs {POSTGRES_URL_VARIABLE}")
    stages = frozenset(int(number) for number in args.stages.split(","))
    if stages & NEED_STAGE_2:
        stages |= {2}
    plan = Plan(
        args.events, args.runs, latency_rate=200, latency_seconds=10, backlog=100_000, stages=stages
    )
    return plan, kinds


def databases_for(kind: str, directory: Path) -> Databases:
    if kind == "postgresql":
        return PostgresDatabases(os.environ[POSTGRES_URL_VARIABLE])
    return SqliteDatabases(directory)


async def run(
    plan: Plan, kinds: list[str], services: Services, profiling: bool
) -> list[DatabaseResults]:
    results: list[DatabaseResults] = []
    # Idle connections are dropped before uvicorn's 5-second keep-alive ends them, so a
    # request never goes out on a connection that the server is closing.
    connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await services.start_redis()
        receiver, bare = await asyncio.gather(
            services.start_receiver(session), services.start_bare_app(session)
        )
        scratch = services.logs / "scratch.db"
        shared = Shared(services, session, receiver, bare, scratch, profiling)
        for kind in kinds:
            result = DatabaseResults(kind)
            results.append(result)
            databases = databases_for(kind, services.logs)
            try:
                await measure_database(shared, databases, plan, result)
            except Exception as exc:
                result.errors["setup"] = f"{type(exc).__name__}: {exc}"
                say(kind, f"FAILED: {result.errors['setup']}")
            finally:
                await databases.drop_all()
    return results


def document(
    plan: Plan, results: list[DatabaseResults], started: datetime, logs: Path
) -> dict[str, Any]:
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench", *sys.argv[1:]],
        "plan": plan.__dict__ | {"ingestion_requests": plan.ingestion_requests},
        "machine": machine_facts([result.kind for result in results]),
        "logs": str(logs),
        "databases": {result.kind: result.summary() for result in results},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan, kinds = make_plan(args)
    # Ctrl-C (even where a parent shell ignored SIGINT) and SIGTERM stop the run alike;
    # the finally below stops every subprocess.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logs = Path(tempfile.mkdtemp(prefix="storehooks-bench-"))
    services = Services(logs)
    started, clock = datetime.now(UTC), time.monotonic()
    say("bench", f"{plan}, databases {kinds}; logs in {logs}")
    try:
        results = asyncio.run(run(plan, kinds, services, args.profile))
    except KeyboardInterrupt:
        say("bench", f"interrupted; every subprocess stopped; logs in {logs}")
        return 130
    finally:
        services.stop_all()
    for result in results:
        print(table(result))
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    path = write_json(document(plan, results, started, logs), stamp)
    plots = write_plots(results, path.with_suffix(""))
    print(f"\n{time.monotonic() - clock:.0f} s; results in {path}; logs in {logs}")
    for plot in plots:
        print(f"plot: {plot}")
    return 1 if any(result.errors for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
