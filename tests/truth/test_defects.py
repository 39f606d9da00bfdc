"""One test per defect of the "truth" issue that the reference model does not reach by itself (real imports,
pagination, forms), each failing on the code before the fix."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.findings import selectors as finding_selectors
from governance.findings.models import Finding
from governance.findings.selectors import QueueFilters, queue_page
from governance.risks import gate, services
from governance.risks.models import Decision, Risk, RiskStatus
from governance.rmf.models import AssessmentStatus, RmfAssessment
from tests.findings.conftest import run_import, sarif_bytes, sarif_result
from tests.risks.conftest import accept, assess_all, bearer_client, rated

pytestmark = pytest.mark.django_db
T0 = datetime(2031, 5, 1, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _report(severity: str) -> bytes:
    return sarif_bytes([sarif_result(1, severity=severity)])


# --- SLA ------------------------------------------------------------------------------------------------

def test_a_reimport_that_raises_severity_recomputes_the_due_time_and_the_gate_follows(system):
    """medium -> critical kept the 90-day clock, and the gate said go for a 40-day-old open critical."""
    assess_all(system)
    with time_machine.travel(T0, tick=False):
        run_import(_report("MEDIUM"), system=system)
    finding = Finding.objects.get(system=system)
    assert finding.sla_due == T0 + timedelta(days=90)
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        run_import(_report("CRITICAL"), system=system)
        finding.refresh_from_db()
        assert finding.severity == "critical" and finding.first_seen == T0
        assert finding.sla_due == T0 + timedelta(days=7)  # first seen + the critical SLA, to the second
        result = gate.evaluate(system)
        assert result.decision == "no-go" and result.counts == {"FINDING_CRITICAL_PAST_SLA": 1}
        run_import(_report("LOW"), system=system)  # lowered: the clock of the new severity, not the stricter one
        finding.refresh_from_db()
        assert finding.sla_due == T0 + timedelta(days=180)
        assert gate.evaluate(system).decision == "go"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "UTC", "Pacific/Pago_Pago"])
def test_breach_is_a_moment_whatever_the_time_zone(system, settings, zone):
    """Breach was counted in whole UTC days against the local date: the effective SLA was N to N+1 days."""
    settings.TIME_ZONE = zone
    with time_machine.travel(T0, tick=False):
        run_import(_report("CRITICAL"), system=system)
    due = T0 + timedelta(days=7)
    for moment, breached in ((due - timedelta(seconds=1), 0), (due, 0), (due + timedelta(seconds=1), 1)):
        assert finding_selectors.queue_list(QueueFilters(breached=True, at=moment)).total == breached, moment


def test_the_sla_sort_lists_findings_without_an_sla_last_and_loses_none(system):
    results = [sarif_result(i, severity=("LOW" if i % 3 else "HIGH")) for i in range(7)]
    run_import(sarif_bytes(results), system=system)
    Finding.objects.filter(severity="low").update(severity="info", severity_rank=1, sla_due=None)
    size, finding_selectors.QUEUE_PAGE = finding_selectors.QUEUE_PAGE, 2
    try:
        seen, cursor = [], ""
        while True:
            rows, cursor = queue_page(QueueFilters(sort="sla"), cursor)
            seen += rows
            if not cursor:
                break
    finally:
        finding_selectors.QUEUE_PAGE = size
    assert len(seen) == 7 == len({f.pk for f in seen})  # every finding once, across pages
    dues = [f.sla_due for f in seen]
    assert all(d is not None for d in dues[:3]) and dues[3:] == [None] * 4  # info (no SLA) at the end, by id
    assert [f.pk for f in seen[3:]] == sorted(f.pk for f in seen[3:])


# --- risks and decisions --------------------------------------------------------------------------------

def test_an_acceptance_reads_as_expired_the_second_it_ends_without_waiting_for_the_job(engineer, owner, system):
    risk = rated(engineer, system, residual=(4, 4))
    with time_machine.travel(T0, tick=False):
        decision = services.decision_decide(actor=owner, risk=risk, accept=True, justification="ok",
                                            expires_at=T0 + timedelta(hours=8, minutes=34))
    end = decision.expires_at
    standing = lambda at: Risk.objects.with_standing(at).get(pk=risk.pk).current_status  # noqa: E731
    assert standing(end - timedelta(seconds=1)) == RiskStatus.ACCEPTED
    assert standing(end) == RiskStatus.OPEN  # no job has run: the row still says "accepted"
    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.ACCEPTED
    with time_machine.travel(end + timedelta(seconds=1), tick=False):
        page = _client(owner).get(reverse("risks:list")).content.decode()
        assert "rstatus-open" in page and "rstatus-accepted" not in page
        assert gate.evaluate(system).counts.get("ACCEPTANCE_EXPIRED") == 1


def test_closing_a_risk_withdraws_its_decisions_and_refuses_new_ones(engineer, owner, ciso, system):
    pending = rated(engineer, system, residual=(4, 4))
    services.decision_request(actor=engineer, risk=pending, kind="residual_risk")
    accepted = rated(engineer, system, residual=(4, 4))
    accept(accepted, owner, days=10)
    for risk in (pending, accepted):
        services.risk_close(actor=engineer, risk=risk, reason="retired")
    assert not Decision.objects.filter(status__in=("pending", "accepted")).exists()
    assert not services_inbox(owner) and not services_inbox(ciso)
    response = bearer_client(owner).post(f"/api/v1/risks/{accepted.ref}/decision",
                                         {"decision": "accept", "justification": "again",
                                          "expires_at": (timezone.now() + timedelta(days=5)).isoformat()}, format="json")
    assert response.status_code == 409 and "closed" in response.json()["detail"]
    accepted.refresh_from_db()
    assert accepted.status == RiskStatus.CLOSED


def services_inbox(user):
    from governance.risks.selectors import expiring, inbox

    return list(inbox(user)) + list(expiring(user))


def test_raising_the_rating_above_what_was_accepted_asks_again_and_lowering_keeps_it(engineer, owner, system):
    assess_all(system)
    risk = rated(engineer, system, residual=(3, 3))  # high
    accept(risk, owner)
    assert gate.evaluate(system).decision == "go"
    services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 2, "residual_impact": 4})  # medium
    assert Risk.objects.with_standing(timezone.now()).get(pk=risk.pk).current_status == RiskStatus.ACCEPTED
    services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 5, "residual_impact": 5})  # critical
    standing = Risk.objects.with_standing(timezone.now()).get(pk=risk.pk)
    assert standing.current_status == RiskStatus.AWAITING_DECISION and standing.accepted_until is None
    assert gate.evaluate(system).counts == {"RISK_RESIDUAL_UNACCEPTED": 1}
    withdrawn = AuditEvent.objects.get(action="decision.withdraw")
    assert "critical" in withdrawn.after["reason"] and withdrawn.actor == engineer
    assert Decision.objects.get(risk=risk, status="pending").request_note == withdrawn.after["reason"]


def test_an_acceptance_with_a_new_request_counts_as_accepted_everywhere(client, engineer, owner, ciso, system):
    """Posture counted it "not accepted" by its status field while the gate read its acceptance."""
    assess_all(system)
    risk = rated(engineer, system, residual=(4, 4))
    accept(risk, owner)
    services.decision_request(actor=engineer, risk=risk, kind="treatment_plan")
    assert gate.evaluate(system).decision == "go"
    client.force_login(ciso)
    home = client.get("/").content.decode()
    assert re.search(r'data-kpi="high_risks">0<', home) and re.search(r'data-kpi="awaiting">1<', home)


# --- RMF ------------------------------------------------------------------------------------------------

def test_an_unchanged_assessment_save_keeps_its_review_date(client, ciso, system, settings):
    """The date input was rendered in the locale's format, which <input type=date> refuses: saving wiped it."""
    settings.LANGUAGE_CODE = "en-gb"
    a = RmfAssessment.objects.filter(system=system).first()
    a.status, a.last_reviewed = AssessmentStatus.PARTIAL, date(2026, 3, 9)
    a.save()
    client.force_login(ciso)
    form = client.get(reverse("rmf:assessment-edit", args=[a.pk])).content.decode()
    value = re.search(r'name="last_reviewed" value="([^"]*)"', form).group(1)
    assert value == "2026-03-09"
    response = client.post(reverse("rmf:assessment-edit", args=[a.pk]),
                           {"status": "partial", "owner": "", "evidence_notes": "", "evidence_links": "",
                            "last_reviewed": value})
    assert response.status_code in (200, 302)
    a.refresh_from_db()
    assert a.last_reviewed == date(2026, 3, 9)


# --- posture --------------------------------------------------------------------------------------------

def test_an_unassigned_critical_appears_on_posture_and_its_list(client, ciso, system):
    """A 9-day-old critical private key in an unassigned feed never appeared on the posture page."""
    with time_machine.travel(timezone.now() - timedelta(days=9), tick=False):
        run_import(_report("CRITICAL"), source="gitleaks-nightly")  # no system, no mapping rule
    client.force_login(ciso)
    home = client.get("/").content.decode()
    assert "Unassigned feeds" in home
    assert re.search(r'data-kpi="critical_high">1<', home) and re.search(r'data-kpi="past_sla">1<', home)
    listed = client.get("/findings/?breached=1").content.decode()
    assert 'data-total="1"' in listed


def test_the_gate_api_counts_every_blocking_item(engineer, system):
    assess_all(system)
    with time_machine.travel(T0, tick=False):
        run_import(sarif_bytes([sarif_result(i, severity="CRITICAL") for i in range(130)]), system=system)
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        body = bearer_client(engineer).get(f"/api/v1/systems/{system.slug}/gate").json()
    assert body["counts"] == {"FINDING_CRITICAL_PAST_SLA": 130} and body["blocking_items"] == 130
    assert sum(r["count"] for r in body["reasons"]) == 130
    assert len(body["reasons"]) == gate.LIST_LIMIT + 1  # listed one by one, then "…and 80 more" with its list


def _client(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_api_risk_status_is_what_holds_now(engineer, owner, system):
    risk = rated(engineer, system, residual=(4, 4))
    accept(risk, owner, days=1)
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        body = bearer_client(engineer).get(f"/api/v1/risks/{risk.ref}/").json()
    assert body["status"] == "open" and body["accepted_until"] is None
    body = bearer_client(engineer).get(f"/api/v1/risks/{risk.ref}/").json()
    assert body["status"] == "accepted" and body["accepted_until"]
    assert json.dumps(body)  # serialisable


def test_the_scanner_filter_lists_a_new_scanner_at_once(system):
    """The list used to be cached for five minutes: a page read after an import could miss its scanner."""
    run_import(_report("HIGH"), system=system)
    assert finding_selectors.queue_tools() == ["Bandit"]
    run_import(sarif_bytes([sarif_result(1)], tool="Semgrep"), system=system, source="semgrep")
    assert finding_selectors.queue_tools() == ["Bandit", "Semgrep"]
