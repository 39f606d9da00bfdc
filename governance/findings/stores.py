"""Where an import's findings are written: PostgreSQL in production, any Django database for the embedded demo.

Both keep the same rules (see governance.findings.ingest); PostgreSQL does each step as one statement:
- the batch's existing rows are read by (scope, fingerprint), and their ids noted in a temporary table
  (`ingest_seen`: an id already there was seen earlier in the same report). A scope without findings at the
  start of the run (its first import) is not looked up, but for a batch repeating an earlier fingerprint;
- new rows go in with a binary COPY (no ON CONFLICT probe: the scope's advisory lock means nobody else inserts
  these keys, and the unique constraint still guards it);
- rows to rewrite (changed, reopened, back after being gone) are COPYed into a temporary table beside it and
  applied by one UPDATE, which also renews the run's lease;
- at the end, the scope's rows that are neither new nor noted are the vanished ones.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from psycopg.adapt import Dumper
from psycopg.pq import Format

from governance.findings.models import Finding, FindingScope, ImportRun
from governance.findings.search import Dictionary, PackedTerms

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
_POSITION = {name: i for i, (name, _) in enumerate(COLUMNS)}
_ORM_REWRITTEN = [*REWRITTEN, "sla_due", "last_seen", "last_import_id", "gone"]


@dataclass
class Existing:
    id: int
    state: str
    content_hash: str
    gone: bool
    repeated: bool  # already met earlier in this import
    first_seen: object = None  # read by the portable store only (PostgreSQL re-derives the SLA due in SQL)


def _fingerprints_by_scope(batch) -> dict[str, list[str]]:
    by_scope: dict[str, list[str]] = {}
    for scope, fp in batch.records:
        by_scope.setdefault(scope, []).append(fp)
    return by_scope


def store_for(run: ImportRun, now, lease, scope_keys: list[str]):
    return (PostgresStore if connection.vendor == "postgresql" else OrmStore)(run, now, lease, scope_keys)


def _log(sql: str, started: float) -> None:
    """Statements sent outside Django's cursors are logged like any query (the query-count tests see them)."""
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _server_bound_cursor():
    """A cursor on the same connection (and transaction) that sends parameters separately from the SQL.

    Django's default psycopg cursor binds client-side: a 3 MB JSON parameter would be escaped into the SQL text
    in Python and parsed back as a literal by PostgreSQL. Wrapped like any Django cursor, so queries are logged
    and counted the same way.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    return connection._prepare_cursor(ServerBindingCursor(connection.connection))


_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then flags and header extension length, both 0
_BINARY_TRAILER = b"\xff\xff"


def binary_row_formatter():
    """A function from a row tuple (COLUMNS order) to the bytes of that row in a binary COPY, with psycopg's own
    C formatter: the parsing process builds rows ready to send, the writer only joins them."""
    from psycopg import postgres
    from psycopg._copy_base import format_row_binary  # psycopg is pinned (requirements.txt)
    from psycopg.adapt import AdaptersMap, Transformer

    class Context:
        adapters, connection = AdaptersMap(postgres.adapters), None

    Context.adapters.register_dumper(PackedTerms, _PackedTermsDumper)
    transformer = Transformer(Context)
    transformer.set_dumper_types([_type_oid(kind) for _, kind in COLUMNS], Format.BINARY)

    def binary_row(row: tuple) -> bytes:
        out = bytearray()
        format_row_binary(row, transformer, out)
        return bytes(out)

    return binary_row


def _type_oid(name: str) -> int:
    from psycopg import postgres

    if name.endswith("[]"):
        return postgres.types.get(name[:-2]).array_oid
    return postgres.types.get(name).oid


class _PackedTermsDumper(Dumper):
    """Sends search.PackedTerms as they are: they already are a binary int8[]."""

    format = Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj):
        return obj


class PostgresStore:
    def __init__(self, run: ImportRun, now, lease, scope_keys: list[str]):
        self.run, self.now, self.lease, self.scope_keys = run, now, lease, scope_keys
        self.dictionary = Dictionary()
        q = connection.ops.quote_name
        self.findings, self.runs, self.scopes = (q(m._meta.db_table) for m in (Finding, ImportRun, FindingScope))
        columns = ", ".join(name for name, _ in COLUMNS)
        with connection.cursor() as cursor:  # emptied too in case several imports share one transaction
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_seen (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;"
                f" CREATE TEMP TABLE IF NOT EXISTS ingest_rewrite ON COMMIT DELETE ROWS AS SELECT {columns}"
                f" FROM {self.findings} WITH NO DATA; TRUNCATE ingest_seen, ingest_rewrite")
        # Scopes without a finding yet (a first import): nothing to look up but the report's own repeats, nothing
        # to close. They stay empty but for this run's rows: the run holds their advisory locks.
        with _server_bound_cursor() as cursor:
            cursor.execute(f"SELECT k FROM unnest(%s::text[]) AS k WHERE NOT EXISTS"
                           f" (SELECT 1 FROM {self.findings} f WHERE f.scope_key = k)", [scope_keys])
            self.empty = {key for key, in cursor.fetchall()}

    def expects_new(self) -> bool:
        """A first import of its scopes: every finding will be new."""
        return self.empty.issuperset(self.scope_keys)

    def existing(self, batch) -> dict[tuple[str, str], Existing]:
        by_scope = _fingerprints_by_scope(batch)
        if not batch.repeats and self.empty.issuperset(by_scope):
            return {}
        # per scope "fingerprint = ANY(ARRAY(subquery))": PostgreSQL sorts the array and walks the unique index in
        # order. Not a literal array, whose size the planner would weigh against stale statistics of a scope that
        # has just grown (a scan of the whole scope instead: 100 ms instead of 15 ms a batch).
        match = " OR ".join(["(f.scope_key = %s AND f.fingerprint = ANY(ARRAY(SELECT json_array_elements_text(%s::json))))"]
                            * len(by_scope)) or "false"
        # Seen before this batch: the EXISTS reads ingest_seen as it was when the statement began (the INSERT's
        # rows are not visible to it). Not a join with the INSERT's RETURNING: estimated at one row from the
        # stale statistics of a scope just filled, it became a nested loop (2,000 x 2,000 rows: 390 ms a batch).
        sql = (f"WITH found AS (SELECT f.id, f.scope_key, f.fingerprint, f.state, f.content_hash, f.gone,"
               f" f.last_import_id, EXISTS (SELECT 1 FROM ingest_seen n WHERE n.id = f.id)"
               f" FROM {self.findings} f WHERE {match}),"
               f" noted AS (INSERT INTO ingest_seen SELECT id FROM found ON CONFLICT DO NOTHING)"
               f" SELECT * FROM found")
        with _server_bound_cursor() as cursor:
            cursor.execute(sql, [value for scope, fps in by_scope.items() for value in (scope, json.dumps(fps))])
            run = self.run.pk
            return {(scope, fp): Existing(pk, state, digest, gone, repeated or last_import == run)
                    for pk, scope, fp, state, digest, gone, last_import, repeated in cursor.fetchall()}

    def insert(self, batch, keys: list) -> None:
        if keys:
            self._copy(self.findings, [batch.preparer.row(batch, key) for key in keys])

    def _copy(self, table: str, rows: list) -> None:
        """Binary COPY of rows into table: rows built ahead are already bytes (sent as they are), others tuples."""
        sql = f"COPY {table} ({', '.join(name for name, _ in COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        started = time.monotonic()
        connection.ensure_connection()
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.adapters.register_dumper(PackedTerms, _PackedTermsDumper)
            with cursor.copy(sql) as copy:
                if isinstance(rows[0], bytes):
                    copy.write(b"".join([_BINARY_SIGNATURE, *rows, _BINARY_TRAILER]))
                else:
                    copy.set_types([kind for _, kind in COLUMNS])
                    for row in rows:
                        copy.write_row(row)
        _log(f"{sql} -- {len(rows)} rows", started)

    def rewrite(self, batch, rows: list, reopen: list[int], reopen_from) -> list[tuple[int, str]]:
        """Rewrite rows from the report and renew the lease: the rows are COPYed beside the table, then one UPDATE.
        The findings in `reopen` go back to new if they are still closed or fixed (read under a row lock: a
        person may have moved one meanwhile). Returns (id, state before) of those reopened."""
        if rows:
            self._copy("ingest_rewrite", [batch.preparer.row(batch, key) for key, _ in rows])
        assignments = ", ".join(f"{name} = b.{name}" for name in REWRITTEN)
        sql = f"""
WITH lease AS (UPDATE {self.runs} SET lease_until = %(lease)s WHERE id = %(run)s),
     b AS (DELETE FROM ingest_rewrite RETURNING *),
     reopened AS (SELECT id, state FROM {self.findings} WHERE id = ANY(%(reopen)s) AND state = ANY(%(reopen_from)s)
                  FOR UPDATE),
     rewritten AS (
        UPDATE {self.findings} AS f SET {assignments}, sla_due = f.first_seen + (b.sla_due - b.first_seen),
            last_seen = %(now)s, last_import_id = %(run)s, gone = false,
            state = CASE WHEN f.id IN (SELECT id FROM reopened) THEN 'new' ELSE f.state END,
            state_changed_at = CASE WHEN f.id IN (SELECT id FROM reopened) THEN %(now)s ELSE f.state_changed_at END
        FROM b WHERE f.scope_key = b.scope_key AND f.fingerprint = b.fingerprint)
SELECT id, state FROM reopened ORDER BY id"""
        with _server_bound_cursor() as cursor:
            cursor.execute(sql, {"lease": timezone.now() + self.lease(), "run": self.run.pk, "now": self.now,
                                 "reopen": reopen, "reopen_from": list(reopen_from)})
            return cursor.fetchall()

    def add_words(self, words: dict[int, str]) -> None:
        self.dictionary.add(words)

    def close_vanished(self, scope_keys: list[str], close, hold_packages=()) -> list[tuple[int, str]]:
        """Mark gone what this import did not report, and close the open ones (gone already or not: a finding routed
        by hand arrives gone) but those of a package in hold_packages (lower case: not examined). Returns (id, state
        before) of those closed."""
        scope_keys = [key for key in scope_keys if key not in self.empty]
        if not scope_keys:
            return []
        closing = "f.state = ANY(%(close)s::text[]) AND NOT lower(f.package) = ANY(%(hold)s::text[])"
        sql = f"""
WITH vanished AS (
    SELECT f.id, f.state, f.gone, s.last_seen AS seen, {closing} AS closing FROM {self.findings} f
    LEFT JOIN {self.scopes} s ON s.key = f.scope_key
    WHERE f.scope_key = ANY(%(scopes)s) AND (NOT f.gone OR {closing})
      AND f.last_import_id IS DISTINCT FROM %(run)s AND NOT EXISTS (SELECT 1 FROM ingest_seen n WHERE n.id = f.id)
    FOR UPDATE OF f),
  marked AS (
    UPDATE {self.findings} f SET gone = true,
        last_seen = CASE WHEN v.gone THEN f.last_seen ELSE GREATEST(f.last_seen, COALESCE(v.seen, f.last_seen)) END,
        state = CASE WHEN v.closing THEN 'closed' ELSE f.state END,
        state_changed_at = CASE WHEN v.closing THEN %(now)s ELSE f.state_changed_at END
    FROM vanished v WHERE f.id = v.id)
SELECT id, state FROM vanished WHERE closing ORDER BY id"""
        with _server_bound_cursor() as cursor:
            cursor.execute(sql, {"scopes": scope_keys, "run": self.run.pk, "close": list(close), "now": self.now,
                                 "hold": list(hold_packages)})
            return cursor.fetchall()

    def has_open(self, scope_keys: list[str]) -> bool:
        return _has_open([key for key in scope_keys if key not in self.empty])

    def held_open(self, scope_keys: list[str]) -> int:
        return _held_open(scope_keys)

    def scopes_seen(self, scope_keys: list[str]) -> None:
        _scopes_seen(self.run, scope_keys, self.now)

    def close(self) -> None:
        self.dictionary.close()


def _has_open(scope_keys: list[str]) -> bool:
    """Does one of these scopes hold findings still reported and open (before this import reconciles them)?"""
    return bool(scope_keys) and Finding.objects.filter(scope_key__in=scope_keys, gone=False).open().exists()


def _held_open(scope_keys: list[str]) -> int:
    """Open findings of these scopes that their latest report no longer lists."""
    return Finding.objects.filter(scope_key__in=scope_keys, gone=True).open().count()


def _scopes_seen(run: ImportRun, scope_keys: list[str], now) -> None:
    FindingScope.objects.bulk_create(
        [FindingScope(key=key, last_import=run, last_seen=now) for key in scope_keys],
        update_conflicts=True, unique_fields=["key"], update_fields=["last_import", "last_seen"],
    )


class OrmStore:
    """The portable path (the embedded SQLite default): the same steps through the ORM, a few queries more."""

    def __init__(self, run: ImportRun, now, lease, scope_keys: list[str]):
        self.run, self.now, self.lease = run, now, lease
        self.seen: set[int] = set()

    def expects_new(self) -> bool:
        return False  # rows are built where they are written (no process to build them ahead)

    def existing(self, batch) -> dict[tuple[str, str], Existing]:
        by_scope = _fingerprints_by_scope(batch)
        if not by_scope:
            return {}  # an empty Q() would match every finding
        query = Q()
        for scope, fps in by_scope.items():
            query |= Q(scope_key=scope, fingerprint__in=fps)
        found = {}
        for r in Finding.objects.filter(query).values("id", "scope_key", "fingerprint", "state", "content_hash",
                                                      "gone", "last_import_id", "first_seen"):
            repeated = r["id"] in self.seen or r["last_import_id"] == self.run.pk
            self.seen.add(r["id"])
            found[(r["scope_key"], r["fingerprint"])] = Existing(r["id"], r["state"], r["content_hash"], r["gone"],
                                                                 repeated, r["first_seen"])
        return found

    def insert(self, batch, keys: list) -> None:
        names = [name for name, _ in COLUMNS]
        rows = []
        for key in keys:
            values = dict(zip(names, batch.preparer.row(batch, key)))
            rows.append(Finding(**values))
        Finding.objects.bulk_create(rows, batch_size=500)

    def rewrite(self, batch, rows: list, reopen: list[int], reopen_from) -> list[tuple[int, str]]:
        reopened = list(Finding.objects.select_for_update().filter(pk__in=reopen, state__in=reopen_from)
                        .values_list("id", "state"))
        reopen_now = {pk for pk, _ in reopened}
        findings = []
        for key, old in rows:
            row = batch.preparer.row(batch, key)
            due = row[_POSITION["sla_due"]]
            finding = Finding(pk=old.id, last_seen=self.now, last_import_id=self.run.pk, gone=False,
                              sla_due=due and old.first_seen + (due - row[_POSITION["first_seen"]]),
                              **{name: row[_POSITION[name]] for name in REWRITTEN})
            if old.id in reopen_now:
                finding.state, finding.state_changed_at = "new", self.now
            findings.append(finding)
        Finding.objects.bulk_update([f for f in findings if f.pk not in reopen_now], _ORM_REWRITTEN, batch_size=500)
        Finding.objects.bulk_update([f for f in findings if f.pk in reopen_now], [*_ORM_REWRITTEN, "state",
                                                                                  "state_changed_at"], batch_size=500)
        ImportRun.objects.filter(pk=self.run.pk).update(lease_until=timezone.now() + self.lease())
        return sorted(reopened)

    def add_words(self, words) -> None:
        pass  # the text search uses the dictionary on PostgreSQL only

    def close_vanished(self, scope_keys: list[str], close, hold_packages=()) -> list[tuple[int, str]]:
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
                f.state, f.state_changed_at = "closed", self.now
        Finding.objects.bulk_update(vanished, ["gone", "last_seen", "state", "state_changed_at"], batch_size=500)
        return sorted(closed)

    def has_open(self, scope_keys: list[str]) -> bool:
        return _has_open(scope_keys)

    def held_open(self, scope_keys: list[str]) -> int:
        return _held_open(scope_keys)

    def scopes_seen(self, scope_keys: list[str]) -> None:
        _scopes_seen(self.run, scope_keys, self.now)

    def close(self) -> None:
        pass
