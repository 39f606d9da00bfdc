"""Run an import in the worker: parse the stored report, write findings in batches, close what vanished.

One import is one database transaction: a crash, a kill -9 or a bad line halfway rolls everything back,
and the rerun (acks_late redelivery or the stale-run sweeper) produces exactly the same result.
Imports of the same scope are serialised by an advisory lock, so two at once cannot create duplicates.

What a reimport writes: new findings, findings whose content changed, findings that come back (reopened, or
no longer gone) and the ones that vanished. An unchanged finding is not written at all: its scope records the
import that saw it (FindingScope), which is what makes an identical reimport cheap and change nothing.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

import orjson
from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from governance.audit.services import audit_record
from governance.findings.fields import json_text
from governance.findings.models import SEVERITY_RANK, FindingState, FindingTransition, ImportRun, MappingRule
from governance.findings.prefetch import ForkedPrefetch, ParserLost, Prefetch, gc_paused, short_gil_slices
from governance.findings.search import Terms
from governance.findings.sla import sla_due
from governance.findings.stores import Existing, binary_row_formatter, store_for
from worker.scanners import FORMATS, Incomplete, ParseError, Record, detect
from worker.scanners._common import HEAD_SIZE, RawEntry, repair_record

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
    merged: int = 0  # entries of the report with the fingerprint of an earlier entry: one finding for both
    held_open: int = 0  # open findings the report did not list but did not examine either (incomplete report)
    repaired: int = 0  # entries with NUL or half UTF-16 pairs, replaced by U+FFFD rather than failing the import
    routed: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "closed": self.closed, "reopened": self.reopened, "merged": self.merged, "held_open": self.held_open,
                "repaired": self.repaired}


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
    stored = run.report.name
    if run.attempts > MAX_ATTEMPTS:
        _fail(run, f"Gave up after {MAX_ATTEMPTS} attempts: the worker kept stopping during this import.")
        _discard_report(run, stored)
        return run
    try:
        with transaction.atomic():
            counts = _ingest(run)
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


def lock_scopes(scope_keys) -> None:
    """Take the transaction-long lock of each scope: whoever adds findings to a scope holds it (new rows are
    COPYed without ON CONFLICT, so two writers of one scope must never overlap). Sorted: no deadlock."""
    if connection.vendor == "postgresql":
        for key in sorted({zlib.crc32(k.encode()) for k in scope_keys}):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7331, key - 2**31])


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


def _ingest(run: ImportRun) -> Counts:
    fmt = _named_source(run)
    router = Router(run)
    lock_scopes(router.scope_keys())
    counts, now = Counts(), timezone.now()
    store = store_for(run, now, lease, router.scope_keys())
    try:
        with run.report.open("rb") as stream, gc_paused():
            run.detected_format = fmt
            records = FORMATS[fmt].parse(stream)
            prepare = _Preparer(run, f"{fmt}/v{FORMATS[fmt].FINGERPRINT_VERSION}", router, now)
            batches = (prepare(batch) for batch in iter(lambda: list(islice(records, settings.RAMPART_IMPORT_BATCH)), []))
            # PostgreSQL: parse in a forked process beside the database's work; elsewhere in a thread
            if prepare.binary:
                producer, slices = ForkedPrefetch(batches, (connection.connection.fileno(),)), nullcontext()
            else:
                producer, slices = Prefetch(batches), short_gil_slices()
            prepare.flag = producer.flag
            prepare.ahead = store.expects_new()  # then each batch tells (_write_batch)
            notes = []
            with producer as prepared, slices:
                for batch in prepared:
                    batch.preparer = prepare
                    notes += batch.notes
                    _write_batch(store, batch, counts)
            if getattr(producer, "peak_rss_kib", 0):
                log.info("Import %s: the parsing process peaked at %.0f MiB resident (shared pages included)",
                         run.pk, producer.peak_rss_kib / 1024)
        _reconcile(store, run, router, counts, now, notes)
    finally:
        store.close()
    return counts


def records_write(run: ImportRun, records: list[Record], version: str, router: Router, counts: Counts, now) -> None:
    """Write one list of records as a whole import of the run's scopes (lineage rules use this)."""
    store = store_for(run, now, lease, router.scope_keys())
    try:
        preparer = _Preparer(run, version, router, now)
        batch = preparer(records)
        batch.preparer = preparer
        _write_batch(store, batch, counts)
        _reconcile(store, run, router, counts, now, empty_is_suspect=False)  # no rule matching: all resolved
    finally:
        store.close()


def content_hash(r: Record) -> str:
    body = orjson.dumps([r.title, r.severity, r.tool_severity, r.rule_id, r.location, r.description,
                         r.remediation, r.artifact, r.package, r.line])
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def checked_hash(r: Record, repaired: list) -> str:
    """The content hash; an entry holding text no database can store (NUL, half a UTF-16 pair) has it replaced by
    U+FFFD first, instead of failing the whole import (appended to `repaired`). The check rides on the hash: orjson
    refuses half pairs and escapes NUL, and a raw entry's JSON text shows both as \\u escapes."""
    try:
        body = orjson.dumps([r.title, r.severity, r.tool_severity, r.rule_id, r.location, r.description,
                             r.remediation, r.artifact, r.package, r.line])
    except TypeError:  # orjson: a str with half a surrogate pair
        body = b"\\u0000"
    if b"\\u0000" not in body and (type(r.raw) is not RawEntry or "\\u" not in r.raw.json):
        return hashlib.blake2b(body, digest_size=16).hexdigest()
    if repair_record(r):
        repaired.append(1)
    return content_hash(r)


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
        return sorted(scope_key(s, self.run.source) for s in systems)

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


def system_of(key: str) -> int | None:
    system = key.split(":", 1)[0]
    return None if system == "unassigned" else int(system)


@dataclass
class Batch:
    records: dict  # (scope_key, fingerprint) -> Record; the same fingerprint twice in a batch: the last one wins
    hashes: dict  # (scope_key, fingerprint) -> content hash
    rows: dict = field(default_factory=dict)  # (scope_key, fingerprint) -> row, built ahead when most are new
    words: dict = field(default_factory=dict)  # hash -> word: words met building those rows
    repeats: bool = False  # does it hold (probably) a fingerprint that an earlier batch of the report had?
    merged: int = 0  # entries that repeated a fingerprint of the same batch
    repaired: int = 0  # entries whose unstorable characters were replaced
    notes: list = field(default_factory=list)  # the parser's Incomplete notes met in this batch
    preparer: "_Preparer | None" = None  # set where the batch is written (it does not travel between processes)

    def __getstate__(self):
        return {**self.__dict__, "preparer": None}


class _Preparer:
    """The CPU side of a batch, run ahead of the writer (in the parsing process or thread): routing, content
    hashes and, while most findings are new, their rows, ready to send (on PostgreSQL: the bytes of a binary COPY
    row). Otherwise the writer builds the few rows it needs (a reimport needs almost none)."""

    def __init__(self, run: ImportRun, version: str, router: Router, now):
        self.run, self.version, self.router, self.now = run, version, router, now
        self.sla = {severity: sla_due(severity, now) for severity in SEVERITY_RANK}  # first seen now
        self.binary = connection.vendor == "postgresql"
        self.flag = bytearray(b"\x01")  # build rows ahead? (the producer's flag, shared with the parsing process)
        self._terms, self._terms_later = Terms(), Terms()  # the producer's and the writer's
        self._seen = SeenKeys()

    @property
    def ahead(self) -> bool:
        return self.flag[0] == 1

    @ahead.setter
    def ahead(self, value: bool) -> None:
        self.flag[0] = 1 if value else 0

    def __call__(self, batch: list[Record]) -> Batch:
        notes = [r for r in batch if type(r) is Incomplete]
        if notes:
            batch = [r for r in batch if type(r) is not Incomplete]
        prepared = self._prepare(batch)
        prepared.notes = notes
        return prepared

    def _prepare(self, batch: list[Record]) -> Batch:
        source, run = self.run.source, self.run
        records: dict[tuple[str, str], Record] = {}
        if run.system_id:
            key = scope_key(run.system_id, source)
            for r in batch:
                records[(key, r.fingerprint)] = r
        else:
            for r in batch:
                records[(scope_key(self.router.system_for(r), source), r.fingerprint)] = r
        fixed: list = []
        hashes = {key: checked_hash(r, fixed) for key, r in records.items()}
        repeats, merged, repaired = self._repeats(records), len(batch) - len(records), len(fixed)
        if not self.ahead:
            for r in records.values():
                r.raw = json_text(r.raw)  # its text travels faster than the dict
            return Batch(records, hashes, repeats=repeats, merged=merged, repaired=repaired)
        finish = self._binary_row() if self.binary else tuple
        rows = {key: finish(self._row(key, r, hashes[key], self._terms)) for key, r in records.items()}
        return Batch(dict.fromkeys(records), hashes, rows, self._terms.new_words(), repeats, merged, repaired=repaired)

    def _repeats(self, records: dict) -> bool:
        """Whether a key of this batch may have been in an earlier one (a false alarm only costs a lookup). A scope
        that was empty needs no lookup for a batch without repeats (stores.PostgresStore)."""
        repeats = False
        for key in records:
            repeats |= self._seen.check_add(key)
        return repeats

    def _binary_row(self):
        if not hasattr(self, "_format"):
            self._format = binary_row_formatter()
        return self._format

    def row(self, batch: Batch, key: tuple[str, str]):
        """The finding's row (stores.COLUMNS order): a tuple, or on PostgreSQL the bytes of a binary COPY row."""
        row = batch.rows.get(key)
        return row if row is not None else self._row(key, batch.records[key], batch.hashes[key], self._terms_later)

    def words(self, batch: Batch) -> dict[int, str]:
        """Words met building the batch's rows, for the dictionary (called by the writer)."""
        return {**batch.words, **self._terms_later.new_words()}

    def _row(self, key: tuple[str, str], r: Record, digest: str, terms: Terms) -> tuple:
        now = self.now
        title, location, rule_id = r.title[:500], r.location[:1000], r.rule_id[:300]
        line = r.line if r.line is None or -2**31 <= r.line < 2**31 else None
        return (key[0], system_of(key[0]), self.run.source, r.tool[:60], r.fingerprint, self.version, digest, title,
                r.severity, SEVERITY_RANK[r.severity], r.tool_severity[:60], rule_id, location, r.artifact[:1000],
                r.package[:300], line, r.description, r.remediation, json_text(r.raw), FindingState.NEW, now, now,
                now, self.sla[r.severity], self.run.pk, False, terms.of(title, location, rule_id))


class SeenKeys:
    """hash() of the keys met so far, to tell a batch that may repeat an earlier one (a false alarm, two keys with
    the same 64-bit hash, only costs a lookup). Past LIMIT keys (~9 MB) it stops remembering and answers "maybe"
    for every batch: memory stays bounded and the answer stays safe (bigger reports are simply looked up)."""

    LIMIT = 250_000

    def __init__(self):
        self._hashes: set[int] = set()
        self._full = False

    def check_add(self, key) -> bool:
        if self._full:
            return True
        h = hash(key)
        if h in self._hashes:
            return True
        self._hashes.add(h)
        if len(self._hashes) >= self.LIMIT:
            self._full, self._hashes = True, set()
        return False


def _write_batch(store, batch: Batch, counts: Counts) -> None:
    """A fixed number of queries whatever the batch size: read the batch's existing rows (stores.py), write the
    new ones, rewrite the ones that need it (and renew the lease)."""
    existing = store.existing(batch)
    new_keys, rewrite, reopened = [], [], []
    counts.merged += batch.merged
    counts.repaired += batch.repaired
    for key, digest in batch.hashes.items():
        old: Existing | None = existing.get(key)
        if old is None:
            counts.created += 1
            new_keys.append(key)
            continue
        if old.repeated:  # the same fingerprint earlier in this report: counted once (as merged), the last one wins
            counts.merged += 1
            if old.content_hash != digest:
                rewrite.append((key, old))
            continue
        if old.state in REOPEN_FROM:
            counts.reopened += 1
            reopened.append(old)
        elif old.content_hash != digest:
            counts.updated += 1
        else:
            counts.unchanged += 1
            if not old.gone:
                continue  # nothing to write: the scope's import says it was seen
        rewrite.append((key, old))
    batch.preparer.ahead = 2 * len(new_keys) > len(batch.hashes)
    store.insert(batch, new_keys)
    moved = store.rewrite(batch, rewrite, [old.id for old in reopened], REOPEN_FROM)
    store.add_words(batch.preparer.words(batch))
    counts.reopened -= len(reopened) - len(moved)  # a person moved it meanwhile: it was only rewritten
    counts.updated += len(reopened) - len(moved)
    _transitions(moved, FindingState.NEW, store.run, "Reported again by the scanner: reopened.", store.now)


def _reconcile(store, run: ImportRun, router: Router, counts: Counts, now, notes=(), empty_is_suspect=True) -> None:
    """Findings of the run's scopes that the report no longer contains are gone; open ones are closed (a human
    decision is never overwritten). Then the scopes record this import as the one that saw the rest.

    A report that did not examine everything it covers (the parser's Incomplete notes: skipped dependencies, a
    failed scanner run; or no finding at all where the scope still has open ones) closes nothing it did not
    examine: those findings are gone but stay open, counted as `held_open`, and the import says why. A person
    then closes them from the import's page (services.import_run_close_held), or the next complete report does."""
    keys = router.scope_keys()
    hold_all = any(not note.packages for note in notes)
    hold_packages = sorted({p.lower() for note in notes for p in note.packages})
    reasons = [note.reason for note in notes]
    # an empty report is suspect unless the parser said what it examined (it then noted what it did not)
    if empty_is_suspect and not notes and _nothing_reported(counts) and store.has_open(keys):
        hold_all = True
        reasons.append("The report lists no findings, while this feed still has open ones: nothing was closed, "
                       "in case the scan did not really run.")
    close = () if hold_all else (FindingState.NEW, FindingState.CONFIRMED)
    closed = store.close_vanished(keys, close=close, hold_packages=hold_packages)
    counts.closed = len(closed)
    _transitions(closed, FindingState.CLOSED, run, "No longer reported by the scanner.", now)
    if reasons:
        counts.held_open = store.held_open(keys)
        run.incomplete = " ".join(reasons)[:2000]
    store.scopes_seen(keys)


def _nothing_reported(counts: Counts) -> bool:
    return not (counts.created or counts.updated or counts.unchanged or counts.reopened or counts.merged)


def _transitions(moved: list[tuple[int, str]], to_state: str, run: ImportRun, reason: str, now) -> None:
    if not moved:
        return
    FindingTransition.objects.bulk_create([
        FindingTransition(finding_id=pk, from_state=from_state, to_state=to_state, at=now, reason=reason,
                          import_run=run)
        for pk, from_state in moved
    ], batch_size=5000)
