"""Store a report and queue its import. Nothing is parsed here: the worker does that."""
from __future__ import annotations

import hashlib
import logging
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from governance import queueing
from governance.audit.services import audit_record
from governance.findings.models import ImportRun
from worker.scanners import FORMATS

log = logging.getLogger(__name__)
FORMAT_CHOICES = ["auto", *sorted(FORMATS)]


class IntakeError(ValueError):
    """The request itself is wrong (unknown format, missing file): nothing was stored."""


def _hash_stream(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def default_source(fmt: str) -> str:
    return "" if fmt == "auto" else fmt  # "": named by the worker once it knows the format


def import_run_create(*, actor, stream: BinaryIO, filename: str, fmt: str, system=None, source: str = "",
                      repository: str = "", via: str = ImportRun.Via.UPLOAD, pull_source=None) -> ImportRun:
    """Store the report with its sha256 and enqueue it. An oversized report is kept as a failed run, unstored.

    The source names the feed (its findings' scope with the system). Not given, it is the format; with
    format "auto" the worker names it after the format it detects (ingest._named_source), so a gitleaks report
    and a SARIF report uploaded to one system never replace each other's findings."""
    if fmt not in FORMAT_CHOICES:
        raise IntakeError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMAT_CHOICES)}.")
    sha256, size = _hash_stream(stream)
    cap = settings.RAMPART_MAX_REPORT_BYTES
    run = ImportRun(
        system=system, source=(source.strip() or default_source(fmt))[:100], format=fmt, repository=repository[:300], via=via,
        filename=filename[-255:], size=size, sha256=sha256, created_by=actor if getattr(actor, "pk", None) else None,
        pull_source=pull_source,
    )
    if size == 0:
        run.status, run.error = ImportRun.Status.FAILED, "The report is empty (0 bytes)."
    elif size > cap:
        run.status = ImportRun.Status.FAILED
        run.error = f"The report is {size / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB (RAMPART_MAX_REPORT_BYTES)."
    else:
        run.report.save(filename or "report", File(stream), save=False)
    if run.status == ImportRun.Status.FAILED:
        run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        audit_record(actor=actor, action="import.create", obj=run, system=system,
                     after={"source": run.source, "format": fmt, "sha256": sha256, "size": size, "status": run.status})
        if run.status == ImportRun.Status.QUEUED:
            transaction.on_commit(lambda: enqueue(run.pk))
    return run


def enqueue(run_id: int, *, queue: str | None = None) -> bool:
    """Send the run to the worker (to `queue`, else the default one). If the broker is down the run stays queued
    and beat resends it.

    `enqueued_at` is set before the message leaves (once a worker has the run, its import may lock the row) and
    cleared again if it could not be sent: the sweeper (governance/findings/recovery.py) resends only those."""
    sent_at = timezone.now()
    ImportRun.objects.filter(pk=run_id).update(enqueued_at=sent_at)
    if queueing.send("process_import", run_id, queue=queue):
        return True
    ImportRun.objects.filter(pk=run_id, enqueued_at=sent_at).update(enqueued_at=None)  # the sweeper resends it
    return False
