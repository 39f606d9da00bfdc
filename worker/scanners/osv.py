"""osv-scanner JSON (`osv-scanner --format json`): `results[].source`,
`results[].packages[].package` and `.vulnerabilities[]` (full OSV entries),
plus `.groups[]` that join aliases (and, since v1.7, carry `max_severity`).
Streamed one `results[]` entry (one lockfile/SBOM) at a time.

One record per vulnerability group (falling back to one per vulnerability
when groups are absent), named by the group's first id; the other ids are
kept as aliases. Severity: the group's `max_severity` CVSS score, else the
advisory's `database_specific.severity` word, else "medium".

Fingerprint (v1): source path, ecosystem, package name, version and the
sorted ids of the group.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from ._common import cap_raw, check_depth, clip, cvss_severity, expect, fingerprint, json_items, open_report, severity
from .base import Record

FORMAT = "osv"
FINGERPRINT_VERSION = 1
EXPECTED = 'osv-scanner report: expected {"results": [{"source": ..., "packages": [...]}]}'


def sniff(head: bytes) -> bool:
    return head.lstrip().startswith(b"{") and b'"results"' in head and (b'"packages"' in head or b'"vulnerabilities"' in head)


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    for result in json_items(reader, "results.item"):
        expect(isinstance(result, dict), "osv-scanner results[] entry is not a JSON object")
        check_depth(result)
        source = str((result.get("source") or {}).get("path") or "")
        for pkg in result.get("packages") or []:
            expect(isinstance(pkg, dict), "osv-scanner packages[] entry is not a JSON object")
            yield from _package_records(source, pkg)


def _package_records(source: str, pkg: dict) -> Iterator[Record]:
    vulns = {str(v.get("id")): v for v in pkg.get("vulnerabilities") or [] if isinstance(v, dict)}
    groups = [g for g in pkg.get("groups") or [] if isinstance(g, dict) and g.get("ids")]
    if not groups:
        groups = [{"ids": [vid]} for vid in vulns]
    for group in groups:
        yield _record(source, pkg.get("package") or {}, group, vulns)


def _severity(group: dict, members: list[dict]) -> tuple[str, str]:
    score = group.get("max_severity")
    mapped = cvss_severity(score) if score not in (None, "") else None
    if mapped:
        return mapped, f"CVSS {score}"
    for vuln in members:
        word = (vuln.get("database_specific") or {}).get("severity")
        if word:
            return severity(word), str(word)
    return "medium", ""


def _record(source: str, package: dict, group: dict, vulns: dict) -> Record:
    ids = [str(i) for i in group["ids"]]
    members = [vulns[i] for i in ids if i in vulns]
    first = members[0] if members else {}
    name, version = str(package.get("name") or ""), str(package.get("version") or "")
    ecosystem = str(package.get("ecosystem") or "")
    rating, tool_severity = _severity(group, members)
    aliases = sorted({str(a) for v in members for a in v.get("aliases") or []} | set(ids[1:]))
    summary = str(first.get("summary") or first.get("details") or "")
    return Record(
        tool="osv-scanner",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, source, ecosystem, name, version, ",".join(sorted(ids))),
        title=clip(f"{ids[0]}: {summary}" if summary else f"{ids[0]} in {name} {version}", 300),
        severity=rating,
        tool_severity=tool_severity,
        rule_id=ids[0],
        location=f"{name}@{version}" if version else name,
        description=clip(str(first.get("details") or summary)),
        remediation=_fixed(members, name),
        artifact=source,
        package=name,
        raw=cap_raw({"source": source, "package": package, "ids": ids, "aliases": aliases,
                       "max_severity": group.get("max_severity"), "summary": summary}),
    )


def _fixed(members: list[dict], name: str) -> str:
    fixed = set()
    for vuln in members:
        for affected in vuln.get("affected") or []:
            for rng in (affected or {}).get("ranges") or []:
                fixed.update(str(e["fixed"]) for e in (rng or {}).get("events") or [] if "fixed" in (e or {}))
    return f"Upgrade {name} to {' or '.join(sorted(fixed))} or later." if fixed else "No fixed version is listed."
