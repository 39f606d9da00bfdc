import io
import json

from worker.scanners import sarif

from .scanner_helpers import NonSeekable, read, records


def test_bandit_real_output():
    recs = records("sarif/bandit.sarif", "sarif")
    assert len(recs) == 9
    assert {r.tool for r in recs} == {"Bandit"}
    by_rule = {r.rule_id: r for r in recs}
    assert by_rule["B602"].severity == "high" and by_rule["B602"].tool_severity == "HIGH"
    assert by_rule["B602"].location == "vuln_app.py:11" and by_rule["B602"].line == 11
    assert by_rule["B403"].severity == "low"
    assert by_rule["B506"].severity == "medium"
    assert by_rule["B602"].artifact == "vuln_app.py"
    assert "shell=True" in by_rule["B602"].title
    assert by_rule["B602"].remediation.startswith("https://bandit.readthedocs.io/")


def test_fingerprints_stable_and_distinct():
    first = [r.fingerprint for r in records("sarif/bandit.sarif", "sarif")]
    second = [r.fingerprint for r in records("sarif/bandit.sarif", "sarif")]
    assert first == second
    assert len(set(first)) == len(first)


def test_fingerprint_ignores_line_moves_when_snippet_exists():
    doc = json.loads(read("sarif/bandit.sarif"))
    for result in doc["runs"][0]["results"]:
        result["locations"][0]["physicalLocation"]["region"]["startLine"] += 5
    moved = list(sarif.parse(io.BytesIO(json.dumps(doc).encode())))
    original = records("sarif/bandit.sarif", "sarif")
    assert [r.fingerprint for r in moved] == [r.fingerprint for r in original]
    assert moved[0].line == original[0].line + 5


def test_multi_run_codeql_and_semgrep():
    recs = records("sarif/codeql-semgrep-multirun.sarif", "sarif")
    assert [(r.tool, r.rule_id, r.severity) for r in recs] == [
        ("CodeQL", "py/command-line-injection", "critical"),
        ("CodeQL", "py/weak-sensitive-data-hashing", "high"),
        ("CodeQL", "py/unused-import", "low"),
        ("Semgrep OSS", "python.lang.security.deserialization.pickle.avoid-pickle", "medium"),
    ]
    assert recs[0].tool_severity == "security-severity 9.8"
    assert recs[0].title == "Uncontrolled command line"
    assert recs[0].remediation.startswith("Validate user input")
    assert recs[0].raw["partialFingerprints"]["primaryLocationLineHash"] == "c6f3a1b2d4e5f607:1"


def test_multi_run_on_a_pipe():
    data = read("sarif/codeql-semgrep-multirun.sarif")
    assert list(sarif.parse(NonSeekable(data))) == records("sarif/codeql-semgrep-multirun.sarif", "sarif")


def test_empty_runs_and_run_without_results():
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}}, {"tool": {"driver": {"name": "y"}}, "results": []}]}
    assert list(sarif.parse(io.BytesIO(json.dumps(doc).encode()))) == []


def test_big_raw_entries_are_capped():
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [
        {"ruleId": "r", "message": {"text": "m"}, "properties": {"blob": "x" * 20000}}]}]}
    (rec,) = sarif.parse(io.BytesIO(json.dumps(doc).encode()))
    assert rec.raw["_truncated"] is True
    assert len(json.dumps(rec.raw)) < 9000
    assert rec.severity == "medium" and rec.tool_severity == "warning"


def test_rules_past_the_memory_limit_move_to_disk_and_read_the_same(monkeypatch):
    """A report's rules are kept in bounded memory (bench/parse_shapes.py: a million rules peak at ~45 MiB)."""
    from worker.scanners import sarif_rules

    expected = records("sarif/codeql-semgrep-multirun.sarif", "sarif") + records("sarif/bandit.sarif", "sarif")
    monkeypatch.setattr(sarif_rules.RuleStore, "MEMORY_LIMIT", 1)
    spilled = []
    real_spill = sarif_rules.RuleStore._spill
    monkeypatch.setattr(sarif_rules.RuleStore, "_spill", lambda self: (spilled.append(1), real_spill(self)))
    got = records("sarif/codeql-semgrep-multirun.sarif", "sarif") + records("sarif/bandit.sarif", "sarif")
    assert spilled and got == expected


def test_rules_are_streamed_not_built_as_one_driver():
    """The driver is never built whole: a rule list that is not a list of objects is skipped, not fatal."""
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t", "rules": ["odd", {"id": "R1",
           "shortDescription": {"text": "Rule one"}}]}}, "results": [{"ruleId": "R1", "message": {"text": "m"}},
                                                                    {"ruleIndex": 1, "message": {"text": "n"}}]}]}
    first, second = sarif.parse(io.BytesIO(json.dumps(doc).encode()))
    assert first.title == second.title == "Rule one"
