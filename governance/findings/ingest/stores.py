"""Where an import's findings are written: the interface both stores keep, and the portable one.

PostgreSQL (production) is `postgres.PostgresStore`; any other Django database (the embedded SQLite demo) is
`OrmStore` below, the same steps through the ORM with a few queries more. Both keep the same rules, which
governance.findings.ingest.write decides: a store only reads and writes what it is told.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from governance.findings.models import Finding, FindingScope, FindingState, ImportRun

Key = tuple[str, str]  # (scope key, fingerprint): a finding's identity
Row = tuple | bytes  # a finding's row in COLUMNS order; on PostgreSQL, maybe already a binary COPY row
Moved = list[tuple[int, str]]  # (finding id, state before) of findings whose state this import moved

COLUMNS = (  # (column, type for the binary COPY)
    ("scope_key", "text"), ("system_id", "int8"), ("source", "text"), ("tool", "text"), ("fingerprint", "text"),
    ("fingerprint_version", "text"), ("content_hash", "text"), ("title", "text"), ("severity", "text"),
    ("severity_rank", "int2"), ("tool_severity", "text"), ("rule_id", "text"), ("location", "text"),
    ("artifact", "text"), ("package", "text"), ("line", "int4"), ("description", "text"), ("remediation", "text"),
    ("raw", "text"), ("state", "text"), ("first_seen", "timestamptz"), ("last_seen", "timestamptz"),
    ("state_changed_at", "timestamptz"), ("sla_due", "timestamptz"), ("last_import_id", "int8"), ("gone", "bool"),
    ("terms", "int8[]"),
)
# what a rewrite takes from the report (state and first_seen stay; reopening moves state, as a transition). The SLA
# due is re-derived from the finding's own first seen: a row built for the report was first seen now.
REWRITTEN = ("tool", "fingerprint_version", "content_hash", "title", "severity", "severity_rank", "tool_severity",
             "rule_id", "location", "artifact", "package", "line", "description", "remediation", "raw", "terms")
REOPEN_FROM = (FindingState.CLOSED, FindingState.FIXED)  # a finding reported again in these states is new again


@dataclass
class Existing:
    id: int
    state: str
    content_hash: str
    gone: bool
    repeated: bool  # already met earlier in this import
    first_seen: datetime | None = None  # read by the portable store only (PostgreSQL re-derives the SLA due in SQL)


class Store(Protocol):
    """The steps of an import, each a fixed number of queries whatever the batch size."""

    binary: bool  # rows are built as binary COPY rows (PostgreSQL)

    def expects_new(self) -> bool:
        """A first import of its scopes: every finding will be new (rows are then built ahead)."""

    def existing(self, keys: Collection[Key], maybe_repeats: bool) -> dict[Key, Existing]:
        """The findings these keys already have, each marked if met earlier in this import."""

    def insert(self, rows: list[Row]) -> None:
        """Write new findings."""

    def rewrite(self, rows: list[tuple[Row, Existing]], reopen: list[int]) -> Moved:
        """Rewrite findings from the report and renew the run's lease; those in `reopen` go back to new if still in
        REOPEN_FROM (read under a row lock: a person may have moved one meanwhile). Returns those reopened."""

    def add_words(self, words: dict[int, str]) -> None:
        """Words met building rows, for the search dictionary."""

    def close_vanished(self, scope_keys: list[str], close: Iterable[str], hold_packages: Iterable[str]) -> Moved:
        """Mark gone what this import did not report; close those in a state of `close` but for a package in
        hold_packages (lower case: not examined). Returns those closed."""

    def has_open(self, scope_keys: list[str]) -> bool:
        """Does a scope hold findings still reported and open (before this import reconciles them)?"""

    def held_open(self, scope_keys: list[str]) -> int:
        """Open findings of these scopes that their latest report no longer lists."""

    def scopes_seen(self, scope_keys: list[str]) -> None:
        """Record this import as the one that saw the scopes' findings not gone."""

    def close(self) -> None:
        """Release what the store holds (its dictionary connection)."""


def store_for(run: ImportRun, now: datetime, scope_keys: list[str]) -> Store:
    if connection.vendor == "postgresql":
        from governance.findings.ingest.postgres import PostgresStore

        return PostgresStore(run, now, scope_keys)
    return OrmStore(run, now)


def by_scope(keys: Iterable[Key]) -> dict[str, list[str]]:
    """Fingerprints grouped by scope key."""
    grouped: dict[str, list[str]] = {}
    for scope, fp in keys:
        grouped.setdefault(scope, []).append(fp)
    return grouped


def open_reported(scope_keys: list[str]) -> bool:
    return bool(scope_keys) and Finding.objects.filter(scope_key__in=scope_keys, gone=False).open().exists()


def open_not_reported(scope_keys: list[str]) -> int:
    return Finding.objects.filter(scope_key__in=scope_keys, gone=True).open().count()


def scopes_seen(run: ImportRun, scope_keys: list[str], now: datetime) -> None:
    FindingScope.objects.bulk_create(
        [FindingScope(key=key, last_import=run, last_seen=now) for key in scope_keys],
        update_conflicts=True, unique_fields=["key"], update_fields=["last_import", "last_seen"],
    )


_NAMES = [name for name, _ in COLUMNS]
_POSITION = {name: i for i, name in enumerate(_NAMES)}
_ORM_REWRITTEN = [*REWRITTEN, "sla_due", "last_seen", "last_import_id", "gone"]


class OrmStore:
    """The portable path (the embedded SQLite default): the same steps through the ORM, a few queries more."""

    binary = False

    def __init__(self, run: ImportRun, now: datetime):
        self.run, self.now = run, now
        self.seen: set[int] = set()

    def expects_new(self) -> bool:
        return False  # rows are built where they are written (no process to build them ahead)

    def existing(self, keys: Collection[Key], maybe_repeats: bool) -> dict[Key, Existing]:
        grouped = by_scope(keys)
        if not grouped:
            return {}  # an empty Q() would match every finding
        query = Q()
        for scope, fps in grouped.items():
            query |= Q(scope_key=scope, fingerprint__in=fps)
        found = {}
        for r in Finding.objects.filter(query).values("id", "scope_key", "fingerprint", "state", "content_hash",
                                                      "gone", "last_import_id", "first_seen"):
            repeated = r["id"] in self.seen or r["last_import_id"] == self.run.pk
            self.seen.add(r["id"])
            found[(r["scope_key"], r["fingerprint"])] = Existing(r["id"], r["state"], r["content_hash"], r["gone"],
                                                                 repeated, r["first_seen"])
        return found

    def insert(self, rows: list[Row]) -> None:
        Finding.objects.bulk_create([Finding(**dict(zip(_NAMES, row))) for row in rows], batch_size=500)

    def rewrite(self, rows: list[tuple[Row, Existing]], reopen: list[int]) -> Moved:
        reopened = list(Finding.objects.select_for_update().filter(pk__in=reopen, state__in=REOPEN_FROM)
                        .values_list("id", "state"))
        reopen_now = {pk for pk, _ in reopened}
        findings = []
        for row, old in rows:
            due = row[_POSITION["sla_due"]]
            finding = Finding(pk=old.id, last_seen=self.now, last_import_id=self.run.pk, gone=False,
                              sla_due=due and old.first_seen + (due - row[_POSITION["first_seen"]]),
                              **{name: row[_POSITION[name]] for name in REWRITTEN})
            if old.id in reopen_now:
                finding.state, finding.state_changed_at = FindingState.NEW, self.now
            findings.append(finding)
        Finding.objects.bulk_update([f for f in findings if f.pk not in reopen_now], _ORM_REWRITTEN, batch_size=500)
        Finding.objects.bulk_update([f for f in findings if f.pk in reopen_now], [*_ORM_REWRITTEN, "state",
                                                                                  "state_changed_at"], batch_size=500)
        ImportRun.objects.filter(pk=self.run.pk).update(lease_until=ImportRun.lease_from(timezone.now()))
        return sorted(reopened)

    def add_words(self, words: dict[int, str]) -> None:
        pass  # the text search uses the dictionary on PostgreSQL only

    def close_vanished(self, scope_keys: list[str], close: Iterable[str], hold_packages: Iterable[str]) -> Moved:
        close, hold_packages = list(close), set(hold_packages)
        seen_at = dict(FindingScope.objects.filter(key__in=scope_keys).values_list("key", "last_seen"))
        candidates = (Finding.objects.filter(Q(gone=False) | Q(state__in=close), scope_key__in=scope_keys)
                      .exclude(last_import=self.run).select_for_update())
        vanished, closed = [f for f in candidates if f.pk not in self.seen], []
        for f in vanished:
            if not f.gone and seen_at.get(f.scope_key):
                f.last_seen = max(f.last_seen, seen_at[f.scope_key])
            f.gone = True
            if f.state in close and f.package.lower() not in hold_packages:
                closed.append((f.pk, f.state))
                f.state, f.state_changed_at = FindingState.CLOSED, self.now
        Finding.objects.bulk_update(vanished, ["gone", "last_seen", "state", "state_changed_at"], batch_size=500)
        return sorted(closed)

    def has_open(self, scope_keys: list[str]) -> bool:
        return open_reported(scope_keys)

    def held_open(self, scope_keys: list[str]) -> int:
        return open_not_reported(scope_keys)

    def scopes_seen(self, scope_keys: list[str]) -> None:
        scopes_seen(self.run, scope_keys, self.now)

    def close(self) -> None:
        pass
