"""Holds, the sweeper and the start-up pickup (governance/findings/recovery.py) in one process; a second database
session (or a second open of the lock file) stands for another live worker holding a run."""
from __future__ import annotations

import fcntl
import os
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from governance.findings import recovery
from governance.findings.imports import import_run_send
from governance.findings.models import ImportRun
from tests.findings.conftest import create_run, sarif_n

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The messages that would reach the broker: (run id, queue)."""
    messages = []
    monkeypatch.setattr("governance.queueing.send",
                        lambda task, run_id, queue=None: messages.append((run_id, queue)) or True)
    return messages


@pytest.fixture
def other_worker():
    """Another live worker: its own database session, holding runs as import_run_process does."""
    s = connection.settings_dict
    session = psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                              password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True)

    def hold(run_id: int) -> None:
        session.execute("SELECT pg_advisory_lock(%s, %s)", [recovery.HOLD_CLASS, run_id % 2**32 - 2**31])

    yield hold
    session.close()  # its locks end with its session, as with a worker killed -9


def make_run(system, status=ImportRun.Status.QUEUED, *, age: float = 0, sent_ago: float | None = None) -> ImportRun:
    run = create_run(sarif_n(3), system=system, source=f"s{ImportRun.objects.count()}")
    now = timezone.now()
    ImportRun.objects.filter(pk=run.pk).update(
        status=status, created_at=now - timedelta(seconds=age), attempts=int(status == ImportRun.Status.RUNNING),
        lease_until=now + timedelta(hours=1) if status == ImportRun.Status.RUNNING else None,
        enqueued_at=None if sent_ago is None else now - timedelta(seconds=sent_ago))
    return ImportRun.objects.get(pk=run.pk)


def test_a_run_held_by_a_live_worker_is_left_to_it(system, other_worker):
    run = make_run(system, ImportRun.Status.RUNNING)
    other_worker(run.pk)
    assert recovery.import_run_process(run.pk) == "held"
    assert ImportRun.objects.get(pk=run.pk).attempts == 1


def test_a_running_run_nobody_holds_is_taken_over_at_once_despite_its_lease(system):
    run = make_run(system, ImportRun.Status.RUNNING)  # its lease runs for another hour: its worker died
    assert recovery.import_run_process(run.pk) == ImportRun.Status.DONE
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.attempts == 2 and run.counts["created"] == 3
    assert recovery.import_run_process(run.pk) == "skipped"  # a late duplicate message does nothing


def test_the_sweeper_sends_a_missing_message_once(system, sent, other_worker):
    never_sent = make_run(system, age=3)  # stored while the broker was down
    just_created = make_run(system, age=0)  # its creator is sending it
    on_its_way = make_run(system, age=300, sent_ago=300)  # in the queue behind others: not lost
    lost = make_run(system, age=5000, sent_ago=4000)  # older than the visibility timeout (3600 s)
    orphan = make_run(system, ImportRun.Status.RUNNING, age=600, sent_ago=600)
    held = make_run(system, ImportRun.Status.RUNNING, age=600, sent_ago=600)
    other_worker(held.pk)

    assert sorted(recovery.imports_resend_missing()) == sorted([never_sent.pk, lost.pk, orphan.pk])
    assert {pk for pk, _ in sent} == {never_sent.pk, lost.pk, orphan.pk}
    for _ in range(3):  # beat ticking on, or sweeper messages piled up while no worker ran
        assert recovery.imports_resend_missing() == []
    # two minutes on: the orphan's message has not brought a worker to it (sent again once a minute at most), and
    # the run whose creator was sending it was never sent after all
    later = recovery.imports_resend_missing(now=timezone.now() + timedelta(minutes=2))
    assert sorted(later) == sorted([orphan.pk, just_created.pk])
    assert on_its_way.pk not in {pk for pk, _ in sent} and held.pk not in {pk for pk, _ in sent}


def test_a_failed_send_leaves_the_run_for_the_sweeper(system, queued):
    run = make_run(system, age=60)
    queued.down = True
    assert import_run_send(run.pk) is False
    assert ImportRun.objects.get(pk=run.pk).enqueued_at is None
    assert recovery.imports_resend_missing() == []  # still down: nothing sent
    queued.down = False
    assert recovery.imports_resend_missing() == [run.pk]
    assert ImportRun.objects.get(pk=run.pk).enqueued_at is not None


def test_start_up_sends_interrupted_and_queued_runs_to_its_own_queue(system, sent, other_worker):
    started_at = timezone.now()
    interrupted = make_run(system, ImportRun.Status.RUNNING, age=30, sent_ago=30)
    held = make_run(system, ImportRun.Status.RUNNING, age=30, sent_ago=30)
    other_worker(held.pk)
    queued = make_run(system, age=5, sent_ago=5)  # may have been fetched by the worker that died
    done = make_run(system, ImportRun.Status.DONE, age=30, sent_ago=30)
    ids = recovery.imports_resume_interrupted(started_at=started_at + timedelta(seconds=1), queue="own")
    assert sorted(ids) == sorted([interrupted.pk, queued.pk])
    assert sorted(sent) == sorted([(interrupted.pk, "own"), (queued.pk, "own")])
    assert done.pk not in ids


def test_on_sqlite_a_run_is_held_by_a_file_lock(system, settings, tmp_path, monkeypatch):
    """The embedded default: a lock file per run under RAMPART_VAR_DIR/holds; another open of it is another
    process (flock locks belong to the open file), and the lock ends with the file's last descriptor."""
    run = make_run(system, ImportRun.Status.RUNNING)

    def execute(run_id):  # the import itself is not what this is about (and needs the real vendor)
        ImportRun.objects.filter(pk=run_id).update(status=ImportRun.Status.DONE)
        return ImportRun.objects.get(pk=run_id)

    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(connection, "vendor", "sqlite")
    monkeypatch.setattr(recovery, "import_run_execute", execute)
    path = tmp_path / "holds" / f"import-{run.pk}.lock"
    with recovery.import_run_hold(run.pk) as held:
        assert held and path.exists()
        with recovery.import_run_hold(run.pk) as again:
            assert not again
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live worker
    try:
        assert recovery.import_run_process(run.pk) == "held"
    finally:
        os.close(fd)  # it dies
    assert recovery.import_run_process(run.pk) == ImportRun.Status.DONE
    assert not path.exists()  # a finished run's lock file is removed
