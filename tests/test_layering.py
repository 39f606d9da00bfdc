"""The direction of dependencies (DESIGN.md, "Layout"), read from the imports of every module.

- governance never imports the worker's task module (it sends work by name through governance.queueing);
- the parsers and clients under worker/ (scanners, lineage, outbound) know nothing of Django or governance;
- only governance/queueing.py talks to the Celery app to send work (/healthz asks it whether the broker answers).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def modules(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


@pytest.mark.parametrize("path", list(modules("governance")), ids=lambda p: str(p.relative_to(ROOT)))
def test_governance_never_imports_the_task_module(path):
    bad = {name for name in imports_of(path) if name == "worker.tasks" or name.startswith("worker.tasks.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: send work with governance.queueing.send"


@pytest.mark.parametrize("path", list(modules("worker/scanners", "worker/lineage")) + [ROOT / "worker/outbound.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_parsers_and_clients_know_nothing_of_django(path):
    bad = {name for name in imports_of(path) if name.split(".")[0] in ("django", "governance", "rest_framework")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_queueing_seam_sends_work():
    senders = sorted(str(p.relative_to(ROOT)) for p in modules("governance")
                     if {"worker.celery", "worker.celery.app"} & imports_of(p))
    assert senders in (["governance/queueing.py"], ["governance/dashboard/views.py", "governance/queueing.py"]), senders


INGEST = "governance.findings.ingest"
PRIVATE_DB_API = ("psycopg._", "_prepare_cursor", "ServerBindingCursor", "queries_log", "get_new_connection",
                  "wrap_database_errors", "connection.connection")


@pytest.mark.parametrize("path", [p for p in modules("governance", "worker") if INGEST.replace(".", "/") not in str(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_ingest_package_is_used_through_its_entry_points_only(path):
    """Outside governance/findings/ingest/ only what its __init__ exports is imported (findings_write and friends)."""
    from governance.findings import ingest

    used = {name for name in imports_of(path) if name.startswith(INGEST + ".")}
    bad = {name for name in used if name.removeprefix(INGEST + ".") not in ingest.__all__}
    assert not bad, f"{path.relative_to(ROOT)} reaches into the ingest package: {bad}"


@pytest.mark.parametrize("path", list(modules("governance", "worker")), ids=lambda p: str(p.relative_to(ROOT)))
def test_private_database_apis_live_in_the_ingest_driver_only(path):
    if path == ROOT / "governance/findings/ingest/driver.py":
        return
    text = path.read_text()
    bad = [name for name in PRIVATE_DB_API if name in text]
    assert not bad, f"{path.relative_to(ROOT)} uses {bad}: keep them in governance/findings/ingest/driver.py"
