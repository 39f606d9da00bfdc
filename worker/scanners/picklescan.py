"""picklescan text output (`picklescan -p DIR`, stdout+stderr). picklescan has
no JSON output (checked in 1.0.5: no such option), so its log lines are read:

    /path/model.pkl: dangerous import 'posix system' FOUND
    /path/model.pt:archive/data.pkl: dangerous import 'posix system' FOUND
    /path/x.pkl: dangerous import 'mylib Layer' FOUND (promoted by --strict)
    WARNING: could not parse /path/bad.pkl as pickle: <reason>
    ERROR: parsing pickle in /path/bad.pkl: <reason>
    ----------- SCAN SUMMARY -----------
    Scanned files: 7 ...

Dangerous imports are critical ("high" when only promoted by --strict);
files that could not be parsed are "info" records. Other lines (summary,
"All globals found" lists, INFO logs) are ignored. The text is read line by
line; a line that is not UTF-8 raises ParseError with its number.

Fingerprint (v1): file path, module and name of the global (the path inside
an archive included), so one unsafe global in one file is one finding.
"""
from __future__ import annotations

import io
import re
from typing import BinaryIO, Iterator

from ._common import HeadReader, clip, fingerprint, open_report, severity
from .base import ParseError, Record
from .modelscan import artifact_path

FORMAT = "picklescan"
FINGERPRINT_VERSION = 1
EXPECTED = "picklescan output: expected lines like \"<file>: dangerous import '<module> <name>' FOUND\" or its SCAN SUMMARY"

_FOUND = re.compile(r"^(?P<file>.+): (?P<level>dangerous|suspicious|innocuous) import '(?P<module>\S+) (?P<name>[^']*)' FOUND(?P<strict> \(promoted by --strict\))?\s*$")
_UNPARSED = re.compile(r"^(?:WARNING: could not parse (?P<file>.+?) as pickle|ERROR: parsing pickle in (?P<file2>.+?)): (?P<reason>.*)$")
_SUMMARY = b"----------- SCAN SUMMARY -----------"


def sniff(head: bytes) -> bool:
    return _SUMMARY in head or re.search(rb"^.+: dangerous import '[^']+' FOUND", head, re.M) is not None


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    if isinstance(reader, HeadReader) or not hasattr(reader, "readline"):
        reader = io.BufferedReader(reader)
    return _records(reader)


def _records(reader) -> Iterator[Record]:
    for number, raw_line in enumerate(reader, 1):
        try:
            line = raw_line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise ParseError(f"report is not UTF-8 text (line {number})") from None
        found = _FOUND.match(line)
        if found:
            yield _found(found, line)
            continue
        unparsed = _UNPARSED.match(line)
        if unparsed:
            yield _unparsed(unparsed, line)


def _found(m: re.Match, line: str) -> Record:
    path, module, name = m.group("file"), m.group("module"), m.group("name")
    strict = bool(m.group("strict"))
    level = m.group("level")
    rating = "high" if strict else ("critical" if level == "dangerous" else severity(level, "low"))
    tool_severity = level + (" (promoted by --strict)" if strict else "")
    return Record(
        tool="picklescan",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "global", path, module, name),
        title=f"{level.capitalize()} pickle import {module}.{name}",
        severity=rating,
        tool_severity=tool_severity,
        rule_id=f"{module}.{name}",
        location=path,
        description=f"The pickle in {path} imports {module}.{name}, which runs code when the file is loaded.",
        remediation="Do not load this pickle; convert the model to safetensors or rebuild it from a trusted source.",
        artifact=artifact_path(path),
        raw={"line": line} if len(line) < 2000 else {"line": clip(line, 2000)},
    )


def _unparsed(m: re.Match, line: str) -> Record:
    path = m.group("file") or m.group("file2")
    return Record(
        tool="picklescan",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "unparsed", path),
        title=f"picklescan could not parse {path}",
        severity="info",
        tool_severity="WARNING" if line.startswith("WARNING") else "ERROR",
        rule_id="parse-error",
        location=path,
        description=clip(m.group("reason")),
        artifact=artifact_path(path),
        raw={"line": clip(line, 2000)},
    )
