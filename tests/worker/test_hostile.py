"""Hostile inputs shared by all formats: files under tests/data/scanners/hostile/."""
import io
import json

import pytest

from worker.scanners import FORMATS, ParseError, parse

from .scanner_helpers import read, records_from_bytes


def test_empty_file():
    for fmt in list(FORMATS) + ["auto"]:
        with pytest.raises(ParseError, match="^empty report$"):
            list(parse(io.BytesIO(read("hostile/empty.json")), fmt))


def test_truncated_sarif_names_the_position():
    data = read("hostile/truncated-bandit.sarif")
    with pytest.raises(ParseError, match=r"^report is truncated: JSON ends early at byte 5000$"):
        list(parse(io.BytesIO(data), "sarif"))


def test_malformed_json_names_the_position():
    with pytest.raises(ParseError, match=r"^malformed JSON at or before byte \d+: parse error"):
        list(parse(io.BytesIO(read("hostile/malformed-gitleaks.json")), "gitleaks"))


def test_non_utf8_inside_a_string():
    with pytest.raises(ParseError, match="^report is not UTF-8 text"):
        list(parse(io.BytesIO(read("hostile/latin1-gitleaks.json")), "auto"))


def test_wrong_format_is_unrecognised():
    with pytest.raises(ParseError, match="^Unrecognised report format"):
        list(parse(io.BytesIO(read("hostile/wrong-format.json")), "auto"))
    with pytest.raises(ParseError, match="^not a osv-scanner report: expected"):
        list(parse(io.BytesIO(read("hostile/wrong-format.json")), "osv"))


def test_deep_nesting_file():
    with pytest.raises(ParseError, match="^JSON nesting deeper than 64 levels"):
        list(parse(io.BytesIO(read("hostile/deep-200-gitleaks.json")), "auto"))


def _deep(levels: int):
    value = "x"
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.mark.parametrize("fmt,doc", [
    ("sarif", {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "r", "properties": _deep(200)}]}]}),
    ("modelscan", {"summary": {}, "issues": [{"source": "m.pkl", "severity": "HIGH", "x": _deep(200)}], "errors": []}),
    ("pip_audit", {"dependencies": [{"name": "a", "version": "1", "vulns": [{"id": "X-1", "d": _deep(200)}]}]}),
    ("osv", {"results": [{"source": {"path": "r.txt"}, "packages": [{"package": {"name": "a"}, "vulnerabilities": [_deep(200)]}]}]}),
])
def test_deep_nesting_json_formats(fmt, doc):
    with pytest.raises(ParseError, match="nesting deeper than 64 levels"):
        records_from_bytes(json.dumps(doc).encode(), fmt)


@pytest.mark.parametrize("fmt,line", [
    ("trufflehog", {"SourceMetadata": {"Data": {}}, "DetectorName": "AWS", "ExtraData": _deep(200)}),
    ("garak", {"entry_type": "eval", "probe": "p", "detector": "d", "x": _deep(200)}),
])
def test_deep_nesting_json_lines(fmt, line):
    with pytest.raises(ParseError, match="nesting deeper than 64 levels on line 1"):
        records_from_bytes(json.dumps(line).encode() + b"\n", fmt)


def test_very_deep_nesting_does_not_crash():
    data = b'[{"RuleID": "r", "File": "f", "Secret": "s", "Tags": ' + b"[" * 50000 + b"]" * 50000 + b"}]"
    with pytest.raises(ParseError, match="nesting deeper than 64"):
        records_from_bytes(data, "gitleaks")
