"""Imports whose worker died or whose message never reached a worker: who holds a run, and what to send again.

A process executes an import only while it holds the run (`import_run_hold`): a PostgreSQL session advisory lock,
or on SQLite a file lock under RAMPART_VAR_DIR/holds. Either dies with its process, kill -9 included, so a RUNNING
run that nobody holds was interrupted: a restarted worker sends it again at start-up, the sweeper whenever it
runs, and the next holder takes it over at once instead of waiting for its lease. The lease
(RAMPART_IMPORT_LEASE_SECONDS) still keeps two live workers apart.

`enqueued_at` records when a run's message last reached the broker, so a run is sent again only when its message
is missing (never sent: the broker was down; or sent longer ago than the broker keeps an unacknowledged message),
at most once per grace period, however often the sweeper runs.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from governance.findings.imports import import_run_execute
from governance.findings.imports import import_run_send
from governance.findings.models import ImportRun

HOLD_CLASS = 7332  # advisory lock class of "a process executes this import" (7331: ingest's scope locks)
SEND_GRACE = timedelta(seconds=2)  # a run created this recently is still being sent by whoever created it
RESEND_GRACE = timedelta(minutes=1)  # a run sent (again) this recently still has its message on the way
FINISHED = (ImportRun.Status.DONE, ImportRun.Status.FAILED)


def _hold_file(run_id: int) -> Path:
    folder = Path(settings.VAR_DIR) / "holds"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"import-{run_id}.lock"


@contextmanager
def import_run_hold(run_id: int) -> Iterator[bool]:
    """Hold the run for as long as the block runs; yields False (and holds nothing) if another process holds it."""
    if connection.vendor == "postgresql":
        key = run_id % 2**32 - 2**31  # two int4 keys; ids past 2^32 may share a key, which only makes holds stricter
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [HOLD_CLASS, key])
            held = cursor.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [HOLD_CLASS, key])
                except DatabaseError:  # the session is gone, and its lock with it
                    pass
        return
    path = _hold_file(run_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        yield held
        if held and ImportRun.objects.filter(pk=run_id, status__in=FINISHED).exists():
            path.unlink(missing_ok=True)  # a finished run is never claimed again: nobody needs its file
    finally:
        os.close(fd)


def import_run_process(run_id: int) -> str:
    """What the worker's task runs: hold the run, take it over if the worker that ran it died, execute it."""
    with import_run_hold(run_id) as held:
        if not held:
            return "held"  # another live process executes it
        # RUNNING and nobody held it: its worker died (or its attempt failed over to a retry). Claimable now.
        ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.RUNNING).update(
            lease_until=timezone.now() - timedelta(seconds=1))
        run = import_run_execute(run_id)
        return run.status if run else "skipped"


def _held_elsewhere(run_id: int) -> bool:
    with import_run_hold(run_id) as held:
        return not held


def _send(ids: list[int], queue: str | None = None) -> list[int]:
    return [run_id for run_id in ids if import_run_send(run_id, queue=queue)]


def imports_resend_missing(*, now: datetime | None = None, queue: str | None = None, limit: int = 100) -> list[int]:
    """The sweeper (beat, every minute; and a worker each time it reconnects to the broker): send again the runs
    whose message is missing. Returns the ids sent."""
    now = now or timezone.now()
    redeliver = timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600))
    queued = Q(status=ImportRun.Status.QUEUED) & (
        Q(enqueued_at__isnull=True, created_at__lt=now - SEND_GRACE) | Q(enqueued_at__lt=now - redeliver))
    running = Q(status=ImportRun.Status.RUNNING, lease_until__isnull=False) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - RESEND_GRACE))
    ids = list(ImportRun.objects.filter(queued | running).order_by("created_at").values_list("id", "status")[:limit])
    return _send([pk for pk, status in ids if status == ImportRun.Status.QUEUED or not _held_elsewhere(pk)], queue)


def imports_resume_interrupted(*, started_at: datetime, queue: str | None = None, limit: int = 1000) -> list[int]:
    """A worker's start-up: send again the imports a dead worker left running (nobody holds them), and the queued
    runs queued before it started, whose message may have died with a worker that had fetched it (Redis hands it
    out again only after the visibility timeout; the embedded broker never). A run whose message was not lost gets
    one extra message per restart, which finds the run taken or done and does nothing. `queue`: the one the
    starting worker consumes (else the default)."""
    running = list(ImportRun.objects.filter(status=ImportRun.Status.RUNNING, lease_until__isnull=False)
                   .order_by("created_at").values_list("id", flat=True)[:limit])
    queued = list(ImportRun.objects.filter(status=ImportRun.Status.QUEUED, created_at__lt=started_at)
                  .order_by("created_at").values_list("id", flat=True)[:limit])
    return _send([pk for pk in running if not _held_elsewhere(pk)] + queued, queue)
