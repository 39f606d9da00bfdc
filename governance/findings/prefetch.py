"""Parsing beside the database: a generator run in a thread a few items ahead, and short GIL slices while it runs.

Used by the import (governance.findings.ingest): the thread parses and hashes, the calling thread keeps the
database connection and the transaction.
"""
from __future__ import annotations

import gc
import queue
import sys
import threading
from contextlib import contextmanager

_paused = 0
_paused_lock = threading.Lock()


@contextmanager
def gc_paused():
    """No cyclic garbage collection while an import runs (reference counting still frees every record).

    A report of 100k findings allocates millions of short-lived objects; each allocation burst triggers
    collections that also rescan every long-lived object of the Django process, which made parsing 20-40%
    slower (bench/README.md). Nested or concurrent imports keep it paused until the last one ends.
    """
    global _paused
    with _paused_lock:
        _paused += 1
        if _paused == 1:
            gc.disable()
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0:
                gc.enable()


@contextmanager
def short_gil_slices(seconds: float = 0.0005):
    """While the parse thread runs, hand the GIL over after 0.5 ms instead of 5 ms.

    Every time this thread comes back from PostgreSQL it needs the GIL, and with the default interval it waits
    up to 5 ms for the parse thread to let go: dozens of times per batch. Measured: a fresh 100k import
    9.4 s → 6.8 s. The worker runs one task per process, so the setting affects nothing else.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class Prefetch:
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
