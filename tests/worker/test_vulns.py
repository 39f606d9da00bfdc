"""pip-audit and osv-scanner."""
from .scanner_helpers import records


def test_pip_audit_current_layout():
    recs = records("pip_audit/pip-audit-vulns.json", "pip_audit")
    assert [(r.package, r.rule_id) for r in recs] == [
        ("requests", "PYSEC-2018-28"), ("requests", "PYSEC-2023-74"), ("pyyaml", "PYSEC-2020-96"), ("jinja2", "PYSEC-2019-217")]
    assert recs[0].location == "requests@2.19.0"
    assert recs[0].remediation == "Upgrade requests to 2.20.0."
    assert "CVE-2018-18074" in recs[0].title
    assert len({r.fingerprint for r in recs}) == 4


def test_pip_audit_old_list_layout_and_real_offline_run():
    (rec,) = records("pip_audit/pip-audit-old-list.json", "pip_audit")
    assert rec.rule_id == "PYSEC-2018-66" and rec.package == "flask"
    assert records("pip_audit/pip-audit-offline-skipped.json", "pip_audit") == []


def test_osv_scanner():
    recs = records("osv/osv-scanner.json", "osv")
    assert [(r.rule_id, r.severity, r.package) for r in recs] == [
        ("GHSA-x84v-xcm2-53pg", "high", "requests"),
        ("GHSA-j8r2-6x86-q33q", "medium", "requests"),
        ("GHSA-p6mc-m468-83gw", "high", "lodash"),
    ]
    assert recs[0].tool_severity == "CVSS 7.5"
    assert recs[0].artifact == "/src/model-service/requirements.txt"
    assert recs[0].remediation == "Upgrade requests to 2.20.0 or later."
    assert "PYSEC-2018-28" in recs[0].raw["aliases"]
    assert recs[2].tool_severity == "HIGH"
    assert [r.fingerprint for r in recs] == [r.fingerprint for r in records("osv/osv-scanner.json", "osv")]
    assert len({r.fingerprint for r in recs}) == 3
