"""Helpers for the scanner parser tests (no Django, no database)."""
from __future__ import annotations

import io
from dataclasses import fields
from pathlib import Path

from worker.scanners import FORMATS, Incomplete, parse
from worker.scanners.base import SEVERITIES

DATA = Path(__file__).resolve().parent.parent / "data" / "scanners"


def records(path: str, fmt: str):
    """The findings of a report (notes such as Incomplete left out: see notes())."""
    out = [r for r in everything(path, fmt) if not isinstance(r, Incomplete)]
    for rec in out:
        assert rec.severity in SEVERITIES
        assert len(rec.fingerprint) == 64
    return out


def everything(path: str, fmt: str):
    with open(DATA / path, "rb") as f:
        return list(parse(f, fmt))


def notes(path: str, fmt: str) -> list:
    return [r for r in everything(path, fmt) if isinstance(r, Incomplete)]


def records_from_bytes(data: bytes, fmt: str):
    return list(FORMATS[fmt].parse(io.BytesIO(data)))


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: read() only, small chunks, no seek/tell."""

    def __init__(self, data: bytes, chunk: int = 1000):
        self._data, self._pos, self._chunk = data, 0, chunk

    def readable(self):
        return True

    def readinto(self, buf):
        n = min(len(buf), self._chunk, len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def all_text(rec) -> str:
    """Every field of a record as one string (raw included), plus its repr."""
    return "\n".join(str(getattr(rec, f.name)) for f in fields(rec)) + "\n" + repr(rec)


def read(path: str) -> bytes:
    return (DATA / path).read_bytes()
