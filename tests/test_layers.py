"""Imports run one way: workers/ use only the kernel (app/core/), and nothing in app/
imports workers/. Read from the source, so an import inside a function counts too.
Likewise read from the source: arq is known to one module, and jobs are queued by one."""

import ast
from collections.abc import Iterator
from pathlib import Path

from app.cli import _installed_command
from workers.settings import run_worker

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> Iterator[tuple[str, str]]:
    """(file, module) for every import in every module of `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(path.relative_to(ROOT)), alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield str(path.relative_to(ROOT)), node.module
                if node.module == "app":  # `from app import core` names a module too
                    for alias in node.names:
                        yield str(path.relative_to(ROOT)), f"app.{alias.name}"


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_nothing_in_app_imports_workers() -> None:
    found = [(f, m) for f, m in imported_modules("app") if in_package(m, "workers")]
    assert found == []


def test_workers_import_only_the_kernel() -> None:
    allowed = {"app", "app.__version__"}
    found = [
        (f, m)
        for f, m in imported_modules("workers")
        if in_package(m, "app") and m not in allowed and not in_package(m, "app.core")
    ]
    assert found == []


def test_the_kernel_imports_nothing_above_it() -> None:
    found = [
        (f, m)
        for f, m in imported_modules("app/core")
        if (in_package(m, "app") and not in_package(m, "app.core") and m != "app")
        or in_package(m, "workers")
    ]
    assert found == []


def test_only_the_queue_module_knows_arq() -> None:
    """arq's keys and internals are used by app/core/queue.py alone (its layout is
    checked by tests/workers/test_arq_layout.py)."""
    found = [
        (f, m)
        for package in ("app", "workers")
        for f, m in imported_modules(package)
        if in_package(m, "arq") and f != "app/core/queue.py"
    ]
    assert found == []


def test_only_the_unit_of_work_puts_jobs_on_the_queue() -> None:
    """Every enqueue follows a commit: routes, POST /events and the worker call
    `UnitOfWork.enqueue_after_commit`, never `queue.enqueue` by hand."""
    found = []
    for package in ("app", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "enqueue":
                    found.append(str(path.relative_to(ROOT)))
    assert set(found) <= {"app/core/unit_of_work.py"}
    assert found, "the unit of work is expected to call queue.enqueue"


def test_the_worker_command_is_the_installed_entry_point() -> None:
    """`storehooks worker` finds the worker through pyproject.toml's entry point; a
    stale install (pip install -e . not rerun) would fail here, not in production."""
    assert _installed_command("worker") is run_worker
