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
import queue
import re
import threading
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
    if connection.vendor == "postgresql":
        for key in sorted({zlib.crc32(k.encode()) for k in router.scope_keys()}):
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
        with _Prefetch(batches) as prepared:  # parsing overlaps the database's work on the previous batch
            for batch in prepared:
                _write_batch(run, batch, counts, now)
                ImportRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() + lease())
    _close_vanished(run, router, counts, now)
    return counts


class _Prefetch:
    """Run a generator in a thread, at most `depth` items ahead; its exceptions are raised in the caller.

    The thread only parses and encodes (no database access): the import's connection and transaction stay
    in the calling thread. While that thread waits for PostgreSQL (psycopg releases the GIL), the next batch is
    being parsed, so the two cores work at once. Memory stays bounded by `depth` batches.
    """

    _END = object()

    def __init__(self, items, depth: int = 2):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="ingest-parse", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)  # unblock a producer waiting on a full queue
            except queue.Empty:
                pass
        self._thread.join()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # ParseError, RecursionError, MemoryError ... : re-raised in the caller
            self._put((None, exc))

    def __iter__(self):
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item


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
    rows_json: dict | None = None  # PostgreSQL: each row as a JSON object, by key


class _Preparer:
    """The CPU side of a batch, safe to run in another thread: routing, content hashes, JSON encoding."""

    def __init__(self, run: ImportRun, version: str, router: Router, now):
        self.run, self.version, self.router = run, version, router
        self.postgresql = connection.vendor == "postgresql"
        self.sla = _sla_by_severity(now)
        self.sla_text = {severity: (due.isoformat() if due else None) for severity, due in self.sla.items()}

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
        prepared = _Batch(records, hashes, self.version)
        if self.postgresql:
            prepared.rows_json = _pg_rows(records, hashes, self.sla_text)
        return prepared


def _write_batch(run, batch: _Batch, counts: Counts, now) -> None:
    """Three queries whatever the batch size: read the batch's existing rows, upsert it, (renew the lease)."""
    existing = _existing(batch.records.keys())
    reopen_ids, unchanged_ids = [], []
    for key, digest in batch.hashes.items():
        old = existing.get(key)
        if old is None:
            counts.created += 1
        elif old["last_import_id"] == run.pk:
            continue  # the same fingerprint twice in one report: counted once
        elif old["state"] in REOPEN_FROM:
            counts.reopened += 1
            reopen_ids.append(old["id"])
        elif old["content_hash"] != digest:
            counts.updated += 1
        else:
            counts.unchanged += 1
            unchanged_ids.append((key, old["id"]))
    if batch.rows_json is not None:
        _upsert_postgresql(run, batch, unchanged_ids, now)
    else:
        _upsert_orm(run, batch, now)
    if reopen_ids:
        _transition_many(reopen_ids, FindingState.NEW, run, "Reported again by the scanner: reopened.", now)


def _sla_by_severity(now) -> dict[str, object]:
    return {severity: sla_due(severity, now.date()) for severity in SEVERITY_RANK}


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


# PostgreSQL: the whole batch travels as one JSON document (json.dumps runs in C) and is unpacked by
# json_to_recordset; Django's bulk_create would quote every value of every row in Python (its UNNEST
# arrays are dumped element by element), which cost ~10x more than the database work itself.
_PG_COLUMNS = (
    ("scope_key", "text"), ("system_id", "integer"), ("tool", "text"), ("fingerprint", "text"),
    ("content_hash", "text"), ("title", "text"), ("severity", "text"), ("severity_rank", "smallint"),
    ("tool_severity", "text"), ("rule_id", "text"), ("location", "text"), ("artifact", "text"),
    ("package", "text"), ("line", "integer"), ("description", "text"), ("remediation", "text"),
    ("raw", "jsonb"), ("sla_due", "date"),
)
_PG_UPSERT = """
WITH seen_again AS (UPDATE {table} SET last_seen = %s, last_import_id = %s WHERE id = ANY(%s::bigint[]))
INSERT INTO {table} ({columns}, source, fingerprint_version, state, first_seen, last_seen, state_changed_at,
                     last_import_id)
SELECT {values}, %s, %s, %s, %s, %s, %s, %s
FROM json_to_recordset(%s::json) AS b({definitions})
ON CONFLICT (scope_key, fingerprint) DO UPDATE SET {updates}
"""


_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash + "u0000"


def _pg_upsert_sql() -> str:
    table = connection.ops.quote_name(Finding._meta.db_table)
    names = [name for name, _ in _PG_COLUMNS]
    column = {f.name: f.column for f in Finding._meta.concrete_fields}
    return _PG_UPSERT.format(
        table=table,
        columns=", ".join(connection.ops.quote_name(column.get(n.removesuffix("_id"), n)) for n in names),
        values=", ".join(f"b.{n}" for n in names),
        definitions=", ".join(f"{n} {t}" for n, t in _PG_COLUMNS),
        updates=", ".join(f"{q} = EXCLUDED.{q}" for q in (
            connection.ops.quote_name(Finding._meta.get_field(n).column) for n in UPDATED_FIELDS)),
    )


def _pg_rows(records: dict, hashes: dict, sla: dict) -> dict[tuple[str, str], str]:
    dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
    rows = {
        key: dumps({
            "scope_key": key[0], "system_id": _system_of(key[0]), "tool": r.tool[:60], "fingerprint": r.fingerprint,
            "content_hash": hashes[key], "title": r.title[:500], "severity": r.severity,
            "severity_rank": SEVERITY_RANK[r.severity], "tool_severity": r.tool_severity[:60],
            "rule_id": r.rule_id[:300], "location": r.location[:1000], "artifact": r.artifact[:1000],
            "package": r.package[:300], "line": r.line, "description": r.description, "remediation": r.remediation,
            "raw": r.raw, "sla_due": sla[r.severity]})
        for key, r in records.items()
    }
    for text in rows.values():
        if "\\u0000" in text and _JSON_NUL.search(text):  # PostgreSQL text and jsonb refuse NUL
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return rows


def _server_bound_cursor():
    """A cursor on the same connection (and transaction) that sends parameters separately from the SQL.

    Django's default psycopg cursor binds client-side: a 3 MB JSON parameter would be escaped into the SQL text
    in Python and parsed back as a literal by PostgreSQL. Wrapped like any Django cursor, so queries are logged
    and counted the same way.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def _upsert_postgresql(run, batch: _Batch, unchanged: list[tuple[tuple[str, str], int]], now) -> None:
    """One statement: rows whose content is unchanged only get last_seen/last_import (their JSON is not even
    sent); new, changed, reopened and repeated rows are upserted in full."""
    skip = {key for key, _ in unchanged}
    payload = "[" + ",".join(text for key, text in batch.rows_json.items() if key not in skip) + "]"
    with _server_bound_cursor() as cursor:
        cursor.execute(_pg_upsert_sql(), [now, run.pk, [pk for _, pk in unchanged], run.source, batch.version,
                                          FindingState.NEW, now, now, now, run.pk, payload])


def _existing(keys) -> dict[tuple[str, str], dict]:
    """The batch's rows already in the database, by (scope_key, fingerprint): one query."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Finding._meta.db_table)
        with _server_bound_cursor() as cursor:
            cursor.execute(
                f"SELECT f.id, f.scope_key, f.fingerprint, f.state, f.content_hash, f.last_import_id FROM {table} f"
                " WHERE (f.scope_key, f.fingerprint) IN"
                " (SELECT k.s, k.f FROM json_to_recordset(%s::json) AS k(s text, f text))",
                [json.dumps([{"s": s, "f": f} for s, f in keys], separators=(",", ":"))],
            )
            return {(row[1], row[2]): {"id": row[0], "state": row[3], "content_hash": row[4],
                                       "last_import_id": row[5]} for row in cursor.fetchall()}
    by_scope: dict[str, list[str]] = {}
    for scope, fp in keys:
        by_scope.setdefault(scope, []).append(fp)
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
