"""Hostile reports end as a failed ImportRun with a clear reason; nothing is half-written; other imports go on."""
from __future__ import annotations

import json
import os

import pytest

from governance.findings.models import Finding, FindingTransition, ImportRun
from tests.findings.conftest import DATA, create_run, run_import, sarif_bytes, sarif_n, sarif_result, write_sarif_file

pytestmark = pytest.mark.django_db
HOSTILE = DATA / "hostile"

EXPECTED_REASON = {
    "empty.json": "empty",
    "truncated-bandit.sarif": "truncated",
    "latin1-gitleaks.json": "not UTF-8",
    "malformed-gitleaks.json": "malformed JSON",
    "wrong-format.json": "Unrecognised report format",
    "deep-200-gitleaks.json": "nesting deeper than 64 levels",
}


def test_every_hostile_sample_is_covered():
    assert sorted(EXPECTED_REASON) == sorted(p.name for p in HOSTILE.iterdir())


def assert_failed(run: ImportRun, reason: str) -> None:
    assert run.status == ImportRun.Status.FAILED
    assert reason.lower() in run.error.lower(), run.error
    assert run.counts == {} and run.finished_at is not None and run.lease_until is None


@pytest.mark.parametrize("name", sorted(EXPECTED_REASON))
def test_hostile_sample_fails_with_a_reason(system, name):
    run = run_import(HOSTILE / name, system=system, fmt="auto")
    assert_failed(run, EXPECTED_REASON[name])
    assert not Finding.objects.exists()


@pytest.mark.parametrize("name,fmt", [("truncated-bandit.sarif", "sarif"), ("malformed-gitleaks.json", "gitleaks"),
                                      ("wrong-format.json", "osv"), ("deep-200-gitleaks.json", "gitleaks")])
def test_hostile_sample_with_explicit_format(system, name, fmt):
    run = run_import(HOSTILE / name, system=system, fmt=fmt)
    assert run.status == ImportRun.Status.FAILED and run.error.startswith("The report could not be read")


def test_oversized_report_is_refused_unstored(system, settings):
    settings.RAMPART_MAX_REPORT_BYTES = 1000
    data = sarif_n(20)
    run = create_run(data, system=system)
    assert_failed(run, "limit is")
    assert "RAMPART_MAX_REPORT_BYTES" in run.error and run.size == len(data) and run.sha256
    assert not run.report  # never stored
    assert not Finding.objects.exists()


@pytest.mark.parametrize("fmt", ["auto", "sarif", "gitleaks", "picklescan", "trufflehog"])
def test_binary_file_fails(system, fmt):
    data = bytes(range(256)) * 64 + os.urandom(4096)
    run = run_import(data, system=system, fmt=fmt, filename="model.bin")
    assert run.status == ImportRun.Status.FAILED, run.counts
    assert run.error.startswith("The report could not be read")
    assert not Finding.objects.exists()


def test_nul_characters_in_scanner_text(system):
    """PostgreSQL text refuses NUL: one NUL in one finding used to fail the whole import. It is replaced by U+FFFD,
    counted as repaired, and every other finding is imported."""
    results = [sarif_result(i) for i in range(500)]
    results[7] = sarif_result(7, message="before\x00after")
    run = run_import(sarif_bytes(results), system=system)
    assert run.status == ImportRun.Status.DONE, run.error
    assert run.counts["created"] == 500 and run.counts["repaired"] == 1
    assert Finding.objects.get(system=system, description__startswith="before").description == "before\ufffdafter"
    assert "\x00" not in json.dumps(list(Finding.objects.values_list("raw", flat=True)))


@pytest.mark.parametrize("fmt, data", [
    ("sarif", lambda: sarif_bytes([sarif_result(1, message="half \ud800 pair"), sarif_result(2)])),
    ("pip_audit", lambda: json.dumps({"dependencies": [{"name": "requests", "version": "2.19.0", "vulns": [
        {"id": "PYSEC-1", "fix_versions": [], "description": "bad \ud800 text and \x00 NUL"}]}]}).encode()),
    ("gitleaks", lambda: json.dumps([{"RuleID": "generic-api-key", "StartLine": 1, "Secret": "s3cr3t-value\x00",
                                      "Match": "k = s3cr3t-value", "File": "a\udc00.py", "Commit": ""}]).encode()),
])
def test_half_surrogate_pairs_and_nul_escapes_are_repaired_not_fatal(system, fmt, data):
    """JSON may escape text that is not Unicode (\\ud800 alone) or that no database holds (\\u0000)."""
    raw = data()
    assert b"\\u" in raw  # the report carries them as escapes, as a tool writes them
    run = run_import(raw, system=system, fmt=fmt, source=fmt)
    assert run.status == ImportRun.Status.DONE, run.error
    for f in Finding.objects.filter(system=system):
        text = json.dumps([f.title, f.description, f.location, f.raw], ensure_ascii=False)
        assert "\x00" not in text and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)
    client_text = Finding.objects.filter(system=system).first().description
    client_text.encode("utf-8")  # renderable


def test_huge_numbers_and_odd_types(system):
    odd = sarif_result(3)
    odd["locations"][0]["physicalLocation"]["region"]["startLine"] = 10**30
    odd2 = sarif_result(4)
    odd2["properties"]["issue_severity"] = ["HIGH"]
    run = run_import(sarif_bytes([odd, odd2, sarif_result(5)]), system=system)
    assert run.status in (ImportRun.Status.DONE, ImportRun.Status.FAILED)
    if run.status == ImportRun.Status.FAILED:
        assert run.error and not Finding.objects.exists()


def test_failure_halfway_writes_nothing(system, settings, tmp_path):
    """5,000 valid results then a truncation: several batches ran, yet zero findings remain."""
    settings.RAMPART_IMPORT_BATCH = 500
    path = write_sarif_file(tmp_path / "big.sarif", 5000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 50])  # cut inside the last results
    run = run_import(path, system=system)
    assert_failed(run, "truncated")
    assert Finding.objects.count() == 0 and FindingTransition.objects.count() == 0


def test_failure_halfway_of_a_reimport_keeps_the_previous_state(system, settings, tmp_path):
    settings.RAMPART_IMPORT_BATCH = 500
    first = run_import(write_sarif_file(tmp_path / "a.sarif", 2000), system=system)
    assert first.counts["created"] == 2000
    before = list(Finding.objects.order_by("id").values_list("id", "state", "last_import_id", "last_seen"))
    path = write_sarif_file(tmp_path / "b.sarif", 1500, start=1000)
    path.write_bytes(path.read_bytes()[:-30])
    run = run_import(path, system=system)
    assert run.status == ImportRun.Status.FAILED
    assert list(Finding.objects.order_by("id").values_list("id", "state", "last_import_id", "last_seen")) == before
    assert FindingTransition.objects.count() == 0


def test_other_imports_still_run_after_failures(system, other_system):
    for name in EXPECTED_REASON:
        run_import(HOSTILE / name, system=system)
    ok = run_import(DATA / "sarif" / "bandit.sarif", system=system)
    assert ok.status == ImportRun.Status.DONE and ok.counts["created"] == 9
    ok2 = run_import(DATA / "gitleaks" / "gitleaks-report.json", system=other_system, source="gitleaks")
    assert ok2.status == ImportRun.Status.DONE and ok2.counts["created"] == 3
    assert ImportRun.objects.filter(status=ImportRun.Status.FAILED).count() == len(EXPECTED_REASON)


def test_reason_is_shown_on_the_import_page(client, engineer, system):
    run = run_import(HOSTILE / "truncated-bandit.sarif", system=system)
    client.force_login(engineer)
    body = client.get(run.get_absolute_url()).content.decode()
    assert "truncated" in body



def test_lone_surrogate_escapes_in_scanner_text(system):
    """JSON may spell half a UTF-16 pair ("\\ud800"), which no UTF-8 text holds: the findings are kept, the
    half pair replaced (SARIF streams through yajl, which writes "?"; JSON lines through json.loads)."""
    sarif = sarif_bytes([sarif_result(1, message="bad \ud800 half"), sarif_result(2)])
    line = (DATA / "trufflehog" / "trufflehog-git.jsonl").read_bytes().splitlines()[0]
    truffle = line.replace(b'"DetectorName":"AWS"', b'"DetectorName":"AWS \\udc00 key"')
    assert b"\\ud800" in sarif and b"\\udc00" in truffle
    for data in (sarif, truffle):
        run = run_import(data, system=system)
        assert run.status == ImportRun.Status.DONE, run.error
    described = Finding.objects.get(system=system, description__contains="half").description
    assert "bad ? half" in described or "bad \ufffd half" in described
    assert "AWS \ufffd key" in Finding.objects.get(system=system, tool="trufflehog").title
    for finding in Finding.objects.filter(system=system):
        for text in (finding.title, finding.description, finding.location, json.dumps(finding.raw, ensure_ascii=False)):
            text.encode("utf-8")  # no half pair left
