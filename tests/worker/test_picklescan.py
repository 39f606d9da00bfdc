from .scanner_helpers import records, records_from_bytes

import pytest
from worker.scanners import ParseError


def test_real_output():
    recs = records("picklescan/picklescan-1.0.5.txt", "picklescan")
    dangerous = [r for r in recs if r.severity == "critical"]
    assert sorted(r.rule_id for r in dangerous) == ["builtins.eval", "posix.system", "posix.system", "webbrowser.open"]
    (unparsed,) = [r for r in recs if r.severity == "info"]
    assert unparsed.location.endswith("corrupt_model.pkl")
    nested = next(r for r in dangerous if "torch_like" in r.location)
    assert nested.artifact.endswith("models/torch_like.pt")


def test_strict_promotions_are_high():
    recs = records("picklescan/picklescan-1.0.5-strict.txt", "picklescan")
    (custom,) = [r for r in recs if r.rule_id == "mylib.layers.CustomLayer"]
    assert custom.severity == "high" and "promoted by --strict" in custom.tool_severity


def test_fingerprints():
    a = [r.fingerprint for r in records("picklescan/picklescan-1.0.5.txt", "picklescan")]
    assert a == [r.fingerprint for r in records("picklescan/picklescan-1.0.5.txt", "picklescan")]
    assert len(set(a)) == len(a)


def test_non_utf8_line_is_named():
    data = b"/m/a.pkl: dangerous import 'posix system' FOUND\n/m/\xff.pkl: dangerous import 'posix system' FOUND\n"
    with pytest.raises(ParseError, match=r"not UTF-8 text"):
        records_from_bytes(data, "picklescan")
