"""The figures of a benchmark: collected per database, stage and run; summarised as
median / min / max; compared with each other (ratios) and with the targets; printed as a
table and written as JSON with the machine's facts."""

import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

CEILINGS, DELIVERY, INGESTION, LATENCY, BACKLOG, FAIRNESS = (
    "1 ceilings",
    "2 delivery",
    "3 ingestion",
    "4 end-to-end",
    "5 retry backlog",
    "6 fairness",
)
SLOTS, FLASH_SALE, MANY_WEBHOOKS = ("7 slots", "8 flash sale", "9 many webhooks")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class DatabaseResults:
    kind: str
    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Every single measurement of a distribution (stage 4's latencies, ms), all runs.
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, figures: dict[str, float]) -> None:
        for name, value in figures.items():
            self.runs.setdefault(stage, {}).setdefault(name, []).append(value)

    def median(self, stage: str, name: str) -> float | None:
        values = self.runs.get(stage, {}).get(name)
        return statistics.median(values) if values else None

    def ratios(self) -> dict[str, float]:
        pairs = {
            "delivery / raw ceiling": (DELIVERY, "deliveries_per_s", "raw_requests_per_s"),
            "delivery / sqlite bookkeeping ceiling": (
                DELIVERY,
                "deliveries_per_s",
                "sqlite_bookkeeping_requests_per_s",
            ),
            "delivery / postgresql bookkeeping ceiling": (
                DELIVERY,
                "deliveries_per_s",
                "postgresql_bookkeeping_requests_per_s",
            ),
            "worker CPU per delivery / raw sender CPU per request": (
                DELIVERY,
                "worker_cpu_ms_per_delivery",
                "raw_cpu_ms_per_request",
            ),
            "worker CPU per delivery / bookkeeping sender CPU per request": (
                DELIVERY,
                "worker_cpu_ms_per_delivery",
                "sqlite_bookkeeping_cpu_ms_per_request",
            ),
            "many webhooks / sqlite bookkeeping ceiling": (
                MANY_WEBHOOKS,
                "deliveries_per_s",
                "sqlite_bookkeeping_requests_per_s",
            ),
            "many webhooks / postgresql bookkeeping ceiling": (
                MANY_WEBHOOKS,
                "deliveries_per_s",
                "postgresql_bookkeeping_requests_per_s",
            ),
        }
        found: dict[str, float] = {}
        for label, (stage, numerator, denominator) in pairs.items():
            top, bottom = self.median(stage, numerator), self.median(CEILINGS, denominator)
            if top is not None and bottom:
                found[label] = top / bottom
        api, bare = (self.median(INGESTION, f"{k}_requests_per_s") for k in ("api", "bare"))
        if api is not None and bare:
            found["ingestion / bare endpoint"] = api / bare
        for name in ("p50_ms", "p99_ms"):
            busy, alone = (self.median(FAIRNESS, f"{k}_{name}") for k in ("backlog", "baseline"))
            if busy is not None and alone:
                found[f"healthy {name[:3]} latency, dead backlog / none"] = busy / alone
        return found

    def targets(self) -> list[dict[str, Any]]:
        ratios = self.ratios()
        checks: list[tuple[str, float | None, str, float]] = [
            (
                "delivery ≥ 1,000 deliveries/s",
                self.median(DELIVERY, "deliveries_per_s"),
                ">=",
                1000,
            ),
            (
                "delivery ≥ 40 % of the bookkeeping ceiling",
                ratios.get("delivery / sqlite bookkeeping ceiling"),
                ">=",
                0.40,
            ),
            (
                "ingestion ≥ 50 % of the bare endpoint",
                ratios.get("ingestion / bare endpoint"),
                ">=",
                0.50,
            ),
            ("end-to-end p50 ≤ 15 ms at 200 events/s", self.median(LATENCY, "p50_ms"), "<=", 15),
            ("end-to-end p99 ≤ 60 ms at 200 events/s", self.median(LATENCY, "p99_ms"), "<=", 60),
            (
                "100,000 scheduled retries in ≤ 100 MB of Redis",
                self.median(BACKLOG, "redis_mb_per_100k"),
                "<=",
                100,
            ),
            ("sweeper query ≤ 50 ms", self.median(BACKLOG, "sweeper_query_ms"), "<=", 50),
            (
                "slots: 50 ms, max_in_flight 10 ≥ 90 % of 200/s",
                self.median(SLOTS, "50ms_mif10_ratio"),
                ">=",
                0.90,
            ),
            (
                "slots: 50 ms, max_in_flight 50 ≥ 80 % of 1,000/s",
                self.median(SLOTS, "50ms_mif50_ratio"),
                ">=",
                0.80,
            ),
            (
                "slots: most open at once ≤ max_in_flight (×)",
                self.most_open_over_limit(),
                "<=",
                1,
            ),
            (
                "flash sale ≥ 1,000 events/s end to end",
                self.median(FLASH_SALE, "events_per_s"),
                ">=",
                1000,
            ),
            (
                "many webhooks ≥ 2,000 deliveries/s",
                self.median(MANY_WEBHOOKS, "deliveries_per_s"),
                ">=",
                2000,
            ),
            (
                "many webhooks ≤ 0.5 ms worker CPU per delivery",
                self.median(MANY_WEBHOOKS, "worker_cpu_ms_per_delivery"),
                "<=",
                0.5,
            ),
            (
                "many webhooks ≥ 70 % of the bookkeeping ceiling",
                ratios.get("many webhooks / sqlite bookkeeping ceiling"),
                ">=",
                0.70,
            ),
        ]
        return [_check(*check) for check in checks]

    def most_open_over_limit(self) -> float | None:
        """The worst of stages 7 and 8: the most requests open at once at the receiver
        divided by the webhook's max_in_flight, over every point and run."""
        worst: float | None = None
        for stage in (SLOTS, FLASH_SALE):
            figures = self.runs.get(stage, {})
            for name, opened in figures.items():
                if name.endswith("most_open"):
                    limits = figures[name.removesuffix("most_open") + "max_in_flight"]
                    ratio = max(o / limit for o, limit in zip(opened, limits, strict=True))
                    worst = ratio if worst is None else max(worst, ratio)
        return worst

    def summary(self) -> dict[str, Any]:
        return {
            "figures": {
                stage: {name: summarise(values) for name, values in figures.items()}
                for stage, figures in self.runs.items()
            },
            "ratios": self.ratios(),
            "targets": self.targets(),
            "errors": self.errors,
            "samples": {
                name: [round(value, 3) for value in values] for name, values in self.samples.items()
            },
        }


def _check(label: str, value: float | None, sense: str, limit: float) -> dict[str, Any]:
    if value is None:
        return {"target": label, "value": None, "met": None, "verdict": "not measured"}
    met = value >= limit if sense == ">=" else value <= limit
    if met:
        verdict = "met"
    elif sense == ">=":
        verdict = f"missed by {(limit - value) / limit:.0%} (at {value / limit:.0%} of it)"
    else:
        verdict = f"missed: {value / limit:.1f}× the limit"
    return {"target": label, "value": value, "limit": limit, "met": met, "verdict": verdict}


def summarise(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.4f}"


def table(result: DatabaseResults) -> str:
    lines = [
        f"== {result.kind} ==",
        f"{'stage':<16} {'figure':<42} {'median':>10} {'min':>10} {'max':>10}",
    ]
    for stage, figures in result.runs.items():
        if stage == SLOTS:
            lines += slots_table(figures)
            continue
        for name, values in figures.items():
            row = summarise(values)
            cells = (_number(row[key]) for key in ("median", "min", "max"))
            lines.append(f"{stage:<16} {name:<42} " + " ".join(f"{cell:>10}" for cell in cells))
    lines.append("ratios (of medians):")
    lines += [f"  {label:<62} {_ratio(label, value)}" for label, value in result.ratios().items()]
    lines.append("targets:")
    lines += [f"  {t['target']:<50} {_shown(t):>8}  {t['verdict']}" for t in result.targets()]
    lines += [f"FAILED {stage}: {error}" for stage, error in result.errors.items()]
    return "\n".join(lines)


def slots_table(figures: dict[str, list[float]]) -> list[str]:
    """Stage 7's figures, several per point (`50ms_mif10_deliveries_per_s` …), as a row
    per point: medians over the runs, but the most open at once of any run."""
    lines = [
        f"{SLOTS}: one webhook, pre-posted events, deliveries/s from first to last arrival",
        f"  {'receiver':>8} {'max_in_flight':>13} {'events':>7} {'deliveries/s':>12} "
        f"{'ideal/s':>9} {'ratio':>7} {'most open':>9}",
    ]
    for prefix in _points(figures):
        median = {
            name.removeprefix(f"{prefix}_"): statistics.median(values)
            for name, values in figures.items()
            if name.startswith(f"{prefix}_")
        }
        most, limit = max(figures[f"{prefix}_most_open"]), median["max_in_flight"]
        flag = "  VIOLATION: more than max_in_flight at once" if most > limit else ""
        lines.append(
            f"  {prefix.split('_')[0]:>8} {limit:>13.0f} {median['events']:>7.0f} "
            f"{_number(median['deliveries_per_s']):>12} {_number(median['ideal_per_s']):>9} "
            f"{median['ratio']:>7.1%} {most:>9.0f}{flag}"
        )
    return lines


def _points(figures: dict[str, list[float]]) -> list[str]:
    """The points' prefixes (`50ms_mif10` …), in the order they were measured."""
    return [name.removesuffix("_events") for name in figures if name.endswith("_events")]


def _shown(target: dict[str, Any]) -> str:
    value, limit = target["value"], target.get("limit")
    if value is not None and limit is not None and "%" in target["target"]:  # a ratio
        return f"{value:.1%}"
    return _number(value)


def _ratio(label: str, value: float) -> str:
    """Throughput ratios as a percentage, CPU and latency ratios as a multiple."""
    if "latency" in label:
        return f"{value:.2f}×"
    return f"{value:.1f}×" if "CPU" in label else f"{value:.1%}"


def machine_facts(database_kinds: list[str]) -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpuinfo("model name"),
        "memory": _first_line("/proc/meminfo"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "databases": database_kinds,
    }


def _cpuinfo(key: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _first_line(path: str) -> str:
    try:
        return Path(path).read_text().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def write_json(document: dict[str, Any], stamp: str, directory: Path = RESULTS) -> Path:
    """`directory`/`stamp`.json; the plots go beside it, as `stamp`-….png."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: object) -> object:
    return str(value)
