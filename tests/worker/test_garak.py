import pytest

from worker.scanners import ParseError

from .scanner_helpers import records, records_from_bytes


def test_report_eval_entries_real_output():
    recs = records("garak/garak.report.jsonl", "garak")
    assert len(recs) == 6
    fail = next(r for r in recs if r.rule_id == "test.Test/always.Fail")
    assert fail.severity == "high" and fail.tool_severity == "FAIL"
    assert "0/16 passed, 16 failed (failure rate 100.0%)" in fail.description
    assert "test.Repeat" in fail.description
    assert fail.raw["attempt_evidence"]["outputs"] == 16 and fail.raw["attempt_evidence"]["hits"] == 16
    assert len(fail.raw["attempt_evidence"]["samples"]) == 3
    passed = next(r for r in recs if r.rule_id == "test.Test/always.Pass")
    assert passed.severity == "info" and "16/16 passed" in passed.description
    assert passed.raw["attempt_evidence"]["hits"] == 0


def test_hitlog_real_output():
    recs = records("garak/garak.hitlog.jsonl", "garak")
    assert len(recs) == 18
    assert {r.severity for r in recs} == {"high"}
    assert {r.rule_id for r in recs} == {"lmrc.QuackMedicine/always.Fail", "test.Test/always.Fail"}
    assert "vagina steaming" in recs[0].description


def test_fingerprints():
    a = [r.fingerprint for r in records("garak/garak.report.jsonl", "garak")]
    assert a == [r.fingerprint for r in records("garak/garak.report.jsonl", "garak")]
    assert len(set(a)) == 6


def test_malformed_line_is_named():
    data = b'{"entry_type": "init", "garak_version": "0.17.1"}\n{"entry_type": "eval", "probe": \n'
    with pytest.raises(ParseError, match=r"^malformed JSON on line 2 at column \d+: Expecting value$"):
        records_from_bytes(data, "garak")
