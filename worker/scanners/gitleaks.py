"""gitleaks JSON report (`gitleaks detect -f json`): a JSON array of findings
with RuleID, File, StartLine, Commit, Secret, Match ... Streamed item by item.

The secret never leaves this module: title/description/location/raw hold the
rule, file, line and commit only; raw gets `secret_sha256` and a redacted form,
and `Secret`, `Match` and `Line` are scrubbed, the commit `Message` (free text
that may quote any secret) is dropped, and any other occurrence of the
finding's own secret text is replaced.

Fingerprint (v1): RuleID, File, Commit and sha256 of the secret. The line is
left out so a finding keeps its identity when lines above it move; the same
secret in the same file and commit is one finding. Without a commit (--no-git
scans) the commit part is empty.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from ._common import (cap_raw, check_depth, expect, fingerprint, json_items, open_report, redact_secret, scrub,
                      scrub_text, sha256_text)
from .base import Record

FORMAT = "gitleaks"
FINGERPRINT_VERSION = 1
EXPECTED = "gitleaks report: expected a JSON array of findings with RuleID, File and Secret"
SEVERITY = "high"  # gitleaks has no severity; a committed credential is treated as high


def sniff(head: bytes) -> bool:
    """A JSON array of objects with gitleaks' first keys. "Secret" comes after "Match" and "Line", which can be longer
    than the head on their own: the keys before them decide."""
    text = head.lstrip()
    return text.startswith(b"[") and (text[1:].lstrip().startswith(b"]") or (
        b'"RuleID"' in head and (b'"Secret"' in head or b'"StartLine"' in head or b'"StartColumn"' in head)))


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    for number, item in enumerate(json_items(reader, "item"), 1):
        expect(isinstance(item, dict) and "RuleID" in item, f"finding #{number} is not a gitleaks finding (no RuleID)")
        check_depth(item, where=f" in finding #{number}")
        yield _record(item)


def _record(item: dict) -> Record:
    secret = str(item.get("Secret") or "")
    secrets = tuple(s for s in {secret, str(item.get("Match") or "")} if s)
    rule = scrub_text(str(item.get("RuleID") or ""), secrets)
    path = scrub_text(str(item.get("File") or ""), secrets)
    line = item.get("StartLine") if isinstance(item.get("StartLine"), int) else None
    commit = str(item.get("Commit") or "")
    secret_hash = sha256_text(secret)
    raw = scrub(item, secrets)
    raw.pop("Message", None)  # free-text commit message: may quote other findings' secrets
    raw["secret_sha256"] = secret_hash
    raw["secret_redacted"] = redact_secret(secret)
    where = f"{path}:{line}" if line else path
    description = f"{scrub_text(str(item.get('Description') or rule), secrets)} in {where}"
    if commit:
        description += f" (commit {commit[:12]})"
    return Record(
        tool="gitleaks",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, rule, path, commit, secret_hash),
        title=f"Secret detected: {rule}",
        severity=SEVERITY,
        tool_severity="",
        rule_id=rule,
        location=where,
        description=description + f"; secret {redact_secret(secret)}",
        remediation="Revoke and rotate the credential, then remove it from the repository history.",
        artifact=path,
        line=line,
        raw=cap_raw(raw),
    )
