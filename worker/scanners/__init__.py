"""Scanner report parsers: registry, format detection and parsing.

    from worker.scanners import parse
    for record in parse(uploaded_file, "auto"): ...

No Django in this package. Size limits are the caller's job.
"""
from __future__ import annotations

from types import ModuleType
from typing import BinaryIO, Iterator

from . import _common, garak, gitleaks, modelscan, osv, picklescan, pip_audit, sarif, trufflehog
from .base import SEVERITIES, Incomplete, ParseError, Record

# Order matters for detect(): the most specific sniffers first.
FORMATS: dict[str, ModuleType] = {
    m.FORMAT: m for m in (sarif, modelscan, pip_audit, osv, gitleaks, trufflehog, garak, picklescan)
}

# The tools' own spellings and common variants of a format's name (any case; "-" and "_" alike).
ALIASES = {"pipaudit": "pip_audit", "osv_scanner": "osv", "osvscanner": "osv", "trufflehog3": "trufflehog",
           "modelscan_json": "modelscan", "sarif_json": "sarif"}
LABELS = {"pip_audit": "pip-audit"}  # how the tool writes its name, where it differs from the format's key

__all__ = ["ALIASES", "FORMATS", "Incomplete", "LABELS", "ParseError", "Record", "SEVERITIES", "detect",
           "format_name", "parse"]


def format_name(name: str) -> str:
    """The FORMATS key (or "auto") for a format as people write it: "pip-audit", "PIP_AUDIT", "osv-scanner" …
    A name that is none of them comes back normalised, for the caller to refuse."""
    key = (name or "").strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key, key)


def detect(head: bytes) -> str:
    """The format name whose sniff() accepts the first bytes of a report."""
    _common.check_text(head[:_common.HEAD_SIZE])
    text = head[len(_common.UTF8_BOM):] if head.startswith(_common.UTF8_BOM) else head
    for name, module in FORMATS.items():
        if module.sniff(text):
            return name
    raise ParseError(f"Unrecognised report format; expected one of {', '.join(sorted(FORMATS))}")


def parse(stream: BinaryIO, fmt: str = "auto") -> Iterator[Record]:
    """Records from a binary stream; fmt is a FORMATS key or "auto".
    Works on non-seekable streams: the head is peeked and replayed."""
    if fmt == "auto":
        if getattr(stream, "seekable", lambda: False)():
            start = stream.tell()
            head = _common.read_up_to(stream, _common.HEAD_SIZE)
            stream.seek(start)
        else:
            stream = _common.HeadReader(stream)
            head = stream.head
        fmt = detect(head)
    module = FORMATS.get(format_name(fmt))
    if module is None:
        raise ParseError(f"Unknown report format {fmt!r}; expected one of {', '.join(sorted(FORMATS))}")
    return module.parse(stream)
