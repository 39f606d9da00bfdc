"""findings_write: records in, findings de-duplicated, updated, reopened and closed.

The records are everything the run's scopes now hold: a scanner's report (parsed lazily, in a forked process
beside the database's work) or the findings Rampart's lineage rules produce (a list). What it writes: new
findings, findings whose content changed, findings that come back (reopened, or no longer gone) and the ones that
vanished. An unchanged finding is not written at all: its scope records the import that saw it (FindingScope),
which is what makes an identical reimport cheap and change nothing.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.conf import settings
from django.db import connection
from django.utils import timezone

from governance.findings.ingest import driver
from governance.findings.ingest.ahead import ForkedPrefetch, ThreadPrefetch, gc_paused, short_gil_slices
from governance.findings.ingest.prepare import Batch, Preparer, Router
from governance.findings.ingest.stores import COLUMNS, REOPEN_FROM, Existing, Moved, Store, store_for
from governance.findings.models import FindingState, FindingTransition, ImportRun
from worker.scanners import Incomplete, Record

log = logging.getLogger(__name__)


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

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "closed": self.closed, "reopened": self.reopened, "merged": self.merged, "held_open": self.held_open,
                "repaired": self.repaired}

    def nothing_reported(self) -> bool:
        return not (self.created or self.updated or self.unchanged or self.reopened or self.merged)


def findings_write(run: ImportRun, records: Iterable[Record | Incomplete], *, version: str,
                   now: datetime | None = None, empty_means_clean: bool = False) -> Counts:
    """Write `records` as the whole content of the run's scopes, in the caller's transaction.

    `version` is the fingerprint version the findings are stamped with. A list is written as it is; any other
    iterable is read ahead in a forked process (a thread off PostgreSQL), so parsing and the database's work
    overlap. `empty_means_clean`: no record at all means the scopes hold nothing (lineage rules); for a report it
    may mean the scan did not run, so nothing is closed then (see _reconcile)."""
    router = Router(run)
    keys = router.scope_keys()
    lock_scopes(keys)
    counts, now = Counts(), now or timezone.now()
    store = store_for(run, now, keys)
    try:
        binary_row = driver.binary_row_formatter(COLUMNS) if store.binary else None
        prepare = Preparer(run, version, router, now, binary_row)
        notes: list[Incomplete] = []
        with _batches_ahead(records, prepare, store) as batches:
            for batch in batches:
                notes += batch.notes
                _write_batch(store, prepare, batch, counts)
        _reconcile(store, run, keys, counts, now, notes, empty_means_clean)
    finally:
        store.close()
    return counts


def lock_scopes(scope_keys: Iterable[str]) -> None:
    """Take the transaction-long lock of each scope: whoever adds findings to a scope holds it (new rows are
    COPYed without ON CONFLICT, so two writers of one scope must never overlap). Sorted: no deadlock."""
    if connection.vendor == "postgresql":
        for key in sorted({zlib.crc32(k.encode()) for k in scope_keys}):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7331, key - 2**31])


@contextmanager
def _batches_ahead(records: Iterable, prepare: Preparer, store: Store) -> Iterator[Iterator[Batch]]:
    """Prepared batches of RAMPART_IMPORT_BATCH records. A lazy iterable (a report being parsed) is run ahead in a
    forked process on PostgreSQL (it never touches the database: its copy of the connection's socket is closed),
    in a thread elsewhere; a list is prepared here."""
    items = iter(records)
    batches = (prepare(chunk) for chunk in iter(lambda: list(islice(items, settings.RAMPART_IMPORT_BATCH)), []))
    prepare.ahead = store.expects_new()  # then each batch tells (_write_batch)
    with gc_paused():
        if isinstance(records, (list, tuple)):
            yield batches
            return
        if store.binary:
            producer, slices = ForkedPrefetch(batches, driver.socket_fds()), nullcontext()
        else:
            producer, slices = ThreadPrefetch(batches), short_gil_slices()
        producer.flag[0] = prepare.flag[0]
        prepare.flag = producer.flag  # shared with the producer's process
        with producer as prepared, slices:
            yield iter(prepared)
        if getattr(producer, "peak_rss_kib", 0):
            log.info("Import %s: the parsing process peaked at %.0f MiB resident (shared pages included)",
                     prepare.run.pk, producer.peak_rss_kib / 1024)


def _write_batch(store: Store, prepare: Preparer, batch: Batch, counts: Counts) -> None:
    """A fixed number of queries whatever the batch size: read the batch's existing rows, write the new ones,
    rewrite the ones that need it (and renew the lease)."""
    existing = store.existing(batch.hashes.keys(), batch.repeats)
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
    prepare.ahead = 2 * len(new_keys) > len(batch.hashes)
    store.insert([prepare.row(batch, key) for key in new_keys])
    moved = store.rewrite([(prepare.row(batch, key), old) for key, old in rewrite], [old.id for old in reopened])
    store.add_words(prepare.words(batch))
    counts.reopened -= len(reopened) - len(moved)  # a person moved it meanwhile: it was only rewritten
    counts.updated += len(reopened) - len(moved)
    _transitions(moved, FindingState.NEW, prepare.run, "Reported again by the scanner: reopened.", prepare.now)


def _reconcile(store: Store, run: ImportRun, keys: list[str], counts: Counts, now: datetime,
               notes: list[Incomplete], empty_means_clean: bool) -> None:
    """Findings of the run's scopes that the records no longer contain are gone; open ones are closed (a human
    decision is never overwritten). Then the scopes record this import as the one that saw the rest.

    A report that did not examine everything it covers (the parser's Incomplete notes: skipped dependencies, a
    failed scanner run; or no finding at all where the scope still has open ones) closes nothing it did not
    examine: those findings are gone but stay open, counted as `held_open`, and the import says why. A person
    then closes them from the import's page (services.import_run_close_held), or the next complete report does."""
    hold_all = any(not note.packages for note in notes)
    hold_packages = sorted({p.lower() for note in notes for p in note.packages})
    reasons = [note.reason for note in notes]
    # an empty report is suspect unless the parser said what it examined (it then noted what it did not)
    if not empty_means_clean and not notes and counts.nothing_reported() and store.has_open(keys):
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


def _transitions(moved: Moved, to_state: str, run: ImportRun, reason: str, now: datetime) -> None:
    if not moved:
        return
    FindingTransition.objects.bulk_create([
        FindingTransition(finding_id=pk, from_state=from_state, to_state=to_state, at=now, reason=reason,
                          import_run=run)
        for pk, from_state in moved
    ], batch_size=5000)
