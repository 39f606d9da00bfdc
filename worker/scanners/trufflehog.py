"""trufflehog v3 `--json` output: one JSON object per line with SourceMetadata,
DetectorName, Verified, Raw, RawV2, Redacted, ExtraData ...

The secret never leaves this module: Raw, RawV2, Redacted and StructuredData
are scrubbed from raw (and any other occurrence of the secret text replaced);
raw gets `secret_sha256` and a redacted form instead.

Severity: verified secrets are critical (trufflehog proved them live),
unverified ones high. tool_severity says "verified"/"unverified".

Fingerprint (v1): DetectorName, the source location (file, or repository
plus file) and commit, and sha256 of the secret (Raw, or RawV2 when present).
The line number is left out so moved code keeps its identity.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from ._common import cap_raw, expect, fingerprint, open_report, redact_secret, scrub, scrub_text, sha256_text
from . import _jsonl
from .base import Record

FORMAT = "trufflehog"
FINGERPRINT_VERSION = 1
EXPECTED = "trufflehog report: expected JSON lines with SourceMetadata and DetectorName (trufflehog v3 --json)"


def sniff(head: bytes) -> bool:
    first = _jsonl.first_object(head)
    return bool(first) and "SourceMetadata" in first and "DetectorName" in first


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    for number, item in _jsonl.objects(reader):
        expect("DetectorName" in item, f"line {number} is not a trufflehog finding (no DetectorName)")
        yield _record(item)


def _source(item: dict) -> dict:
    """The innermost SourceMetadata.Data.<Source> dict (Git, Filesystem, Github ...)."""
    data = (item.get("SourceMetadata") or {}).get("Data") or {}
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict):
                return value
    return {}


def _record(item: dict) -> Record:
    secret = str(item.get("RawV2") or item.get("Raw") or "")
    secrets = tuple(s for s in {str(item.get("Raw") or ""), str(item.get("RawV2") or ""), str(item.get("Redacted") or "")} if s)
    source = scrub(_source(item), secrets)
    detector = scrub_text(str(item.get("DetectorName") or "unknown"), secrets)
    path = str(source.get("file") or source.get("path") or source.get("link") or "")
    line = source.get("line") if isinstance(source.get("line"), int) else None
    commit = str(source.get("commit") or "")
    repo = str(source.get("repository") or "")
    verified = bool(item.get("Verified"))
    secret_hash = sha256_text(secret)
    raw = scrub(item, secrets)
    raw["secret_sha256"] = secret_hash
    raw["secret_redacted"] = redact_secret(secret)
    where = f"{path}:{line}" if path and line else (path or repo)
    state = "verified" if verified else "unverified"
    description = f"{state.capitalize()} {detector} secret in {where or 'unknown location'}"
    if commit:
        description += f" (commit {commit[:12]})"
    return Record(
        tool="trufflehog",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, detector, repo, path, commit, secret_hash),
        title=f"{state.capitalize()} secret detected: {detector}",
        severity="critical" if verified else "high",
        tool_severity=state,
        rule_id=detector,
        location=where,
        description=description + f"; secret {redact_secret(secret)}",
        remediation="Revoke and rotate the credential, then remove it from the source and its history.",
        artifact=path,
        line=line,
        raw=cap_raw(raw),
    )
