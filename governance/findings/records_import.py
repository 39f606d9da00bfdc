"""Import findings that Rampart itself produces (lineage rules) through the same de-duplicating path."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from governance.audit.services import audit_record
from governance.findings import ingest
from governance.findings.models import ImportRun
from worker.scanners.base import Record


@transaction.atomic
def records_import(*, system, source: str, records: Iterable[Record], version: str) -> ImportRun:
    """One run for one scope: upsert the records, close what the rules no longer report."""
    now = timezone.now()
    run = ImportRun.objects.create(system=system, source=source, format="rampart", detected_format="rampart",
                                   via=ImportRun.Via.LINEAGE, status=ImportRun.Status.RUNNING, started_at=now)
    router = ingest.Router(run)
    ingest.lock_scopes(router.scope_keys())
    counts = ingest.Counts()
    ingest.records_write(run, list(records), version, router, counts, now)
    run.status, run.counts, run.finished_at, run.lease_until = ImportRun.Status.DONE, counts.as_dict(), timezone.now(), None
    run.save(update_fields=["status", "counts", "finished_at", "lease_until"])
    audit_record(actor=None, action="import.done", obj=run, system=system, after=run.counts)
    return run
