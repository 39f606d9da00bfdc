"""gitleaks and trufflehog: secrets must never appear in any record field."""
from worker.scanners import _common

from .scanner_helpers import all_text, records

GITLEAKS_SECRETS = ["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ghp_EXAMPLEexampleEXAMPLEexample0123456"]
TRUFFLEHOG_SECRETS = GITLEAKS_SECRETS + ["hf_EXAMPLEexampleEXAMPLEexampleEXAMPLE12"]


def test_gitleaks_records():
    recs = records("gitleaks/gitleaks-report.json", "gitleaks")
    assert [(r.rule_id, r.location, r.severity) for r in recs] == [
        ("aws-access-token", "config/settings.ini:3", "high"),
        ("generic-api-key", "config/settings.ini:4", "high"),
        ("github-pat", "scripts/deploy.sh:12", "high"),
    ]
    assert recs[0].raw["secret_sha256"] == _common.sha256_text("AKIAIOSFODNN7EXAMPLE")
    assert recs[0].raw["secret_redacted"] == "AKIA…(redacted, 20 chars)"
    assert recs[0].raw["Match"] == "(redacted)" and recs[0].raw["Secret"] == "(redacted)"
    assert recs[0].raw["Commit"] == "5a1e2c7d9b3f4e6a8c0d2e4f6a8b0c2d4e6f8a0b"
    assert "commit 5a1e2c7d9b3f" in recs[0].description


def test_gitleaks_secret_absent_everywhere():
    for rec in records("gitleaks/gitleaks-report.json", "gitleaks"):
        text = all_text(rec)
        for secret in GITLEAKS_SECRETS:
            assert secret not in text
    # the commit messages quote the AWS key: they are dropped from raw
    assert all("Message" not in r.raw for r in records("gitleaks/gitleaks-report.json", "gitleaks"))


def test_gitleaks_fingerprints():
    a = [r.fingerprint for r in records("gitleaks/gitleaks-report.json", "gitleaks")]
    assert a == [r.fingerprint for r in records("gitleaks/gitleaks-report.json", "gitleaks")]
    assert len(set(a)) == 3


def test_trufflehog_records():
    recs = records("trufflehog/trufflehog-git.jsonl", "trufflehog")
    assert [(r.rule_id, r.severity, r.tool_severity, r.location) for r in recs] == [
        ("AWS", "high", "unverified", "config/settings.ini:3"),
        ("Github", "critical", "verified", "scripts/deploy.sh:12"),
        ("HuggingFace", "high", "unverified", "notebooks/train.ipynb:88"),
    ]
    assert recs[0].raw["secret_sha256"] == _common.sha256_text("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert recs[1].raw["ExtraData"] == {"username": "example-bot", "scopes": "repo"}
    for key in ("Raw", "RawV2", "Redacted"):
        assert recs[0].raw[key] == "(redacted)"


def test_trufflehog_secret_absent_everywhere():
    recs = records("trufflehog/trufflehog-git.jsonl", "trufflehog")
    for rec in recs:
        text = all_text(rec)
        for secret in TRUFFLEHOG_SECRETS:
            assert secret not in text
    assert len({r.fingerprint for r in recs}) == 3


def test_redact_secret_short_values_show_no_prefix():
    assert _common.redact_secret("hunter2") == "…(redacted, 7 chars)"
