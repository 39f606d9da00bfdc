"""pip-audit JSON (`pip-audit -f json`).

Layouts: current `{"dependencies": [{name, version, vulns: [{id, fix_versions,
aliases, description}]}], "fixes": [...]}` and the older top-level list of
dependencies. Dependencies that were skipped (`skip_reason`, e.g. "not found on
PyPI and could not be audited") were not examined: they yield an Incomplete
note naming them, after the records, so their earlier findings are not closed.
pip-audit reports no severity, so every vulnerability is "high"
(tool_severity empty). Reports are small; the document is loaded whole.

Fingerprint (v1): package name (normalised), installed version and vuln id.
"""
from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from ._common import cap_raw, clip, expect, fingerprint, load_json_text, open_report
from .base import Incomplete, Record

FORMAT = "pip_audit"
FINGERPRINT_VERSION = 1
EXPECTED = 'pip-audit report: expected {"dependencies": [...]} or a list of {name, version, vulns}'


def sniff(head: bytes) -> bool:
    text = head.lstrip()
    if text.startswith(b"{"):
        return b'"dependencies"' in head and (b'"vulns"' in head or b'"skip_reason"' in head or b'"fixes"' in head)
    return text.startswith(b"[") and b'"vulns"' in head and b'"name"' in head


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    doc = load_json_text(reader.read())
    deps = doc.get("dependencies") if isinstance(doc, dict) else doc
    expect(isinstance(deps, list), f"not a {EXPECTED}")
    return _records(deps)


def _records(deps: list) -> Iterator[Record | Incomplete]:
    skipped = []
    for dep in deps:
        expect(isinstance(dep, dict) and "name" in dep, "pip-audit dependency entry has no name")
        if dep.get("skip_reason"):
            skipped.append(str(dep["name"]))
        for vuln in dep.get("vulns") or []:
            expect(isinstance(vuln, dict) and vuln.get("id"), f"vulnerability of {dep['name']} has no id")
            yield _record(dep, vuln)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        yield Incomplete(f"pip-audit skipped {len(skipped)} of {len(deps)} dependencies (not audited: {shown}).",
                         packages=tuple(skipped))


def _record(dep: dict, vuln: dict) -> Record:
    name, version = str(dep["name"]), str(dep.get("version") or "")
    vid = str(vuln["id"])
    fixes = [str(v) for v in vuln.get("fix_versions") or []]
    aliases = [str(a) for a in vuln.get("aliases") or []]
    title = f"{vid} in {name} {version}".strip()
    if aliases:
        title += f" ({', '.join(aliases[:3])})"
    return Record(
        tool="pip-audit",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, re.sub(r"[-_.]+", "-", name.lower()), version, vid),
        title=clip(title, 300),
        severity="high",
        tool_severity="",
        rule_id=vid,
        location=f"{name}@{version}" if version else name,
        description=clip(vuln.get("description") or ""),
        remediation=f"Upgrade {name} to {' or '.join(fixes)}." if fixes else "No fixed version is known yet.",
        package=name,
        raw=cap_raw({"name": name, "version": version, **vuln}),
    )
