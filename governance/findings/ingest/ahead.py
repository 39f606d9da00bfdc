"""Parsing beside the database: a generator run ahead of its consumer, in a forked process or in a thread.

Used by the import (governance.findings.ingest.write): the producer parses, hashes and builds rows; the consumer
keeps the database connection and the transaction.
"""
from __future__ import annotations

import fcntl
import gc
import mmap
import os
import pickle
import queue
import signal
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


class ThreadPrefetch:
    """Run a generator in a thread, at most `depth` items ahead; its exceptions are raised in the caller.

    The thread only parses and encodes (no database access): the import's connection and transaction stay
    in the calling thread. While that thread waits for PostgreSQL (psycopg releases the GIL), the next batch is
    being parsed, so the two cores work at once. Memory stays bounded by `depth` batches.
    """

    _END = object()

    def __init__(self, items, depth: int = 2):
        self._items = items
        self.flag = bytearray(b"\x01")  # steers the producer (see ForkedPrefetch)
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


class ParserLost(Exception):
    """The parsing process ended without finishing (killed by a signal or the kernel's OOM killer): the import
    is worth another attempt (the task retries it; imports.MAX_ATTEMPTS bounds the attempts)."""


class ForkedPrefetch:
    """Run a generator in a forked child process; its items come back pickled through a pipe, in order.

    A thread shares the interpreter lock: parsing a report and feeding PostgreSQL then take turns on one core
    (measured: the thread costs 30-40% more CPU than doing both in a row). The child has its own interpreter
    on the other core. It was forked after everything was loaded, so it starts at once, and it never touches
    the database: the parent keeps the connection and the transaction (the child closes its copy of the
    connection's socket, `close_in_child`, so a dead parent's session ends with the parent). Items must pickle
    (and should be made of strings and bytes: objects with many small parts pickle slowly).

    `flag` is one byte shared with the child (an anonymous shared mapping), for the consumer to steer the
    producer (ingest: build rows ahead or not). The child's exceptions (ParseError, MemoryError ...) are
    raised in the parent. The child ignores the signals that stop a service (they are sent to the whole
    process group: the parent decides when the child ends, and kills it on the way out). If the parent stops
    early or dies, the child's next write fails and it exits. If fork() fails, a thread runs the generator.
    """

    def __init__(self, items, close_in_child: tuple[int, ...] = ()):
        self._items, self._close_in_child = items, close_in_child
        self.flag = mmap.mmap(-1, 1)
        self.flag[0] = 1  # a new mapping is zeros; start as ThreadPrefetch does
        self._pid = self._reader = self._thread = None
        self.peak_rss_kib = 0  # the child's peak resident memory, once it has ended

    def __enter__(self):
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # an item in a few writes, not forty
        except OSError:
            pass  # a smaller pipe only costs more context switches
        try:
            pid = os.fork()
        except OSError:  # no process to spare (ulimit, memory): parse in a thread instead
            os.close(read_fd)
            os.close(write_fd)
            self._thread = ThreadPrefetch(self._items)
            self._thread.flag = self.flag
            return self._thread.__enter__()
        if pid == 0:  # the child: produce, then leave without running any of the parent's cleanup
            os.close(read_fd)
            self._produce(write_fd)
        os.close(write_fd)
        self._pid, self._reader = pid, os.fdopen(read_fd, "rb", buffering=1 << 20)
        return self

    def _produce(self, write_fd: int) -> None:
        status = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_IGN)
            for fd in self._close_in_child:
                os.close(fd)
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                try:
                    for item in self._items:
                        pickle.dump(("item", item), out, protocol=pickle.HIGHEST_PROTOCOL)
                        out.flush()  # all of it now: the parent must not wait for the next item to get this one
                    pickle.dump(("end", None), out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()
                    status = 0
                except BrokenPipeError:
                    pass  # the parent is gone or stopped reading
                except BaseException as exc:  # ParseError, OSError, MemoryError ...: raised in the parent
                    try:
                        pickle.dumps(exc)
                    except Exception:
                        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
                    pickle.dump(("error", exc), out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()
        finally:
            os._exit(status)

    def __iter__(self):
        while True:
            try:
                kind, value = pickle.load(self._reader)
            except (EOFError, pickle.UnpicklingError):
                raise ParserLost("The parsing process stopped before the end of the report (killed?).") from None
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None:
            self._thread.__exit__(*exc_info)
            return
        self._reader.close()
        try:
            os.kill(self._pid, signal.SIGKILL)  # a no-op when it has finished
        except ProcessLookupError:
            pass
        self.peak_rss_kib = os.wait4(self._pid, 0)[2].ru_maxrss
        self.flag.close()
