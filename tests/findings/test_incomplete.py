"""Reports that did not examine what they cover close nothing they did not examine; merges are counted.

Defects this catches (issue "Truth"): a pip-audit report whose every dependency was skipped closed 4 open CVE
findings on reimport; two SARIF results with the same snippet in different places became one finding, silently.
"""
from __future__ import annotations

import copy
import json

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.findings import services
from governance.findings.models import Finding, FindingState
from tests.findings.conftest import DATA, run_import, sarif_bytes, sarif_n, sarif_result

pytestmark = pytest.mark.django_db

VULNS = (DATA / "pip_audit" / "pip-audit-vulns.json").read_bytes()  # requests x2, pyyaml, jinja2; torch-local skipped
ALL_SKIPPED = (DATA / "pip_audit" / "pip-audit-offline-skipped.json").read_bytes()  # the same run without network


def _open(system):
    return set(Finding.objects.filter(system=system).open().values_list("package", flat=True))


def test_a_pip_audit_report_that_skipped_everything_closes_nothing(system):
    first = run_import(VULNS, system=system, source="deps")
    assert first.counts["created"] == 4
    assert "skipped 1 of 5" in first.incomplete and "torch-local" in first.incomplete
    again = run_import(ALL_SKIPPED, system=system, source="deps")
    assert again.status == "done"
    assert again.counts["closed"] == 0 and again.counts["held_open"] == 4
    assert "skipped 8 of 8" in again.incomplete
    assert Finding.objects.filter(system=system).open().count() == 4  # still open: nobody examined them
    assert set(Finding.objects.filter(system=system).values_list("gone", flat=True)) == {True}  # not in the report


def test_only_what_was_not_examined_is_held(system):
    run_import(VULNS, system=system, source="deps")
    doc = json.loads(VULNS)
    doc["dependencies"] = [
        {"name": "requests", "version": "2.31.0", "vulns": []},  # examined and clean: its 2 findings are fixed
        {"name": "PyYAML", "skip_reason": "Dependency not found on PyPI and could not be audited: PyYAML (5.3)"},
    ]  # jinja2 is no longer installed at all: gone, closed
    run = run_import(json.dumps(doc).encode(), system=system, source="deps")
    assert run.counts["closed"] == 3 and run.counts["held_open"] == 1
    assert _open(system) == {"pyyaml"}


def test_a_person_closes_what_was_held_and_it_is_audited(client, engineer, system):
    run_import(VULNS, system=system, source="deps")
    run = run_import(ALL_SKIPPED, system=system, source="deps")
    client.force_login(engineer)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Incomplete report" in page and "Close the 4 findings" in page
    response = client.post(reverse("findings:import-close-held", args=[run.pk]))
    assert response.status_code == 302
    assert Finding.objects.filter(system=system).open().count() == 0
    closed = Finding.objects.filter(system=system).first()
    assert closed.transitions.last().actor == engineer and closed.transitions.last().to_state == FindingState.CLOSED
    assert AuditEvent.objects.filter(action="import.close_held", object_id=str(run.pk)).count() == 1
    run.refresh_from_db()
    assert run.counts["held_open"] == 0 and run.counts["closed_by_hand"] == 4


def test_closing_what_was_held_is_refused_once_a_later_import_ran(engineer, system):
    run_import(VULNS, system=system, source="deps")
    held = run_import(ALL_SKIPPED, system=system, source="deps")
    run_import(VULNS, system=system, source="deps")
    with pytest.raises(services.HeldFindingsError):
        services.import_run_close_held(actor=engineer, run=held)


def test_an_empty_report_where_the_feed_has_open_findings_closes_nothing(system):
    run_import(sarif_n(3), system=system)
    run = run_import(sarif_bytes([]), system=system)
    assert run.counts["closed"] == 0 and run.counts["held_open"] == 3
    assert "lists no findings" in run.incomplete
    assert Finding.objects.filter(system=system).open().count() == 3


def test_an_empty_first_report_is_not_incomplete(system):
    run = run_import(sarif_bytes([]), system=system)
    assert run.status == "done" and run.incomplete == "" and run.counts["held_open"] == 0


def test_a_sarif_run_that_did_not_finish_closes_nothing(system):
    run_import(sarif_n(3), system=system)
    doc = json.loads(sarif_n(1))
    doc["runs"][0]["invocations"] = [{"executionSuccessful": False, "exitCode": 2}]
    run = run_import(json.dumps(doc).encode(), system=system)
    assert "did not run to the end" in run.incomplete
    assert run.counts["closed"] == 0 and run.counts["held_open"] == 2
    doc["runs"][0]["invocations"] = [{"executionSuccessful": True, "exitCode": 0}]
    run = run_import(json.dumps(doc).encode(), system=system)
    assert run.incomplete == "" and run.counts["closed"] == 2  # a complete report closes them


def test_the_same_snippet_in_two_places_is_two_findings(system):
    """bandit gives no fingerprint: the snippet is the identity, but the same call at lines 200 and 225 of one file
    is two problems, and moving both lines keeps both findings."""
    one, two = sarif_result(1, uri="app/stores.py"), sarif_result(1, uri="app/stores.py")
    one["locations"][0]["physicalLocation"]["region"]["startLine"] = 200
    two["locations"][0]["physicalLocation"]["region"]["startLine"] = 225
    run = run_import(sarif_bytes([one, two]), system=system)
    assert run.counts["created"] == 2 and run.counts["merged"] == 0
    assert sorted(Finding.objects.filter(system=system).values_list("line", flat=True)) == [200, 225]
    for result, line in ((one, 210), (two, 240)):  # code added above both: the same two findings
        result["locations"][0]["physicalLocation"]["region"]["startLine"] = line
    again = run_import(sarif_bytes([one, two]), system=system)
    assert again.counts["created"] == 0 and again.counts["updated"] == 2 and again.counts["closed"] == 0


def test_entries_sharing_a_tool_fingerprint_are_merged_and_counted(system):
    first = sarif_result(1)
    first["partialFingerprints"] = {"primaryLocationLineHash": "abc:1"}
    twin = copy.deepcopy(first)
    twin["message"]["text"] = "the same finding, reported twice"
    run = run_import(sarif_bytes([first, twin, sarif_result(2)]), system=system)
    assert run.counts["created"] == 2 and run.counts["merged"] == 1
    page_counts = run.counts
    assert page_counts["created"] + page_counts["merged"] == 3  # every entry of the report is accounted for
