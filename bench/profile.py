"""`--profile`: py-spy samples the worker during stage 2's first run (collapsed stacks in
the logs directory), and the top functions are printed, by own and by total samples.

py-spy (`pip install py-spy` into the venv) must be installed; it runs as its own
process (it costs CPU too, so figures of a profiled run read a little low).
"""

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.services import Process, Services

RATE = 100  # samples per second
PROJECT = ("app/", "workers/")
NOT_COSTS = ("<module>", "(app/cli.py", "run_worker (workers/settings.py")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(services: Services, target: Process, output: Path) -> Process | None:
    binary = py_spy()
    if binary is None:
        print("--profile: py-spy is not installed; the worker is not profiled", file=sys.stderr)
        return None
    command = [binary, "record", "--pid", str(target.pid), "--rate", str(RATE)]
    # --gil: only the thread holding the GIL is sampled, so waiting (epoll, aiosqlite's
    # queue) drops out and what remains is where the Python CPU goes. Work done with the
    # GIL released (SQLite's C code, the kernel) is not seen: the thread split of
    # `worker_main_thread_cpu_ms_per_delivery` covers that.
    command += ["--format", "raw", "--function", "--gil", "--output", str(output)]
    return services.start("py-spy", command)


def stop(services: Services, profiler: Process) -> None:
    """SIGINT makes py-spy write its output and exit."""
    if profiler.popen.poll() is None:
        profiler.popen.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.popen.wait(timeout=30)
    services.stop(profiler)


def read_stacks(collapsed: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in collapsed.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def package(frame: str) -> str:
    """`select (selectors.py)` -> selectors; `execute (sqlalchemy/orm/session.py)` -> sqlalchemy."""
    location = frame.rpartition(" (")[2].rstrip(")").split(":")[0]
    if location.startswith("<frozen"):
        return "import machinery"
    head = location.split("/")[0]
    return head.removesuffix(".py")


def summarise(collapsed: Path, top: int = 15) -> str:
    stacks = read_stacks(collapsed)
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks.items():
        own[frames[-1]] += count
        by_package[package(frames[-1])] += count
        for frame in set(frames):
            ours = any(f"({prefix}" in frame for prefix in PROJECT)
            if ours and not any(part in frame for part in NOT_COSTS):
                inclusive[frame] += count

    def block(title: str, counts: Counter[str]) -> list[str]:
        rows = [f"  {count / total:6.1%}  {name}" for name, count in counts.most_common(top)]
        return [title, *rows]

    return "\n".join(
        [
            f"worker profile: {total} samples holding the GIL, at {RATE}/s ({collapsed})",
            *block("own time by package:", by_package),
            *block("own time by function:", own),
            *block("total time of storehooks' functions (with what they call):", inclusive),
        ]
    )
