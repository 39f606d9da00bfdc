from .scanner_helpers import records


def test_current_layout_real_output():
    recs = records("modelscan/modelscan-0.8.8.json", "modelscan")
    issues = [r for r in recs if r.severity != "info"]
    assert len(issues) == 4
    assert sorted(r.severity for r in issues) == ["critical", "critical", "critical", "high"]
    evil = next(r for r in issues if r.location == "evil_model.pkl")
    assert evil.rule_id == "posix.system" and evil.tool_severity == "CRITICAL"
    nested = next(r for r in issues if "torch_like" in r.location)
    assert nested.location == "torch_like.pt:archive/data.pkl" and nested.artifact == "torch_like.pt"
    (error,) = [r for r in recs if r.severity == "info"]
    assert error.rule_id == "scan-error:PICKLE_GENOPS" and error.location == "corrupt_model.pkl"


def test_old_issues_by_severity_layout_real_output():
    recs = records("modelscan/modelscan-0.5.0.json", "modelscan")
    assert [r.severity for r in recs] == ["critical", "critical", "critical", "high", "info"]
    assert recs[3].rule_id == "webbrowser.open"
    assert "corrupt_model.pkl" in recs[4].description


def test_fingerprints():
    a = records("modelscan/modelscan-0.8.8.json", "modelscan")
    assert [r.fingerprint for r in a] == [r.fingerprint for r in records("modelscan/modelscan-0.8.8.json", "modelscan")]
    assert len({r.fingerprint for r in a}) == len(a)
