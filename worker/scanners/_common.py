"""Helpers shared by the report parsers: reading, JSON errors, severity,
fingerprints, raw-entry capping and secret redaction. No Django here."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tempfile
from typing import BinaryIO, Iterator

import ijson
import orjson

from .base import SEVERITIES, ParseError

HEAD_SIZE = 64 * 1024
MAX_DEPTH = 64
RAW_LIMIT = 8 * 1024
REDACTED = "(redacted)"
UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")

# Keys whose values may hold a secret or its surrounding text; removed from raw.
SECRET_KEYS = frozenset(
    k.lower() for k in ("Match", "Secret", "Raw", "RawV2", "Redacted", "Line", "line_content", "StructuredData")
)

_SEVERITY_WORDS = {
    "critical": "critical", "blocker": "critical", "fatal": "critical",
    "high": "high", "error": "high", "severe": "high", "dangerous": "high",
    "medium": "medium", "moderate": "medium", "warning": "medium", "warn": "medium",
    "low": "low", "minor": "low", "note": "low", "suspicious": "low",
    "info": "info", "informational": "info", "none": "info", "unknown": "info", "negligible": "info",
}


# ---------------------------------------------------------------- reading
class HeadReader(io.RawIOBase):
    """Reads the first HEAD_SIZE bytes up front (for sniffing) and then replays
    them, so a non-seekable stream can be peeked without losing data."""

    def __init__(self, stream: BinaryIO, size: int = HEAD_SIZE):
        self._stream = stream
        self.head = read_up_to(stream, size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:
        if self._pos < len(self.head):
            n = min(len(buf), len(self.head) - self._pos)
            buf[:n] = self.head[self._pos:self._pos + n]
        else:
            data = self._stream.read(len(buf))
            n = len(data)
            buf[:n] = data
        self._pos += n
        return n


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        if isinstance(chunk, str):
            raise ParseError("report must be opened in binary mode")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def open_report(stream: BinaryIO, sniff, expected: str) -> tuple[BinaryIO, bytes]:
    """Peek the head, check it is non-empty UTF-8 text of the wanted format.
    Returns (reader positioned after any UTF-8 BOM, head without BOM)."""
    if getattr(stream, "seekable", lambda: False)():
        start = stream.tell()
        head = read_up_to(stream, HEAD_SIZE)
        stream.seek(start)
        reader = stream
    else:
        reader = HeadReader(stream)
        head = reader.head
    check_text(head)
    if head.startswith(UTF8_BOM):
        reader.read(len(UTF8_BOM))
        head = head[len(UTF8_BOM):]
    if not sniff(head):
        raise ParseError(f"not a {expected}")
    return reader, head


def check_text(head: bytes) -> None:
    if not head.strip():
        raise ParseError("empty report")
    if head.startswith(_OTHER_BOMS) or b"\x00" in head:
        raise ParseError("report is not UTF-8 text (it looks like UTF-16/32 or binary data)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut by the head limit is fine
            raise ParseError(f"report is not UTF-8 text (invalid byte at offset {exc.start})") from None


def spooled_copy(reader: BinaryIO) -> BinaryIO:
    """A seekable copy of a non-seekable stream (in memory up to 8 MiB, then on disk)."""
    tmp = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    shutil.copyfileobj(reader, tmp, 1024 * 1024)
    tmp.seek(0)
    return tmp


# ---------------------------------------------------------------- JSON
class BracketGuard:
    """Wraps a binary reader for ijson. ijson's cost grows with depth × events,
    so thousands of nested levels would take minutes: reject a stream whose
    running count of opening minus closing brackets passes GUARD_BALANCE
    (brackets inside strings are counted too; real reports stay far below).
    The exact MAX_DEPTH check happens on every entry we keep (cap_raw).

    It also replaces escapes of half a UTF-16 surrogate pair (\\ud800 alone) by
    \\ufffd: ijson's C parser turns a lone low half into bytes that are not
    UTF-8 and stops the whole parse on it. Same length, so positions hold."""

    GUARD_BALANCE = 10_000

    def __init__(self, reader: BinaryIO):
        self._reader = reader
        self._read = 0
        self._balance = 0
        self._held = b""  # the end of the last chunk, when an escape may continue in the next one

    def read(self, size: int = -1) -> bytes:
        while True:
            new = self._reader.read(size)
            chunk, self._held = _repair_halves(self._held + new if self._held else new, final=not new or size < 0)
            if chunk or not new:  # b"" only at the end of the stream: ijson takes it for EOF
                break
        self._read += len(chunk)
        self._balance += chunk.count(b"[") + chunk.count(b"{") - chunk.count(b"]") - chunk.count(b"}")
        if self._balance > self.GUARD_BALANCE:
            raise ParseError(f"JSON nesting deeper than {MAX_DEPTH} levels (near byte {self._read})")
        return chunk

    def tell(self) -> int:
        return self._read


_SURROGATE_START = re.compile(rb"\\[uU][dD][89a-fA-F]")
_SURROGATE_ESCAPES = re.compile(rb"(\\+)[uU]([dD][89a-fA-F][0-9a-fA-F]{2})(?:\\[uU]([dD][c-fC-F][0-9a-fA-F]{2}))?")


def _repair_halves(buf: bytes, final: bool) -> tuple[bytes, bytes]:
    """(bytes ready for the parser, bytes to keep for the next read): escapes of half a surrogate pair replaced. Near
    the end of a buffer an escape may be cut, or a high half may be followed by its low half in the next read: those
    bytes wait (at most 11, plus a run of backslashes)."""
    if not _SURROGATE_START.search(buf):  # the usual case: nothing to repair
        if final or b"\\" not in buf[-11:]:  # and no escape that the next read could complete: no copy
            return buf, b""
        limit = _before_backslashes(buf, len(buf) - 11)
        return buf[:limit], buf[limit:]
    limit = len(buf) if final else _before_backslashes(buf, len(buf) - 11)
    out, pos = [], 0
    for m in _SURROGATE_ESCAPES.finditer(buf):
        if m.start() >= limit:
            break
        if not final and (m.end() > limit or len(buf) - m.end() < 6):  # its low half may come next: decide later
            limit = m.start()
            break
        out += [buf[pos:m.start()], _replace_half(m)]
        pos = m.end()
    out.append(buf[pos:limit])
    return b"".join(out), buf[limit:]


def _before_backslashes(buf: bytes, limit: int) -> int:
    """The limit moved back so that a run of backslashes (whose parity decides what follows) is not cut."""
    limit = max(0, limit)
    while limit > 0 and buf[limit - 1] == 0x5C:
        limit -= 1
    return limit


def _replace_half(m: re.Match) -> bytes:
    slashes, first, low = m.group(1), int(m.group(2), 16), m.group(3)
    if len(slashes) % 2 == 0:  # the backslash is itself escaped: plain text, not an escape
        return m.group(0)
    if first <= 0xDBFF and low:  # a whole pair
        return m.group(0)
    fixed = slashes[:-1] + b"\\ufffd"
    return fixed + (b"\\ufffd" if low else b"")  # a low half after a low half is alone too


def json_items(reader: BinaryIO, prefix: str) -> Iterator:
    """Stream the objects under `prefix`, turning parser errors into ParseError."""
    guarded = BracketGuard(reader)
    try:
        # depth is checked exactly when the entry is copied into raw (see cap_raw)
        yield from ijson.items(guarded, prefix, use_float=True)
    except ijson.JSONError as exc:
        raise json_error(exc, guarded) from None


def json_error(exc: Exception, reader: BinaryIO) -> ParseError:
    text = str(exc)
    pos = reader.tell()  # BracketGuard counts bytes; never raises
    if "invalid bytes in UTF8" in text:
        return ParseError(f"report is not UTF-8 text (invalid bytes at or before byte {pos})")
    reason = text.strip().strip("b'\"").splitlines()[0] if text.strip() else "invalid JSON"
    if "premature EOF" in reason:
        return ParseError(f"report is truncated: JSON ends early at byte {pos}")
    return ParseError(f"malformed JSON at or before byte {pos}: {reason}")


def load_json_text(data: bytes, where: str = "") -> object:
    """json.loads for one small document or one JSON line, with exact positions."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"report is not UTF-8 text (invalid byte at offset {exc.start}{where})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if where else f"line {exc.lineno} column {exc.colno}"
        raise ParseError(f"malformed JSON{where} at {at}: {exc.msg}") from None
    except RecursionError:
        raise ParseError(f"JSON nesting deeper than {MAX_DEPTH} levels{where}") from None
    check_depth(value, where=where)
    if "\\ud" in text or "\\uD" in text:  # maybe half a UTF-16 pair, which no UTF-8 text can hold
        value = _without_half_pairs(value)
    return value


_HALF_PAIR = re.compile("[\ud800-\udfff]")  # json.loads joins whole pairs: what is left is half of one


def _without_half_pairs(value):
    if type(value) is str:
        return _HALF_PAIR.sub("\ufffd", value)
    if type(value) is dict:
        return {_without_half_pairs(k): _without_half_pairs(v) for k, v in value.items()}
    if type(value) is list:
        return [_without_half_pairs(v) for v in value]
    return value


def check_depth(value, limit: int = MAX_DEPTH, where: str = "") -> None:
    if _too_deep(value, limit):
        raise ParseError(f"JSON nesting deeper than {limit} levels{where}")


def _too_deep(value, left: int) -> bool:
    if left <= 0:
        return True
    if type(value) is dict:
        values = value.values()
    elif type(value) is list:
        values = value
    else:
        return False
    for v in values:
        if (type(v) is dict or type(v) is list) and _too_deep(v, left - 1):
            return True
    return False


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise ParseError(message)


# ---------------------------------------------------------------- severity
def severity(word, default: str = "medium") -> str:
    """Map a tool's severity word to one of SEVERITIES."""
    if word is None:
        return default
    key = str(word).strip().lower()
    if key in SEVERITIES:
        return key
    return _SEVERITY_WORDS.get(key, default)


def cvss_severity(score) -> str | None:
    """CVSS-style 0–10 score to a severity (GitHub's security-severity bands)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return None
    if value >= 9.0:
        return "critical"
    if value >= 7.0:
        return "high"
    if value >= 4.0:
        return "medium"
    if value > 0.0:
        return "low"
    return "info"


# ---------------------------------------------------------------- fingerprints and raw
def fingerprint(fmt: str, version: int, *parts) -> str:
    """sha256 over format, version and the identifying parts, separated by NUL."""
    material = "\0".join([fmt, str(version), *[("" if p is None else str(p)) for p in parts]])
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


class Occurrences:
    """Numbers the places where the same fallback identity (same rule, file and snippet) is met in one report:
    the same call at two lines of a file is two findings (#1, #2), while the very same entry twice (same line) is
    one. Numbered in the report's order, so moving the lines keeps each finding. Keys are kept as 64-bit hashes
    (two keys sharing one only renumber each other); past LIMIT distinct keys it stops numbering and answers None
    (the caller then qualifies the identity with the line), so memory stays bounded."""

    LIMIT = 500_000

    def __init__(self):
        self._lines: dict[int, object] = {}  # key hash -> its first line, or the list of its lines in order

    def number(self, key: str, line) -> int | None:
        h = hash(key)
        seen = self._lines.get(h)
        if seen is None:
            if len(self._lines) >= self.LIMIT:
                return None
            self._lines[h] = line
            return 1
        if type(seen) is not list:
            if seen == line:
                return 1
            seen = self._lines[h] = [seen]
        if line in seen:
            return seen.index(line) + 1
        seen.append(line)
        return len(seen)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RawEntry(dict):
    """A raw entry that also carries its JSON text, so the importer does not encode it a second time."""

    __slots__ = ("json",)


def cap_raw(entry: dict, limit: int = RAW_LIMIT) -> RawEntry:
    """A JSON-safe copy of entry no larger than ~limit bytes; marked when cut.
    Also enforces MAX_DEPTH on the entry (cheap pre-check: nesting needs brackets)."""
    text = _dumps(entry)
    if text.count("{") + text.count("[") > MAX_DEPTH:
        check_depth(entry)
    if len(text) > limit:
        entry = {"_truncated": True, "_original_size": len(text), "_json_prefix": text[:limit] + "…(truncated)"}
        text = json.dumps(entry)
    raw = RawEntry(entry)
    raw.json = text
    return raw


def _dumps(entry) -> str:
    """Compact JSON text. orjson is ~10x faster than json (this runs once per finding of a 100k report); it
    refuses what JSON parsers can still hand us (integers past 64 bits, NaN from json.loads), so fall back."""
    try:
        return orjson.dumps(entry).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(entry, default=str, check_circular=False, separators=(",", ":"))
    except RecursionError:
        raise ParseError(f"JSON nesting deeper than {MAX_DEPTH} levels") from None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (no database text holds it) and halves of UTF-16 pairs
TEXT_FIELDS = ("tool", "title", "tool_severity", "rule_id", "location", "description", "remediation", "artifact",
               "package")


def repair_record(record) -> bool:
    """Replace what no database text can hold (NUL, half a UTF-16 surrogate pair) by U+FFFD in a record's texts and
    raw entry, in place. Returns whether anything was replaced. The check is one scan of the raw entry's JSON text
    and of the fields' text (callers run it on the entries that look suspect only: see may_need_repair)."""
    changed = False
    for name in TEXT_FIELDS:
        value = getattr(record, name)
        if isinstance(value, str) and _UNSTORABLE.search(value):
            setattr(record, name, _UNSTORABLE.sub("\ufffd", value))
            changed = True
    raw = record.raw
    text = getattr(raw, "json", None)
    if text is not None and ("\\u0000" in text or _ESCAPED_HALF.search(text) or _UNSTORABLE.search(text)):
        record.raw = cap_raw(_repaired(json.loads(text)))
        changed = True
    elif text is None and isinstance(raw, dict):
        fixed = _repaired(raw)
        changed = changed or fixed != raw
        record.raw = fixed
    return changed


_ESCAPED_HALF = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # in JSON text written with ensure_ascii


def _repaired(value):
    if type(value) is str:
        return _UNSTORABLE.sub("\ufffd", value)
    if type(value) is dict:
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    if type(value) is list:
        return [_repaired(v) for v in value]
    return value


def clip(text, limit: int = 2000) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + "…(truncated)"


# ---------------------------------------------------------------- secrets
def redact_secret(secret: str) -> str:
    """`AKIA…(redacted, 20 chars)`: a 4-character prefix only for long secrets."""
    secret = secret or ""
    prefix = secret[:4] if len(secret) >= 16 else ""
    return f"{prefix}…(redacted, {len(secret)} chars)"


def scrub(value, secrets: tuple[str, ...] = ()):
    """Drop secret-bearing keys and replace any occurrence of the given secrets."""
    if isinstance(value, dict):
        return {k: (REDACTED if _secret_field(k, v) else scrub(v, secrets)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        return scrub_text(value, secrets)
    return value


def _secret_field(key, value) -> bool:
    # numbers stay: trufflehog's "line" is a line number, gitleaks' "Line" is text
    return str(key).lower() in SECRET_KEYS and isinstance(value, (str, dict, list))


def scrub_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text
