import io

import pytest

from worker.scanners import FORMATS, ParseError, detect, parse
from worker.scanners.base import Incomplete, Record

from .scanner_helpers import NonSeekable, read

SAMPLES = {
    "sarif/bandit.sarif": "sarif",
    "sarif/codeql-semgrep-multirun.sarif": "sarif",
    "modelscan/modelscan-0.8.8.json": "modelscan",
    "modelscan/modelscan-0.5.0.json": "modelscan",
    "picklescan/picklescan-1.0.5.txt": "picklescan",
    "garak/garak.report.jsonl": "garak",
    "garak/garak.hitlog.jsonl": "garak",
    "gitleaks/gitleaks-report.json": "gitleaks",
    "trufflehog/trufflehog-git.jsonl": "trufflehog",
    "pip_audit/pip-audit-vulns.json": "pip_audit",
    "pip_audit/pip-audit-old-list.json": "pip_audit",
    "pip_audit/pip-audit-offline-skipped.json": "pip_audit",
    "osv/osv-scanner.json": "osv",
}


def test_registry_lists_every_format():
    assert set(FORMATS) == {"sarif", "modelscan", "picklescan", "garak", "gitleaks", "trufflehog", "pip_audit", "osv"}
    for name, module in FORMATS.items():
        assert module.FORMAT == name
        assert module.FINGERPRINT_VERSION == 1


@pytest.mark.parametrize("path,fmt", sorted(SAMPLES.items()))
def test_detect_recognises_each_sample(path, fmt):
    assert detect(read(path)[:65536]) == fmt


@pytest.mark.parametrize("path,fmt", sorted(SAMPLES.items()))
def test_auto_equals_explicit_format_and_works_without_seek(path, fmt):
    data = read(path)
    explicit = list(parse(io.BytesIO(data), fmt))
    auto = list(parse(io.BytesIO(data), "auto"))
    piped = list(parse(NonSeekable(data), "auto"))
    assert explicit == auto == piped
    assert all(isinstance(r, (Record, Incomplete)) for r in explicit)


def test_auto_on_a_pipe_larger_than_the_head():
    # 3000 gitleaks-like findings: well past the 64 KiB head that is peeked and replayed
    item = b'{"RuleID": "generic-api-key", "File": "f%d.py", "StartLine": 1, "Secret": "s3cr3t-value-%d", "Match": "k=s3cr3t-value-%d"}'
    data = b"[" + b",".join(item % (i, i, i) for i in range(3000)) + b"]"
    assert len(data) > 200_000
    recs = list(parse(NonSeekable(data, chunk=4096), "auto"))
    assert len(recs) == 3000
    assert len({r.fingerprint for r in recs}) == 3000


def test_unrecognised_format():
    with pytest.raises(ParseError, match=r"^Unrecognised report format; expected one of garak, gitleaks, modelscan"):
        detect(b'{"hello": "world"}')
    with pytest.raises(ParseError, match="Unrecognised report format"):
        list(parse(io.BytesIO(b"just some text\n"), "auto"))


def test_unknown_format_name():
    with pytest.raises(ParseError, match="Unknown report format 'nessus'"):
        parse(io.BytesIO(b"[]"), "nessus")


@pytest.mark.parametrize("data", [b"", b"   \n\t  "])
def test_empty(data):
    with pytest.raises(ParseError, match="^empty report$"):
        detect(data)
    for fmt in FORMATS:
        with pytest.raises(ParseError, match="^empty report$"):
            list(parse(io.BytesIO(data), fmt))


def test_not_utf8():
    latin1 = '{"runs": [{"tool": {"driver": {"name": "Bändit"}}}]}'.encode("latin-1")
    utf16 = '[{"RuleID": "x"}]'.encode("utf-16")
    for data in (latin1, utf16, b"\x00\x01\x02binary"):
        with pytest.raises(ParseError, match="^report is not UTF-8 text"):
            detect(data)
        for fmt in FORMATS:
            with pytest.raises(ParseError, match="^report is not UTF-8 text"):
                list(parse(io.BytesIO(data), fmt))


def test_utf8_bom_is_accepted():
    data = b"\xef\xbb\xbf" + read("gitleaks/gitleaks-report.json")
    assert detect(data) == "gitleaks"
    assert len(list(parse(io.BytesIO(data), "auto"))) == 3
    assert len(list(parse(NonSeekable(data), "gitleaks"))) == 3


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_wrong_format_says_what_was_expected(fmt):
    other = "garak/garak.report.jsonl" if fmt != "garak" else "gitleaks/gitleaks-report.json"
    with pytest.raises(ParseError, match=r"^not a .*expected"):
        list(parse(io.BytesIO(read(other)), fmt))
