"""Parsing ahead of the writer (governance.findings.ingest.ahead): on PostgreSQL an import parses its report in a
forked process (ForkedPrefetch), a thread if fork() fails; and the writer's filter of keys met (prepare.SeenKeys)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.db import connection

from governance.findings.ingest import prepare
from governance.findings.models import Finding, ImportRun
from governance.findings.ingest.ahead import ForkedPrefetch
from tests.findings.conftest import run_import, sarif_bytes, sarif_n, sarif_result

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the parsing process is PostgreSQL's path"),
]


def children() -> set[int]:
    kids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        kids |= {int(pid) for pid in (task / "children").read_text().split()}
    return kids


def test_items_come_back_in_order_and_the_process_is_reaped():
    before = children()
    with ForkedPrefetch(({"n": i, "pid": os.getpid()} for i in range(500))) as items:
        got = list(items)
    assert [item["n"] for item in got] == list(range(500))
    assert {item["pid"] for item in got} - {os.getpid()}  # produced elsewhere
    assert children() == before


def test_an_error_in_the_parsing_process_is_raised_here():
    def items():
        yield 1
        raise ValueError("broken at item 2")

    with pytest.raises(ValueError, match="broken at item 2"), ForkedPrefetch(items()) as got:
        list(got)


def test_the_flag_steers_the_producer():
    """The shared byte written here is read there (ingest uses it to build rows ahead or not)."""
    producer = ForkedPrefetch(None)

    def items():
        for _ in range(3):
            yield producer.flag[0]

    producer._items = items()
    producer.flag[0] = 0
    with producer as got:
        assert list(got) == [0, 0, 0]


def test_a_killed_parsing_process_leaves_the_run_to_retry_with_nothing_written(system, settings, monkeypatch):
    """Killed by a signal or the OOM killer: nothing is written and the run is claimable again at once, for the
    task's retry; the next attempt imports it whole."""
    from governance.findings.imports import import_run_execute
    from governance.findings.ingest import ParserLost
    from tests.findings.conftest import create_run

    settings.RAMPART_IMPORT_BATCH = 5
    original = prepare.Preparer.__call__
    parent = os.getpid()

    def dies_on_the_third_batch(self, records):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3 and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, records)

    monkeypatch.setattr(prepare.Preparer, "__call__", dies_on_the_third_batch)
    run = create_run(sarif_n(30), system=system)
    before = children()
    with pytest.raises(ParserLost, match="parsing process stopped"):
        import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.RUNNING and run.attempts == 1
    assert not Finding.objects.filter(system=system).exists()
    assert children() == before

    monkeypatch.setattr(prepare.Preparer, "__call__", original)
    done = import_run_execute(run.pk)
    assert done.status == ImportRun.Status.DONE and done.attempts == 2 and done.counts["created"] == 30


def test_service_stop_signals_do_not_stop_the_parsing_process():
    """SIGTERM/SIGINT go to a service's whole process group; the parent decides when the child ends."""
    def items():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        yield from range(3)

    with ForkedPrefetch(items()) as got:
        assert list(got) == [0, 1, 2]


def test_a_failing_fork_falls_back_to_a_thread(monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    producer = ForkedPrefetch(iter(range(4)))
    with producer as got:
        assert list(got) == [0, 1, 2, 3]


def test_the_writer_stopping_early_ends_the_parsing_process(system, settings, monkeypatch):
    """The database refuses the third batch while the parsing process is still ahead: it is killed and reaped."""
    from django.db import DataError

    from governance.findings.ingest import postgres

    settings.RAMPART_IMPORT_BATCH = 5
    results = [sarif_result(i) for i in range(200)]
    calls, insert = [], postgres.PostgresStore.insert

    def refusing(self, rows):
        calls.append(1)
        if len(calls) == 3:
            raise DataError("value too long for type character varying(60)")
        return insert(self, rows)

    monkeypatch.setattr(postgres.PostgresStore, "insert", refusing)
    before = children()
    run = run_import(sarif_bytes(results), system=system)
    assert run.status == ImportRun.Status.FAILED and "cannot store" in run.error
    assert not Finding.objects.filter(system=system).exists()
    assert children() == before


def test_seen_keys_answer_maybe_once_full(monkeypatch):
    """Memory stays bounded: past its limit the filter stops remembering and every batch gets looked up."""
    monkeypatch.setattr(prepare.SeenKeys, "LIMIT", 3)
    seen = prepare.SeenKeys()
    assert [seen.check_add(k) for k in ("a", "b", "a")] == [False, False, True]
    assert seen.check_add("c") is False  # the third distinct key fills it
    assert seen.check_add("never met") is True
