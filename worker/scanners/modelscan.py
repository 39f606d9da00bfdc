"""ModelScan JSON (`modelscan -p DIR -r json -o out.json`).

Two layouts:
- current (0.7+): {"summary": {...}, "issues": [{severity, description,
  operator, module, source, scanner}], "errors": [{category, description, source}]}
- older (≤0.5): {"summary": ..., "issues_by_severity": {"CRITICAL": [...]},
  "errors": ["message", ...]}
Issues become records with ModelScan's severity; scan errors become "info"
records (a model that could not be scanned is worth seeing). Reports are
small, so the document is loaded whole.

Fingerprint (v1): source path, module and operator (the unsafe global), so
the same unsafe call in the same file is one finding across runs; errors use
source and error category (or the message for the old string layout).
"""
from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from ._common import cap_raw, clip, expect, fingerprint, load_json_text, open_report, severity
from .base import Record

FORMAT = "modelscan"
FINGERPRINT_VERSION = 1
EXPECTED = 'ModelScan report: expected a JSON object with "summary" and "issues" or "issues_by_severity"'
REMEDIATION = "Do not load this model; use a safe format such as safetensors or rebuild it from a trusted source."


_IN_ARCHIVE = re.compile(r"^(.+?\.(?:pt|pth|bin|ckpt|zip|npz|npy|keras|h5|tar|7z|mar|joblib|pkl)):(.+)$")


def artifact_path(source: str) -> str:
    """`models/m.pt:archive/data.pkl` (a pickle inside an archive) -> `models/m.pt`."""
    match = _IN_ARCHIVE.match(source)
    return match.group(1) if match else source


def sniff(head: bytes) -> bool:
    return (head.lstrip().startswith(b"{") and b'"summary"' in head
            and (b'"issues"' in head or b'"issues_by_severity"' in head or b"modelscan_version" in head))


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    doc = load_json_text(reader.read())
    expect(isinstance(doc, dict) and ("issues" in doc or "issues_by_severity" in doc), f"not a {EXPECTED}")
    return _records(doc)


def _records(doc: dict) -> Iterator[Record]:
    issues = doc.get("issues")
    if isinstance(issues, list):
        for issue in issues:
            yield _issue(issue, issue.get("severity") if isinstance(issue, dict) else None)
    for level, group in (doc.get("issues_by_severity") or {}).items():
        for issue in group or []:
            yield _issue(issue, level)
    for error in doc.get("errors") or []:
        yield _error(error)


def _issue(issue, level) -> Record:
    expect(isinstance(issue, dict), "ModelScan issue is not a JSON object")
    source = str(issue.get("source") or "")
    module, operator = str(issue.get("module") or ""), str(issue.get("operator") or "")
    rule = f"{module}.{operator}" if module or operator else str(issue.get("scanner") or "modelscan")
    return Record(
        tool="modelscan",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "issue", source, module, operator),
        title=clip(issue.get("description") or f"Unsafe operator {rule}", 300),
        severity=severity(level, "high"),
        tool_severity=str(level or ""),
        rule_id=rule,
        location=source,
        description=clip(f"{issue.get('description') or ''} (scanner {issue.get('scanner') or '?'})"),
        remediation=REMEDIATION,
        artifact=artifact_path(source),
        raw=cap_raw(issue),
    )


def _error(error) -> Record:
    if isinstance(error, dict):
        source, category = str(error.get("source") or ""), str(error.get("category") or "error")
        message, key = str(error.get("description") or category), category
        raw = error
    else:
        message, source, category = str(error), "", "error"
        key, raw = message, {"message": message}
    return Record(
        tool="modelscan",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "error", source, key),
        title=clip(f"ModelScan could not scan {source or 'a file'}: {category}", 300),
        severity="info",
        tool_severity="ERROR",
        rule_id=f"scan-error:{category}",
        location=source,
        description=clip(message),
        artifact=artifact_path(source),
        raw=cap_raw(raw),
    )
