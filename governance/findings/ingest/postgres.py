"""The PostgreSQL store: each step of an import is one statement (the why of each: bench/README.md).

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
from collections.abc import Collection, Iterable
from datetime import datetime

from django.db import connection
from django.utils import timezone

from governance.findings.ingest import driver
from governance.findings.ingest.stores import (COLUMNS, REOPEN_FROM, REWRITTEN, Existing, Key, Moved, Row, by_scope,
                                               open_not_reported, open_reported, scopes_seen)
from governance.findings.models import Finding, FindingScope, FindingState, FindingTerm, ImportRun


class PostgresStore:
    binary = True

    def __init__(self, run: ImportRun, now: datetime, scope_keys: list[str]):
        self.run, self.now, self.scope_keys = run, now, scope_keys
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
        with driver.server_bound_cursor() as cursor:
            cursor.execute(f"SELECT k FROM unnest(%s::text[]) AS k WHERE NOT EXISTS"
                           f" (SELECT 1 FROM {self.findings} f WHERE f.scope_key = k)", [scope_keys])
            self.empty = {key for key, in cursor.fetchall()}

    def expects_new(self) -> bool:
        return self.empty.issuperset(self.scope_keys)

    def existing(self, keys: Collection[Key], maybe_repeats: bool) -> dict[Key, Existing]:
        grouped = by_scope(keys)
        if not maybe_repeats and self.empty.issuperset(grouped):
            return {}
        # per scope "fingerprint = ANY(ARRAY(subquery))": PostgreSQL sorts the array and walks the unique index in
        # order. Not a literal array, whose size the planner would weigh against stale statistics of a scope that
        # has just grown (a scan of the whole scope instead: 100 ms instead of 15 ms a batch).
        match = " OR ".join(["(f.scope_key = %s AND f.fingerprint = ANY(ARRAY(SELECT json_array_elements_text(%s::json))))"]
                            * len(grouped)) or "false"
        # Seen before this batch: the EXISTS reads ingest_seen as it was when the statement began (the INSERT's
        # rows are not visible to it). Not a join with the INSERT's RETURNING: estimated at one row from the
        # stale statistics of a scope just filled, it became a nested loop (2,000 x 2,000 rows: 390 ms a batch).
        sql = (f"WITH found AS (SELECT f.id, f.scope_key, f.fingerprint, f.state, f.content_hash, f.gone,"
               f" f.last_import_id, EXISTS (SELECT 1 FROM ingest_seen n WHERE n.id = f.id)"
               f" FROM {self.findings} f WHERE {match}),"
               f" noted AS (INSERT INTO ingest_seen SELECT id FROM found ON CONFLICT DO NOTHING)"
               f" SELECT * FROM found")
        with driver.server_bound_cursor() as cursor:
            cursor.execute(sql, [value for scope, fps in grouped.items() for value in (scope, json.dumps(fps))])
            run = self.run.pk
            return {(scope, fp): Existing(pk, state, digest, gone, repeated or last_import == run)
                    for pk, scope, fp, state, digest, gone, last_import, repeated in cursor.fetchall()}

    def insert(self, rows: list[Row]) -> None:
        if rows:
            driver.copy_binary(self.findings, COLUMNS, rows)

    def rewrite(self, rows: list[tuple[Row, Existing]], reopen: list[int]) -> Moved:
        """The rows are COPYed beside the table, then one UPDATE (which also renews the lease)."""
        if rows:
            driver.copy_binary("ingest_rewrite", COLUMNS, [row for row, _ in rows])
        assignments = ", ".join(f"{name} = b.{name}" for name in REWRITTEN)
        sql = f"""
WITH lease AS (UPDATE {self.runs} SET lease_until = %(lease)s WHERE id = %(run)s),
     b AS (DELETE FROM ingest_rewrite RETURNING *),
     reopened AS (SELECT id, state FROM {self.findings} WHERE id = ANY(%(reopen)s) AND state = ANY(%(reopen_from)s)
                  FOR UPDATE),
     rewritten AS (
        UPDATE {self.findings} AS f SET {assignments}, sla_due = f.first_seen + (b.sla_due - b.first_seen),
            last_seen = %(now)s, last_import_id = %(run)s, gone = false,
            state = CASE WHEN f.id IN (SELECT id FROM reopened) THEN %(new)s ELSE f.state END,
            state_changed_at = CASE WHEN f.id IN (SELECT id FROM reopened) THEN %(now)s ELSE f.state_changed_at END
        FROM b WHERE f.scope_key = b.scope_key AND f.fingerprint = b.fingerprint)
SELECT id, state FROM reopened ORDER BY id"""
        with driver.server_bound_cursor() as cursor:
            cursor.execute(sql, {"lease": ImportRun.lease_from(timezone.now()), "run": self.run.pk, "now": self.now,
                                 "reopen": reopen, "reopen_from": [str(s) for s in REOPEN_FROM],
                                 "new": str(FindingState.NEW)})
            return cursor.fetchall()

    def add_words(self, words: dict[int, str]) -> None:
        self.dictionary.add(words)

    def close_vanished(self, scope_keys: list[str], close: Iterable[str], hold_packages: Iterable[str]) -> Moved:
        """A finding routed by hand arrives gone: open ones are closed, gone already or not."""
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
        state = CASE WHEN v.closing THEN %(closed)s ELSE f.state END,
        state_changed_at = CASE WHEN v.closing THEN %(now)s ELSE f.state_changed_at END
    FROM vanished v WHERE f.id = v.id)
SELECT id, state FROM vanished WHERE closing ORDER BY id"""
        with driver.server_bound_cursor() as cursor:
            cursor.execute(sql, {"scopes": scope_keys, "run": self.run.pk, "close": [str(s) for s in close],
                                 "now": self.now, "hold": list(hold_packages), "closed": str(FindingState.CLOSED)})
            return cursor.fetchall()

    def has_open(self, scope_keys: list[str]) -> bool:
        return open_reported([key for key in scope_keys if key not in self.empty])

    def held_open(self, scope_keys: list[str]) -> int:
        return open_not_reported(scope_keys)

    def scopes_seen(self, scope_keys: list[str]) -> None:
        scopes_seen(self.run, scope_keys, self.now)

    def close(self) -> None:
        self.dictionary.close()


class Dictionary:
    """Adds words to FindingTerm (governance.findings.search), committed at once on a connection of its own.

    Not in the import's transaction: two imports meeting the same new word would otherwise wait for each other
    until one commits (or deadlock). A word whose import later rolls back stays in the dictionary; that is
    harmless (it points at no finding).
    """

    def __init__(self):
        self._conn = None

    def add(self, words_by_hash: dict[int, str]) -> None:
        if not words_by_hash:
            return
        new = sorted(words_by_hash)  # sorted: two imports adding the same words cannot deadlock
        table = connection.ops.quote_name(FindingTerm._meta.db_table)
        sql = f"INSERT INTO {table} (hash, word) SELECT * FROM unnest(%s::bigint[], %s::text[]) ON CONFLICT DO NOTHING"
        if self._conn is None:
            self._conn = driver.autocommit_connection()
        driver.execute_on(self._conn, sql, [new, [words_by_hash[h] for h in new]], f"{len(new)} words")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
