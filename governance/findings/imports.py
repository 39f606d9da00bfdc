"""Import runs: a report stored and queued (import_run_create), then run by the worker (import_run_execute);
findings of Rampart's own lineage rules imported as a run (records_import). Both write through
governance.findings.ingest.findings_write.

One import is one database transaction: a crash, a kill -9 or a bad line halfway rolls everything back, and the
rerun (acks_late redelivery or the stale-run sweeper) produces exactly the same result. Imports of the same scope
are serialised by an advisory lock, so two at once cannot create duplicates."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import File
from django.db import DataError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from governance import queueing
from governance.audit.services import audit_record
from governance.findings.ingest import Counts, ParserLost, findings_write
from governance.findings.models import ImportRun
from worker.scanners import FORMATS, LABELS, ParseError, Record, detect, format_name
from worker.scanners._common import HEAD_SIZE

log = logging.getLogger(__name__)
FORMAT_CHOICES = ["auto", *sorted(FORMATS)]
FORMAT_LABELS = [("auto", "auto (detect)"), *((f, LABELS.get(f, f)) for f in sorted(FORMATS))]


MAX_ATTEMPTS = 5


class ImportRequestError(ValueError):
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
    format "auto" the worker names it after the format it detects (_named_source), so a gitleaks report
    and a SARIF report uploaded to one system never replace each other's findings."""
    fmt = format_name(fmt)
    if fmt not in FORMAT_CHOICES:
        raise ImportRequestError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMAT_CHOICES)}.")
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
            transaction.on_commit(lambda: import_run_send(run.pk))
    return run


def import_run_send(run_id: int, *, queue: str | None = None) -> bool:
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


def import_run_claim(run_id: int) -> bool:
    """Take the run if it is queued, or running with an expired lease (its worker died)."""
    now = timezone.now()
    claimable = Q(status=ImportRun.Status.QUEUED) | Q(status=ImportRun.Status.RUNNING, lease_until__lt=now)
    return bool(ImportRun.objects.filter(claimable, pk=run_id).update(
        status=ImportRun.Status.RUNNING, started_at=now, lease_until=ImportRun.lease_from(now),
        attempts=F("attempts") + 1,
    ))


def import_run_execute(run_id: int) -> ImportRun | None:
    """Entry point for the worker task. Returns the finished run, or None if another worker has it."""
    if not import_run_claim(run_id):
        return None
    run = ImportRun.objects.select_related("system").get(pk=run_id)
    stored = run.report.name
    if run.attempts > MAX_ATTEMPTS:
        _fail(run, f"Gave up after {MAX_ATTEMPTS} attempts: the worker kept stopping during this import.")
        _discard_report(run, stored)
        return run
    try:
        with transaction.atomic():
            counts = _report_write(run)
            run.status, run.error, run.counts = ImportRun.Status.DONE, "", counts.as_dict()
            run.finished_at, run.lease_until = timezone.now(), None
            run.report, run.report_discarded = "", bool(stored)  # the file goes once this commits
            run.save(update_fields=["status", "error", "counts", "finished_at", "lease_until", "detected_format",
                                    "incomplete", "report", "report_discarded"])
            audit_record(actor=None, action="import.done", obj=run, system=run.system, after=run.counts)
    except ParseError as exc:
        _fail(run, f"The report could not be read: {exc}")
    except RecursionError:
        _fail(run, "The report is nested too deeply to be a scanner report.")
    except MemoryError:
        _fail(run, "The report needs too much memory to parse.")
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: the task retries, the lease lets another worker take over
    except ParserLost:
        ImportRun.objects.filter(pk=run.pk).update(lease_until=timezone.now())  # claimable again at once
        raise  # the task retries it (attempts are counted)
    except DataError as exc:  # e.g. NUL characters, which PostgreSQL text refuses
        _fail(run, f"The report holds data the database cannot store: {_data_error(exc)}")
    except Exception as exc:  # never leave a run RUNNING on a bug: say why it stopped
        log.exception("Import %s failed", run.pk)
        _fail(run, f"The import stopped on an unexpected error ({type(exc).__name__}: {str(exc)[:300]}).")
    _discard_report(run, stored)
    return run


def _report_write(run: ImportRun) -> Counts:
    fmt = _named_source(run)
    run.detected_format = fmt
    parser = FORMATS[fmt]
    with run.report.open("rb") as stream:
        return findings_write(run, parser.parse(stream), version=f"{fmt}/v{parser.FINGERPRINT_VERSION}")


def _named_source(run: ImportRun) -> str:
    """The report's format (detected from its head with "auto"); an unnamed feed is named after it."""
    fmt = run.format
    if fmt == "auto":
        with run.report.open("rb") as stream:
            fmt = detect(stream.read(HEAD_SIZE))
    if not run.source:
        run.source = fmt
        ImportRun.objects.filter(pk=run.pk).update(source=fmt)
    return fmt


def _data_error(exc: DataError) -> str:
    text = str(exc).strip()
    if "0x00" in text or "\\u0000" in text:
        return "PostgreSQL text fields cannot contain NUL (0x00) characters."
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _discard_report(run: ImportRun, name: str) -> None:
    """Once an import has ended, done or failed, its file is deleted: a report may hold secrets (a secret scanner's,
    in any format; a password a SAST tool quotes; one a parser could not even recognise), and nothing reads it again.
    What is kept: its name, size and sha256, the counts, and the reason it failed (which never quotes the file). The
    row already says so (the run's final write clears `report`)."""
    if name:
        ImportRun._meta.get_field("report").storage.delete(name)


def _fail(run: ImportRun, message: str) -> None:
    discarded = bool(run.report.name)
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.FAILED, error=message[:2000], finished_at=timezone.now(), lease_until=None, counts={},
        report="", report_discarded=discarded,
    )
    run.status, run.error, run.report, run.report_discarded = ImportRun.Status.FAILED, message, "", discarded


@transaction.atomic
def records_import(*, system, source: str, records: Iterable[Record], version: str) -> ImportRun:
    """Findings Rampart itself produces (lineage rules) as one run of one scope: the records are everything the
    scope holds, so what they no longer include is closed (an empty list too)."""
    now = timezone.now()
    run = ImportRun.objects.create(system=system, source=source, format="rampart", detected_format="rampart",
                                   via=ImportRun.Via.LINEAGE, status=ImportRun.Status.RUNNING, started_at=now)
    counts = findings_write(run, list(records), version=version, now=now, empty_means_clean=True)
    run.status, run.counts, run.finished_at, run.lease_until = ImportRun.Status.DONE, counts.as_dict(), timezone.now(), None
    run.save(update_fields=["status", "counts", "finished_at", "lease_until"])
    audit_record(actor=None, action="import.done", obj=run, system=system, after=run.counts)
    return run
