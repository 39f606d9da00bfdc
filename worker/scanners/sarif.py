"""SARIF 2.1.0 reports from any tool (bandit, semgrep, CodeQL, osv-scanner ...).

Streaming: the file is read twice with ijson (C backend) and never held whole:
pass 1 collects each run's `tool.driver` (name and rules), pass 2 streams
`runs[].results[]`. For files with several runs a cheap extra pass counts the
results of each run so every result gets its own run's tool. A non-seekable
stream is first spooled to a temporary file.

Severity: the rule's `properties.security-severity` (CVSS-like number, as
CodeQL and semgrep write it) wins; else bandit's `properties.issue_severity`;
else `result.level`, else the rule's `defaultConfiguration.level`, else
"warning" (SARIF's default). tool_severity keeps the word that was used.

Fingerprint (v1): tool name, ruleId, artifact URI and, in that order of
preference, the result's `partialFingerprints`/`fingerprints` (tools compute
them to survive line moves), else the region's snippet text, else the message
text. The line number is only used when none of those exist. Without a tool
fingerprint, the same snippet met again for the same rule and file at another
line is another finding (the same call twice in a file is two problems): its
place among those lines joins the identity from the second one on ("#2"), so
the first keeps the fingerprint it always had and line moves still do not
matter; the very same entry twice (same line) is one finding, counted merged.
"""
from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from ._common import (Occurrences, cap_raw, clip, cvss_severity, expect, fingerprint, json_items, open_report,
                      redact_secret, severity, sha256_text, spooled_copy)
from . import sarif_rules, secrets
from .base import Incomplete, Record

FORMAT = "sarif"
FINGERPRINT_VERSION = 1
EXPECTED = 'SARIF report: expected a JSON object with "version": "2.1.0" and "runs"'


def sniff(head: bytes) -> bool:
    # bandit writes "version"/"$schema" last, so look for the run structure instead
    if not head.lstrip().startswith(b"{") or b'"runs"' not in head:
        return False
    return b'"driver"' in head or b"sarif" in head.lower()


def parse(stream: BinaryIO) -> Iterator[Record | Incomplete]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    if not reader.seekable():
        reader = spooled_copy(reader)
    start = reader.tell()
    scan = _scan(reader)
    # The usual report has one run whose tool comes before its results: reading up to the end of its driver is
    # enough. A plain byte count tells (one "driver" and one "results" key in the file; any doubt reads it all).
    first_only = scan["drivers"] == 1 and scan["results"] == 1
    runs = [_run_info(run) for run in sarif_rules.read_runs(reader, _rule_info, first_only=first_only)]
    reader.seek(start)
    counts = None if first_only or len(runs) < 2 else [run["results"] for run in runs]
    return _records(reader, runs, counts, scan["failed"])


_NO_RUN = {"tool": "sarif", "rules": sarif_rules.RunRules(sarif_rules.RuleStore(), 0), "results": 0, "secrets": False}

# An invocation that says the tool did not run to the end (SARIF 3.20.14): its results are not the whole story.
_FAILED_RUN = re.compile(rb'(?<!\\)"executionSuccessful"\s*:\s*false')


def _scan(reader) -> dict:
    """One pass over the bytes: how many "driver" and "results" keys there are, and whether an invocation failed."""
    start, keys, tail, failed = reader.tell(), {b'"driver"': 0, b'"results"': 0}, b"", False
    for chunk in iter(lambda: reader.read(1 << 20), b""):
        window = tail + chunk
        for key in keys:
            keys[key] += window.count(key) - tail.count(key)
        failed = failed or (b'"executionSuccessful"' in window and _FAILED_RUN.search(window) is not None)
        tail = chunk[-64:]
    reader.seek(start)
    return {"drivers": keys[b'"driver"'], "results": keys[b'"results"'], "failed": failed}


def _records(reader, runs, counts, failed: bool) -> Iterator[Record | Incomplete]:
    run_index, left = 0, (counts[0] if counts else None)
    occurrences = Occurrences()
    if failed:
        yield Incomplete("The SARIF report says the scanner did not run to the end (an invocation has "
                         "executionSuccessful: false): its results may be partial.")
    for result in json_items(reader, "runs.item.results.item"):
        if counts is not None:
            while left == 0 and run_index + 1 < len(counts):
                run_index += 1
                left = counts[run_index]
            left -= 1
        run = runs[run_index] if run_index < len(runs) else _NO_RUN
        expect(isinstance(result, dict), "SARIF result is not a JSON object")
        yield _record(result, run, occurrences)


def _run_info(run: dict) -> dict:
    """A run as sarif_rules read it: its tool's name and its rules (a RuleIndex), and how many results it has."""
    name = run["tool"] or "sarif"
    return {**run, "tool": name, "secrets": secrets.is_secret_tool(name)}


def _rule_info(rule: dict) -> dict:
    """What a finding needs of a rule, its texts clipped (a million rules stay small)."""
    props = rule.get("properties") or {}
    text = lambda key: ((rule.get(key) or {}).get("text") or "") if isinstance(rule.get(key), dict) else ""
    return {
        "id": str(rule.get("id") or ""),
        "name": clip(rule.get("name") or "", 300),
        "short": clip(text("shortDescription"), 300),
        "full": clip(text("fullDescription")),
        "help": clip(text("help") or str(rule.get("helpUri") or "")),
        "security_severity": props.get("security-severity") if isinstance(props, dict) else None,
        "level": ((rule.get("defaultConfiguration") or {}).get("level") or ""),
        "secret": secrets.is_secret_rule(rule.get("id"), rule.get("name"), text("shortDescription"),
                                         *((props.get("tags") or []) if isinstance(props, dict) else [])),
    }


def _rule_for(result: dict, run: dict) -> dict:
    rule_id = str(result.get("ruleId") or (result.get("rule") or {}).get("id") or "")
    rule = run["rules"].get(rule_id)
    index = result.get("ruleIndex")
    if rule is None and isinstance(index, int) and not isinstance(index, bool):
        rule = run["rules"].at(index)
    return rule or {"id": rule_id, "name": "", "short": "", "full": "", "help": "",
                    "security_severity": None, "level": "", "secret": secrets.is_secret_rule(rule_id)}


def _severity(result: dict, rule: dict) -> tuple[str, str]:
    props = result.get("properties") if isinstance(result.get("properties"), dict) else {}
    score = props.get("security-severity", rule["security_severity"])
    mapped = cvss_severity(score)
    if mapped:
        return mapped, f"security-severity {score}"
    if props.get("issue_severity"):
        return severity(props["issue_severity"]), str(props["issue_severity"])
    level = result.get("level") or rule["level"] or "warning"
    return severity(level), str(level)


def _location(result: dict) -> tuple[str, int | None, str]:
    locations = result.get("locations") or []
    loc = locations[0] if locations and isinstance(locations[0], dict) else {}
    physical = loc.get("physicalLocation") or {}
    uri = str((physical.get("artifactLocation") or {}).get("uri") or "")
    region = physical.get("region") or {}
    line = region.get("startLine")
    line = line if isinstance(line, int) else None
    snippet = str((region.get("snippet") or {}).get("text") or "")
    return uri, line, snippet


def _stable_key(result: dict, snippet: str, message: str, line) -> tuple[str, bool]:
    """(identity, whether it is the tool's own fingerprint)."""
    for key in ("partialFingerprints", "fingerprints"):
        prints = result.get(key)
        if isinstance(prints, dict) and prints:
            return "fp:" + "|".join(f"{k}={prints[k]}" for k in sorted(prints)), True
    if snippet.strip():
        return "snippet:" + snippet.strip(), False
    return f"message:{message}|line:{line}", False


def _record(result: dict, run: dict, occurrences: Occurrences) -> Record:
    rule = _rule_for(result, run)
    message = str((result.get("message") or {}).get("text") or "")
    uri, line, snippet = _location(result)
    rating, tool_severity = _severity(result, rule)
    if run["secrets"] or rule["secret"]:
        key, message, raw = _secret_parts(result, run, message, line)
    else:
        key, tools_own = _stable_key(result, snippet, message, line)
        if not tools_own:
            nth = occurrences.number("\0".join((run["tool"], rule["id"], uri, key)), line)
            key = f"{key}#line:{line}" if nth is None else key if nth == 1 else f"{key}#{nth}"
        raw = cap_raw(result)
    return Record(
        tool=run["tool"],
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, run["tool"], rule["id"], uri, key),
        title=clip(rule["short"] or message.split("\n")[0] or rule["name"] or rule["id"], 300),
        severity=rating,
        tool_severity=tool_severity,
        rule_id=rule["id"],
        location=f"{uri}:{line}" if uri and line else uri,
        description=clip(message or rule["full"]),
        remediation=clip(rule["help"]),
        artifact=uri,
        line=line,
        raw=raw,
    )


def _secret_parts(result: dict, run: dict, message: str, line) -> tuple[str, str, dict]:
    """(identity, message, raw entry) of a secret scanner's result (or a secrets rule's): nothing of the secret
    reaches the record (see secrets.py). Identity: the secret's sha256 and the commit; a secret tool's
    partialFingerprints are its commit metadata, not an identity (with --no-git they are all empty). As in the
    gitleaks JSON format, the same secret in the same file and commit is one finding (one credential to rotate)."""
    found = tuple(secrets.snippets(result))
    props = result.get("properties") if isinstance(result.get("properties"), dict) else {}
    found += tuple(str(props[k]) for k in ("offender", "Offender", "secret") if props.get(k))
    digest = sha256_text("\0".join(found))
    prints = result.get("partialFingerprints") if isinstance(result.get("partialFingerprints"), dict) else {}
    commit = str(prints.get("commitSha") or props.get("commit") or "")
    if run["secrets"] or not any(isinstance(result.get(k), dict) and result[k] for k in ("partialFingerprints",
                                                                                       "fingerprints")):
        key = f"secret:{digest}|commit:{commit}"
    else:
        key = _stable_key(result, "", "", line)[0]
    raw = secrets.redact_result(result, found)
    raw["secret_sha256"] = digest
    raw["secret_redacted"] = redact_secret(found[0] if found else "")
    return key, secrets.scrub_message(message, found), cap_raw(raw)
