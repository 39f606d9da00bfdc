"""Scheduled pull sources: every write is audited here. The pulling itself lives in pull.py."""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import OuterRef, Subquery

from governance import queueing
from governance.audit.services import audit_record, snapshot
from governance.findings.models import ImportRun, PullSource
from governance.findings.pull import check_location, next_due

log = logging.getLogger(__name__)

FIELDS = ["name", "kind", "location", "format", "system", "every_minutes", "enabled"]
SCOPE_FIELDS = {"name", "kind", "location", "format", "system_id"}  # a change means: import again even if unchanged


def source_rows() -> list[PullSource]:
    """Every source with its system, its latest import run (id, status) and when it is next due: one query."""
    latest = ImportRun.objects.filter(pull_source=OuterRef("pk")).order_by("-created_at", "-pk")
    rows = list(PullSource.objects.select_related("system").annotate(
        last_run_id=Subquery(latest.values("pk")[:1]), last_run_status=Subquery(latest.values("status")[:1])))
    for row in rows:
        row.next_due = next_due(row)
    return rows


def _view(source: PullSource) -> dict:
    return snapshot(source, FIELDS)


@transaction.atomic
def source_save(*, actor, source: PullSource | None = None, data: dict) -> PullSource:
    """Create or update. The location is checked again here (raises PullError): the form's check may be stale."""
    source = source or PullSource()
    before = _view(source) if source.pk else None
    for key, value in data.items():
        setattr(source, key, value)
    check_location(source.kind, source.location)
    after = _view(source)
    if before and any(before.get(k) != after.get(k) for k in SCOPE_FIELDS):
        source.last_sha256 = ""  # another place or scope: the next pull imports whatever it finds
    source.save()
    audit_record(actor=actor, action="pull_source.update" if before else "pull_source.create", obj=source,
                 system=source.system, before=before, after=after)
    return source


@transaction.atomic
def source_set_enabled(*, actor, source: PullSource, enabled: bool) -> PullSource:
    before = _view(source)
    source.enabled = enabled
    source.save(update_fields=["enabled"])
    audit_record(actor=actor, action="pull_source.enable" if enabled else "pull_source.disable", obj=source,
                 system=source.system, before=before, after=_view(source))
    return source


@transaction.atomic
def source_delete(*, actor, source: PullSource) -> None:
    """Its import runs and findings stay; the runs just lose the link to the source."""
    audit_record(actor=actor, action="pull_source.delete", obj=source, system=source.system, before=_view(source))
    source.delete()


def source_pull_request(*, actor, source: PullSource) -> bool:
    """Send a pull of this one source to the worker. False when the broker is unreachable (nothing is sent; the
    schedule tries again)."""
    if not queueing.send("source_pull", source.pk):
        return False
    with transaction.atomic():
        audit_record(actor=actor, action="pull_source.pull_now", obj=source, system=source.system)
    return True
