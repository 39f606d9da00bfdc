"""The CPU side of an import, run ahead of the writer (in the parsing process or thread, ahead.py): each finding's
scope, its content hash and, while most findings are new, its row ready to send. Nothing here touches the database
but the Router's one read of the mapping rules, done before parsing starts."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from governance.findings.fields import json_text
from governance.findings.ingest.stores import Key, Row
from governance.findings.models import SEVERITY_RANK, FindingScope, FindingState, ImportRun, MappingRule
from governance.findings.search import Terms
from governance.findings.sla import sla_due
from worker.scanners import Incomplete, Record
from worker.scanners._common import RawEntry, repair_record
from worker.scanners.locations import repository_relative


class Router:
    """A finding goes to the run's system, else to the first system whose mapping rule matches."""

    def __init__(self, run: ImportRun):
        self.run = run
        self.rules = [] if run.system_id else list(MappingRule.objects.order_by("system_id", "id"))

    def scope_keys(self) -> list[str]:
        """The scopes this run reconciles: its system's, or the unassigned queue and every system with rules."""
        if self.run.system_id:
            return [FindingScope.key_of(self.run.system_id, self.run.source)]
        systems = {None, *(rule.system_id for rule in self.rules)}
        return sorted(FindingScope.key_of(s, self.run.source) for s in systems)

    def system_for(self, r: Record) -> int | None:
        if self.run.system_id:
            return self.run.system_id
        place, repository = r.artifact or r.location, self.run.repository
        return next((rule.system_id for rule in self.rules if rule.matches(place, repository)), None)


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


@dataclass
class Batch:
    records: dict  # Key -> Record (None once its row is built); the same key twice in a batch: the last one wins
    hashes: dict  # Key -> content hash
    rows: dict = field(default_factory=dict)  # Key -> row, built ahead when most are new
    words: dict = field(default_factory=dict)  # hash -> word: words met building those rows
    repeats: bool = False  # does it hold (probably) a fingerprint that an earlier batch of the report had?
    merged: int = 0  # entries that repeated a fingerprint of the same batch
    repaired: int = 0  # entries whose unstorable characters were replaced
    notes: list = field(default_factory=list)  # the parser's Incomplete notes met in this batch


class Preparer:
    """Turns a list of records into a Batch. Rows are built ahead while `ahead` is set (the writer sets it from
    what it met: most findings new); otherwise the writer builds the few it needs (a reimport needs almost none).
    On PostgreSQL a row is the bytes of a binary COPY row."""

    def __init__(self, run: ImportRun, version: str, router: Router, now: datetime, binary_row=None):
        self.run, self.version, self.router, self.now = run, version, router, now
        self.sla = {severity: sla_due(severity, now) for severity in SEVERITY_RANK}  # first seen now
        self._finish = binary_row or tuple
        self.flag = bytearray(b"\x01")  # build rows ahead? (replaced by the producer's flag, shared with its process)
        self._terms, self._terms_later = Terms(), Terms()  # the producer's and the writer's
        self._seen = SeenKeys()

    @property
    def ahead(self) -> bool:
        return self.flag[0] == 1

    @ahead.setter
    def ahead(self, value: bool) -> None:
        self.flag[0] = 1 if value else 0

    def __call__(self, batch: list[Record | Incomplete]) -> Batch:
        notes = [r for r in batch if type(r) is Incomplete]
        if notes:
            batch = [r for r in batch if type(r) is not Incomplete]
        prepared = self._prepare(batch)
        prepared.notes = notes
        return prepared

    def _prepare(self, batch: list[Record]) -> Batch:
        source, run = self.run.source, self.run
        records: dict[Key, Record] = {}
        if run.system_id:
            key = FindingScope.key_of(run.system_id, source)
            for r in batch:
                records[(key, r.fingerprint)] = r
        else:
            for r in batch:
                records[(FindingScope.key_of(self.router.system_for(r), source), r.fingerprint)] = r
        fixed: list = []
        hashes = {key: checked_hash(r, fixed) for key, r in records.items()}
        repeats, merged, repaired = self._repeats(records), len(batch) - len(records), len(fixed)
        if not self.ahead:
            for r in records.values():
                r.raw = json_text(r.raw)  # its text travels faster than the dict
            return Batch(records, hashes, repeats=repeats, merged=merged, repaired=repaired)
        finish = self._finish
        rows = {key: finish(self._row(key, r, hashes[key], self._terms)) for key, r in records.items()}
        return Batch(dict.fromkeys(records), hashes, rows, self._terms.new_words(), repeats, merged, repaired=repaired)

    def _repeats(self, records: dict) -> bool:
        """Whether a key of this batch may have been in an earlier one (a false alarm only costs a lookup). A scope
        that was empty needs no lookup for a batch without repeats (postgres.PostgresStore)."""
        repeats = False
        for key in records:
            repeats |= self._seen.check_add(key)
        return repeats

    def row(self, batch: Batch, key: Key) -> Row:
        """The finding's row, built ahead or now (by the writer)."""
        row = batch.rows.get(key)
        return row if row is not None else self._row(key, batch.records[key], batch.hashes[key], self._terms_later)

    def words(self, batch: Batch) -> dict[int, str]:
        """Words met building the batch's rows, for the dictionary (called by the writer)."""
        return {**batch.words, **self._terms_later.new_words()}

    def _row(self, key: Key, r: Record, digest: str, terms: Terms) -> tuple:
        """In stores.COLUMNS order."""
        now = self.now
        title, location, rule_id = r.title[:500], repository_relative(r.location)[:1000], r.rule_id[:300]
        line = r.line if r.line is None or -2**31 <= r.line < 2**31 else None
        return (key[0], FindingScope.system_of(key[0]), self.run.source, r.tool[:60], r.fingerprint, self.version,
                digest, title, r.severity, SEVERITY_RANK[r.severity], r.tool_severity[:60], rule_id, location,
                r.artifact[:1000], r.package[:300], line, r.description, r.remediation, json_text(r.raw),
                FindingState.NEW, now, now, now, self.sla[r.severity], self.run.pk, False,
                terms.of(title, location, rule_id))


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
