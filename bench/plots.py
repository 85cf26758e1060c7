"""The benchmark's plots, PNG files beside its JSON (`<stamp>-slots.png`,
`<stamp>-latency.png`), drawn with matplotlib's Agg backend (no display needed):

- stage 7: deliveries/s against max_in_flight, a line per receiver delay with its ideal
  (max_in_flight / delay) dashed, and the issue's goals marked; a panel per database;
- stage 4: the end-to-end latencies' cumulative distribution (every event of every run),
  p50 and p99 marked and the targets (15 and 60 ms) drawn; a panel per database.

A plot whose stage was not measured is not drawn. matplotlib comes with the `bench`
extra; without it the run goes on and says so.
"""

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import LATENCY, SLOTS, DatabaseResults, percentile

# The goals for stage 7 (50 ms receiver): max_in_flight → deliveries/s.
SLOTS_GOALS = {10: 0.90 * 200, 50: 0.80 * 1000}
LATENCY_TARGETS_MS = {"p50 target": 15.0, "p99 target": 60.0}
COLOURS = {1: "tab:blue", 50: "tab:orange"}
FLOOR_MS = 0.1


def _plain_ticks(axis: Any, slots: dict[str, list[float]] | None = None) -> None:
    """Numbers as 1, 10, 250 instead of powers of ten; on the max_in_flight axis, ticks
    at the values measured."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if slots is not None:
        limits = {limit for pairs in slots_points(slots).values() for limit, _ in pairs}
        axis.set_ticks(sorted(limits))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(_plain))


def _plain(value: float, _: object) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def write_plots(results: Sequence[DatabaseResults], stem: Path) -> list[Path]:
    """Draws what the results hold; returns the files written."""
    try:
        import matplotlib
    except ImportError:
        print("no plots: matplotlib is missing (pip install -e '.[bench]')")
        return []
    matplotlib.use("Agg")
    written: list[Path] = []
    with_slots = [result for result in results if result.runs.get(SLOTS)]
    if with_slots:
        written.append(slots_plot(with_slots, stem.with_name(f"{stem.name}-slots.png")))
    with_latency = [result for result in results if result.samples.get(LATENCY)]
    if with_latency:
        written.append(latency_plot(with_latency, stem.with_name(f"{stem.name}-latency.png")))
    return written


def slots_points(figures: dict[str, list[float]]) -> dict[int, list[tuple[int, float]]]:
    """Receiver delay (ms) → [(max_in_flight, median deliveries/s)], from stage 7's
    figures (`50ms_mif10_deliveries_per_s` …)."""
    found: dict[int, list[tuple[int, float]]] = {}
    for name, values in figures.items():
        if name.endswith("_deliveries_per_s"):
            delay, limit = name.removesuffix("_deliveries_per_s").split("ms_mif")
            found.setdefault(int(delay), []).append((int(limit), statistics.median(values)))
    return {delay: sorted(pairs) for delay, pairs in sorted(found.items())}


def slots_plot(results: Sequence[DatabaseResults], path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 5), sharey=True, squeeze=False
    )
    for ax, result in zip(axes[0], results, strict=True):
        curves = slots_points(result.runs[SLOTS])
        for delay, pairs in curves.items():
            colour = COLOURS.get(delay)
            limits = [limit for limit, _ in pairs]
            rates = [rate for _, rate in pairs]
            ax.plot(limits, rates, "o-", color=colour, label=f"{delay} ms receiver")
            ax.plot(
                limits,
                [limit * 1000 / delay for limit in limits],
                "--",
                color=colour,
                alpha=0.6,
                label=f"ideal: max_in_flight / {delay} ms",
            )
        ax.plot(
            list(SLOTS_GOALS),
            list(SLOTS_GOALS.values()),
            "k^",
            fillstyle="none",
            markersize=9,
            label="goal (50 ms receiver)",
        )
        for number, (delay, pairs) in enumerate(curves.items()):
            below = number % 2 == 0  # the curves' labels on alternate sides, apart
            for limit, rate in pairs:
                ratio = rate / (limit * 1000 / delay)
                ax.annotate(
                    f"{ratio:.0%}" if ratio >= 0.095 else f"{ratio:.1%}",
                    (limit, rate),
                    # below right or above left: off a rising curve
                    xytext=(5, -12) if below else (-6, 5),
                    ha="left" if below else "right",
                    textcoords="offset points",
                    fontsize="x-small",
                    color=COLOURS.get(delay),
                )
        # The 1 ms receiver's ideal (up to 100,000/s) leaves the top: the measured
        # points, not that line, set the scale.
        measured = [rate for pairs in curves.values() for _, rate in pairs]
        ax.set(xscale="log", yscale="log", title=result.kind, xlabel="max_in_flight")
        ax.set_ylim(min(measured) / 2, max(measured) * 4)
        limits_measured = [limit for pairs in curves.values() for limit, _ in pairs]
        ax.set_xlim(min(limits_measured) / 1.6, max(limits_measured) * 1.4)  # room for labels
        _plain_ticks(ax.xaxis, result.runs[SLOTS])
        _plain_ticks(ax.yaxis)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    axes[0][0].set_ylabel("deliveries/s, first to last arrival (median of runs)")
    figure.suptitle(
        "Stage 7, slots: one webhook's deliveries/s against its max_in_flight "
        "(% of the ideal beside each point)"
    )
    return _save(figure, path)


def latency_plot(results: Sequence[DatabaseResults], path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 4.5), sharex=True, squeeze=False
    )
    for ax, result in zip(axes[0], results, strict=True):
        # A delivery can arrive before the harness has read the POST's answer: drawn at
        # the left edge of the log scale.
        latencies = sorted(max(value, FLOOR_MS) for value in result.samples[LATENCY])
        share = [(number + 1) / len(latencies) for number in range(len(latencies))]
        ax.step(latencies, share, where="post", color="tab:blue")
        # p50's label right of its line, p99's left of it (it may be near the edge).
        for q, colour, side in ((0.50, "tab:green", 1), (0.99, "tab:red", -1)):
            at = percentile(latencies, q)
            ax.axvline(at, color=colour, linewidth=1)
            ax.annotate(
                f"p{q * 100:.0f} {at:.1f} ms",
                (at, q),
                xytext=(6 * side, -14 if q > 0.9 else 6),
                textcoords="offset points",
                ha="left" if side > 0 else "right",
                color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
        for label, limit in LATENCY_TARGETS_MS.items():
            ax.axvline(limit, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                label,
                (limit, 0.98),
                xytext=(-12, 0),
                textcoords="offset points",
                rotation=90,
                va="top",
                color="grey",
                fontsize="small",
            )
        ax.set(
            xscale="log",
            ylim=(0, 1.02),
            title=f"{result.kind}: {len(latencies):,} events, all runs",
            xlabel=f"POST answer → arrival at the receiver, ms (log; ≤ {FLOOR_MS:g} drawn at it)",
        )
        _plain_ticks(ax.xaxis)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("share of events (cumulative)")
    figure.suptitle("Stage 4, end-to-end latency at a fixed rate")
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
