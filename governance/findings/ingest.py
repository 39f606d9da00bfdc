"""Run an import in the worker: parse the stored report, upsert findings in batches, close what vanished.

One import is one database transaction: a crash, a kill -9 or a bad line halfway rolls everything back,
and the rerun (acks_late redelivery or the stale-run sweeper) produces exactly the same result.
Imports of the same scope are serialised by an advisory lock, so two at once cannot create duplicates.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from governance.audit.services import audit_record
from governance.findings.models import (
    HUMAN_DECISIONS, SEVERITY_RANK, Finding, FindingState, FindingTransition, ImportRun, MappingRule,
)
from governance.findings.prefetch import Prefetch, short_gil_slices
from governance.findings.sla import sla_due
from worker.scanners import FORMATS, ParseError, Record, detect
from worker.scanners._common import HEAD_SIZE

UPDATED_FIELDS = [
    "title", "severity", "severity_rank", "tool_severity", "rule_id", "location", "artifact", "package", "line",
    "description", "remediation", "raw", "content_hash", "last_seen", "last_import", "fingerprint_version",
]
REOPEN_FROM = (FindingState.CLOSED, FindingState.FIXED)
MAX_ATTEMPTS = 5
log = logging.getLogger(__name__)


def lease() -> timedelta:
    """How long a worker owns a running import without renewing it (renewed after every batch)."""
    return timedelta(seconds=settings.RAMPART_IMPORT_LEASE_SECONDS)


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    reopened: int = 0
    routed: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "closed": self.closed, "reopened": self.reopened}


def import_run_claim(run_id: int) -> bool:
    """Take the run if it is queued, or running with an expired lease (its worker died)."""
    now = timezone.now()
    claimable = Q(status=ImportRun.Status.QUEUED) | Q(status=ImportRun.Status.RUNNING, lease_until__lt=now)
    return bool(ImportRun.objects.filter(claimable, pk=run_id).update(
        status=ImportRun.Status.RUNNING, started_at=now, lease_until=now + lease(), attempts=F("attempts") + 1,
    ))





def import_run_execute(run_id: int) -> ImportRun | None:
    """Entry point for the worker task. Returns the finished run, or None if another worker has it."""
    if not import_run_claim(run_id):
        return None
    run = ImportRun.objects.select_related("system").get(pk=run_id)
    if run.attempts > MAX_ATTEMPTS:
        _fail(run, f"Gave up after {MAX_ATTEMPTS} attempts: the worker kept stopping during this import.")
        return run
    try:
        with transaction.atomic():
            counts = _ingest(run)
            run.status, run.error, run.counts = ImportRun.Status.DONE, "", counts.as_dict()
            run.finished_at, run.lease_until = timezone.now(), None
            run.save(update_fields=["status", "error", "counts", "finished_at", "lease_until", "detected_format"])
            audit_record(actor=None, action="import.done", obj=run, system=run.system, after=run.counts)
    except ParseError as exc:
        _fail(run, f"The report could not be read: {exc}")
    except RecursionError:
        _fail(run, "The report is nested too deeply to be a scanner report.")
    except MemoryError:
        _fail(run, "The report needs too much memory to parse.")
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: the task retries, the lease lets another worker take over
    except DataError as exc:  # e.g. NUL characters, which PostgreSQL text and jsonb refuse
        _fail(run, f"The report holds data the database cannot store: {exc}")
    except Exception as exc:  # never leave a run RUNNING on a bug: say why it stopped
        log.exception("Import %s failed", run.pk)
        _fail(run, f"The import stopped on an unexpected error ({type(exc).__name__}: {str(exc)[:300]}).")
    _discard_if_secret(run)
    return run


SECRET_FORMATS = {"gitleaks", "trufflehog"}


def _discard_if_secret(run: ImportRun) -> None:
    """Secret scanners' reports hold the secrets themselves: once imported, keep only the sha256, not the file."""
    if (run.detected_format or run.format) not in SECRET_FORMATS or not run.report:
        return
    run.report.delete(save=False)
    ImportRun.objects.filter(pk=run.pk).update(report="", report_discarded=True)
    run.report_discarded = True


def _fail(run: ImportRun, message: str) -> None:
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.FAILED, error=message[:2000], finished_at=timezone.now(), lease_until=None, counts={},
    )
    run.status, run.error = ImportRun.Status.FAILED, message


def _lock_scope(run: ImportRun, router: "Router") -> None:
    """Serialise imports per scope; a routed run locks every scope it may write (sorted: no deadlock)."""
    lock_scopes(router.scope_keys())


def lock_scopes(scope_keys) -> None:
    """Take the transaction-long lock of each scope: whoever adds findings to a scope holds it (new rows are
    COPYed without ON CONFLICT, so two writers of one scope must never overlap)."""
    if connection.vendor == "postgresql":
        for key in sorted({zlib.crc32(k.encode()) for k in scope_keys}):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7331, key - 2**31])


def _ingest(run: ImportRun) -> Counts:
    router = Router(run)
    _lock_scope(run, router)
    counts, now = Counts(), timezone.now()
    with run.report.open("rb") as stream:
        fmt = run.format
        if fmt == "auto":
            fmt = detect(stream.read(HEAD_SIZE))
            stream.seek(0)
        run.detected_format = fmt
        version = f"{fmt}/v{FORMATS[fmt].FINGERPRINT_VERSION}"
        records = FORMATS[fmt].parse(stream)
        batch_size = settings.RAMPART_IMPORT_BATCH
        prepare = _Preparer(run, version, router, now)
        batches = (prepare(batch) for batch in iter(lambda: list(islice(records, batch_size)), []))
        with Prefetch(batches) as prepared, short_gil_slices():  # parsing overlaps the database's work
            for batch in prepared:
                _write_batch(run, batch, counts, now)  # also renews the lease
    _close_vanished(run, router, counts, now)
    return counts


def content_hash(r: Record) -> str:
    body = json.dumps([r.title, r.severity, r.tool_severity, r.rule_id, r.location, r.description,
                       r.remediation, r.artifact, r.package, r.line], separators=(",", ":"))
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


class Router:
    """A finding goes to the run's system, else to the first system whose mapping rule matches."""

    def __init__(self, run: ImportRun):
        self.run = run
        self.rules = [] if run.system_id else list(MappingRule.objects.order_by("system_id", "id"))

    def scope_keys(self) -> list[str]:
        """The scopes this run reconciles: its system's, or the unassigned queue and every system with rules."""
        if self.run.system_id:
            return [scope_key(self.run.system_id, self.run.source)]
        systems = {None, *(rule.system_id for rule in self.rules)}
        return [scope_key(s, self.run.source) for s in systems]

    def system_for(self, r: Record) -> int | None:
        if self.run.system_id:
            return self.run.system_id
        for rule in self.rules:
            if rule.kind == MappingRule.Kind.ARTIFACT_GLOB and fnmatch.fnmatchcase(r.artifact or r.location, rule.pattern):
                return rule.system_id
            if rule.kind == MappingRule.Kind.MODEL_NAME and rule.pattern.lower() in (r.artifact or r.location).lower():
                return rule.system_id
            if rule.kind == MappingRule.Kind.REPOSITORY and self.run.repository and fnmatch.fnmatchcase(self.run.repository, rule.pattern):
                return rule.system_id
        return None


def scope_key(system_id: int | None, source: str) -> str:
    return f"{system_id or 'unassigned'}:{source}"


def _upsert_batch(run, batch: list[Record], version: str, router: Router, counts: Counts, now) -> None:
    """Upsert one batch of records (the same fingerprint twice in a batch: the last one wins)."""
    _write_batch(run, _Preparer(run, version, router, now)(batch), counts, now)


@dataclass
class _Batch:
    records: dict  # (scope_key, fingerprint) -> Record
    hashes: dict  # (scope_key, fingerprint) -> content hash
    version: str  # fingerprint version
    preparer: "_Preparer | None" = None  # PostgreSQL: builds a row for COPY or UPDATE (only those are needed)


class _Preparer:
    """The CPU side of a batch, safe to run in another thread: routing and content hashes."""

    def __init__(self, run: ImportRun, version: str, router: Router, now):
        self.run, self.version, self.router, self.now = run, version, router, now
        self.postgresql = connection.vendor == "postgresql"
        self.sla = _sla_by_severity(now)

    def __call__(self, batch: list[Record]) -> _Batch:
        source, run = self.run.source, self.run
        records: dict[tuple[str, str], Record] = {}
        if run.system_id:
            key = scope_key(run.system_id, source)
            for r in batch:
                records[(key, r.fingerprint)] = r
        else:
            for r in batch:
                records[(scope_key(self.router.system_for(r), source), r.fingerprint)] = r
        hashes = {key: content_hash(r) for key, r in records.items()}
        return _Batch(records, hashes, self.version, self if self.postgresql else None)

    def row(self, batch: _Batch, key: tuple[str, str]) -> tuple:
        """The finding as a tuple in _COPY_COLUMNS order (built only for new and changed rows)."""
        r, digest, now = batch.records[key], batch.hashes[key], self.now
        return (key[0], _system_of(key[0]), self.run.source, r.tool[:60], r.fingerprint, self.version, digest,
                r.title[:500], r.severity, SEVERITY_RANK[r.severity], r.tool_severity[:60], r.rule_id[:300],
                r.location[:1000], r.artifact[:1000], r.package[:300], r.line, r.description, r.remediation,
                _raw_json(r.raw), FindingState.NEW, now, now, now, self.sla[r.severity], self.run.pk)


def _write_batch(run, batch: _Batch, counts: Counts, now) -> None:
    """Three queries whatever the batch size: read the batch's existing rows, write the new ones, update the
    ones already there (PostgreSQL: COPY + one UPDATE that also renews the lease; SQLite: one upsert + lease)."""
    existing = _existing(batch.records.keys())
    new_keys, changed, unchanged_ids, reopen_ids = [], [], [], []
    for key, digest in batch.hashes.items():
        old = existing.get(key)
        if old is None:
            counts.created += 1
            new_keys.append(key)
            continue
        if old["last_import_id"] == run.pk:
            pass  # the same fingerprint twice in one report: counted once, the last one wins
        elif old["state"] in REOPEN_FROM:
            counts.reopened += 1
            reopen_ids.append(old["id"])
        elif old["content_hash"] != digest:
            counts.updated += 1
        else:
            counts.unchanged += 1
            unchanged_ids.append(old["id"])
            continue
        changed.append((key, old["id"]))
    if batch.preparer is not None:
        _write_postgresql(run, batch, new_keys, changed, unchanged_ids, now)
    else:
        _upsert_orm(run, batch, now)
        ImportRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() + lease())
    if reopen_ids:
        _transition_many(reopen_ids, FindingState.NEW, run, "Reported again by the scanner: reopened.", now)


def _sla_by_severity(now) -> dict[str, object]:
    return {severity: sla_due(severity, now.date()) for severity in SEVERITY_RANK}


def _raw_json(raw) -> str:
    text = getattr(raw, "json", None)  # worker.scanners._common.RawEntry carries its JSON text
    if text is None:
        text = json.dumps(raw, default=str, separators=(",", ":"))
    _refuse_nul(text)
    return text


def _refuse_nul(json_text: str) -> None:
    """PostgreSQL text and jsonb refuse NUL: say so before the database answers less clearly."""
    if "\\u0000" in json_text and _JSON_NUL.search(json_text):
        raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")


def _upsert_orm(run, batch: _Batch, now) -> None:
    """Portable path (the embedded SQLite default): bulk_create with ON CONFLICT DO UPDATE."""
    sla, hashes, version = _sla_by_severity(now), batch.hashes, batch.version
    rows = [
        Finding(
            scope_key=key[0], system_id=_system_of(key[0]), source=run.source, tool=r.tool[:60],
            fingerprint=r.fingerprint, fingerprint_version=version, content_hash=hashes[key], title=r.title[:500],
            severity=r.severity, severity_rank=SEVERITY_RANK[r.severity], tool_severity=r.tool_severity[:60],
            rule_id=r.rule_id[:300], location=r.location[:1000], artifact=r.artifact[:1000], package=r.package[:300],
            line=r.line, description=r.description, remediation=r.remediation, raw=r.raw, state=FindingState.NEW,
            first_seen=now, last_seen=now, state_changed_at=now, sla_due=sla[r.severity], last_import=run,
        )
        for key, r in batch.records.items()
    ]
    Finding.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["scope_key", "fingerprint"], update_fields=UPDATED_FIELDS,
    )


def _system_of(key: str) -> int | None:
    system = key.split(":", 1)[0]
    return None if system == "unassigned" else int(system)


# PostgreSQL: new rows go in with COPY (psycopg formats them in C; no SQL to parse, no ON CONFLICT probe: the
# scope's advisory lock means nobody else inserts these keys, and the unique constraint still guards it).
# Rows already there are updated by id in one statement; unchanged ones only get last_seen/last_import, which
# no index covers, so with the table's free space (fillfactor) they are HOT updates that touch no index.
_COPY_COLUMNS = (
    "scope_key", "system_id", "source", "tool", "fingerprint", "fingerprint_version", "content_hash", "title",
    "severity", "severity_rank", "tool_severity", "rule_id", "location", "artifact", "package", "line",
    "description", "remediation", "raw", "state", "first_seen", "last_seen", "state_changed_at", "sla_due",
    "last_import_id",
)
# the columns a changed row gets from the report (state and first_seen stay; reopening is a transition)
_CHANGED_COLUMNS = (
    ("tool", "text"), ("fingerprint_version", "text"), ("content_hash", "text"), ("title", "text"),
    ("severity", "text"), ("severity_rank", "smallint"), ("tool_severity", "text"), ("rule_id", "text"),
    ("location", "text"), ("artifact", "text"), ("package", "text"), ("line", "integer"),
    ("description", "text"), ("remediation", "text"), ("raw", "text"),
)
_PG_UPDATE = """
WITH seen_again AS (UPDATE {findings} SET last_seen = %(now)s, last_import_id = %(run)s
                    WHERE id = ANY(string_to_array(%(unchanged)s, ',')::bigint[])),
     lease AS (UPDATE {runs} SET lease_until = %(lease)s WHERE id = %(run)s)
UPDATE {findings} AS f SET {assignments}, last_seen = %(now)s, last_import_id = %(run)s
FROM json_to_recordset(%(changed)s::json) AS b(id bigint, {definitions})
WHERE f.id = b.id
"""
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash + "u0000"


def _pg_update_sql() -> str:
    quote = connection.ops.quote_name
    return _PG_UPDATE.format(
        findings=quote(Finding._meta.db_table), runs=quote(ImportRun._meta.db_table),
        assignments=", ".join(f"{quote(name)} = b.{name}" + ("::jsonb" if name == "raw" else "")
                              for name, _ in _CHANGED_COLUMNS),
        definitions=", ".join(f"{name} {kind}" for name, kind in _CHANGED_COLUMNS),
    )


def _server_bound_cursor():
    """A cursor on the same connection (and transaction) that sends parameters separately from the SQL.

    Django's default psycopg cursor binds client-side: a 3 MB JSON parameter would be escaped into the SQL text
    in Python and parsed back as a literal by PostgreSQL. Wrapped like any Django cursor, so queries are logged
    and counted the same way.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def _write_postgresql(run, batch: _Batch, new_keys: list, changed: list, unchanged_ids: list[int], now) -> None:
    _copy_new(batch, new_keys)
    columns = [name for name, _ in _CHANGED_COLUMNS]
    position = {name: _COPY_COLUMNS.index(name) for name in columns}
    rows = []
    for key, pk in changed:
        row = batch.preparer.row(batch, key)
        rows.append({"id": pk, **{name: row[position[name]] for name in columns}})
    payload = json.dumps(rows, separators=(",", ":"), default=str)
    _refuse_nul(payload)
    with _server_bound_cursor() as cursor:
        cursor.execute(_pg_update_sql(), {
            "now": now, "run": run.pk, "unchanged": ",".join(map(str, unchanged_ids)),
            "lease": timezone.now() + lease(), "changed": payload,
        })


def _copy_new(batch: _Batch, keys: list) -> None:
    """COPY the batch's new rows into the findings table; logged like any query (the query-count tests see it)."""
    sql = (f"COPY {connection.ops.quote_name(Finding._meta.db_table)} ({', '.join(_COPY_COLUMNS)}) FROM STDIN")
    started = time.monotonic()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        with cursor.copy(sql) as copy:
            row = batch.preparer.row
            for key in keys:
                copy.write_row(row(batch, key))
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{sql} -- {len(keys)} rows", "time": f"{time.monotonic() - started:.3f}"})


def _existing(keys) -> dict[tuple[str, str], dict]:
    """The batch's rows already in the database, by (scope_key, fingerprint): one query."""
    by_scope: dict[str, list[str]] = {}
    for scope, fp in keys:
        by_scope.setdefault(scope, []).append(fp)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Finding._meta.db_table)
        # per scope, "fingerprint = ANY(array)": PostgreSQL sorts the array and walks the unique index in order
        # (a join on a list of pairs probes it once per key, at random: ~3x slower once it no longer fits in memory)
        match = " OR ".join(["(f.scope_key = %s AND f.fingerprint = ANY(ARRAY(SELECT json_array_elements_text(%s::json))))"]
                            * len(by_scope))
        params = [value for scope, fps in by_scope.items() for value in (scope, json.dumps(fps))]
        with _server_bound_cursor() as cursor:
            cursor.execute(
                f"SELECT f.id, f.scope_key, f.fingerprint, f.state, f.content_hash, f.last_import_id FROM {table} f"
                f" WHERE {match or 'false'}", params,
            )
            return {(row[1], row[2]): {"id": row[0], "state": row[3], "content_hash": row[4],
                                       "last_import_id": row[5]} for row in cursor.fetchall()}
    query = Q()
    for scope, fps in by_scope.items():
        query |= Q(scope_key=scope, fingerprint__in=fps)
    rows = Finding.objects.filter(query).values("id", "scope_key", "fingerprint", "state", "content_hash", "last_import_id")
    return {(r["scope_key"], r["fingerprint"]): r for r in rows}


def _close_vanished(run: ImportRun, router: Router, counts: Counts, now) -> None:
    """Findings of this scope that the report no longer contains are closed, unless a human decided them."""
    scope = Finding.objects.filter(scope_key__in=router.scope_keys()).exclude(last_import=run)
    vanished = scope.exclude(state__in=(*HUMAN_DECISIONS, *REOPEN_FROM))
    ids = list(vanished.values_list("id", flat=True))
    if ids:
        _transition_many(ids, FindingState.CLOSED, run, "No longer reported by the scanner.", now)
        counts.closed = len(ids)


def _transition_many(ids: list[int], to_state: str, run: ImportRun, reason: str, now) -> None:
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        before = dict(Finding.objects.filter(pk__in=chunk).values_list("id", "state"))
        Finding.objects.filter(pk__in=chunk).update(state=to_state, state_changed_at=now)
        FindingTransition.objects.bulk_create([
            FindingTransition(finding_id=i, from_state=before.get(i, ""), to_state=to_state, at=now,
                              reason=reason, import_run=run)
            for i in chunk
        ])
