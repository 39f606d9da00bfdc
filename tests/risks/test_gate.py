"""The go/no-go gate: every reason code with message and action, policies per tier, the API, constant queries."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.findings.models import FindingState
from governance.inventory import services as inventory_services
from governance.risks import gate, services
from governance.risks.matrix import gate_policy
from governance.risks.models import Decision, GatePolicy
from governance.rmf.models import AssessmentStatus, RmfAssessment
from tests.risks.conftest import accept, assess_all, bearer_client, make_finding, make_risk, rated, session_client

pytestmark = pytest.mark.django_db

YESTERDAY = lambda: timezone.now() - timedelta(days=1)  # noqa: E731


def gate_url(slug: str) -> str:
    return f"/api/v1/systems/{slug}/gate"


@pytest.fixture
def clean(system):
    """A high-tier system whose RMF profile is fully assessed: nothing blocks it."""
    assess_all(system)
    return system


def _only(result, code: str):
    assert result.decision == "no-go"
    matching = [r for r in result.reasons if r.code == code]
    assert len(matching) == 1, [r.code for r in result.reasons]
    reason = matching[0]
    assert reason.message and reason.action
    return reason


def test_clean_system_is_go(clean, engineer):
    rated(engineer, clean, residual=(1, 1))  # low residual: below the policy's limit
    result = gate.evaluate(clean)
    assert result.decision == "go" and result.reasons == []
    assert result.as_dict()["go"] is True and result.as_dict()["tier"] == "high"


# --- each reason ----------------------------------------------------------------------------------

@pytest.mark.parametrize("severity", ["critical", "high"])
def test_open_finding_past_sla_blocks(clean, severity):
    finding = make_finding(clean, severity=severity, sla_due=YESTERDAY(), title="Secret in repo")
    reason = _only(gate.evaluate(clean), f"FINDING_{severity.upper()}_PAST_SLA")
    assert reason.refs == [f"finding:{finding.pk}"]
    assert f"#{finding.pk}" in reason.message and "Secret in repo" in reason.message
    assert f"{timezone.localtime(finding.sla_due):%Y-%m-%d %H:%M}" in reason.message
    assert "findings queue" in reason.action


def test_findings_that_do_not_block(clean, other_system):
    make_finding(clean, severity="critical", sla_due=timezone.now() + timedelta(seconds=5))  # due in 5 s: not past
    make_finding(clean, severity="medium", sla_due=YESTERDAY())  # severity the policy ignores
    make_finding(clean, severity="critical", sla_due=YESTERDAY(), state=FindingState.FIXED)
    make_finding(clean, severity="critical", sla_due=YESTERDAY(), state=FindingState.FALSE_POSITIVE)
    make_finding(other_system, severity="critical", sla_due=YESTERDAY())  # another system's
    assert gate.evaluate(clean).decision == "go"


def _sarif_high() -> bytes:
    result = {"ruleId": "B602", "level": "error", "message": {"text": "subprocess with shell=True"},
              "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/run.py"}, "region": {"startLine": 7}}}],
              "properties": {"issue_severity": "HIGH", "issue_confidence": "HIGH"}}
    return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": [{"id": "B602"}]}},
                                                      "results": [result]}]}).encode()


def test_imported_finding_blocks_once_the_clock_passes_its_sla(clean, engineer, settings, tmp_path):
    from governance.findings.imports import import_run_execute
    from governance.findings.imports import import_run_create

    settings.MEDIA_ROOT = str(tmp_path)
    settings.RAMPART_SLA_DAYS = {**settings.RAMPART_SLA_DAYS, "high": 30}
    start = datetime(2031, 5, 1, 12, 0, tzinfo=dt_timezone.utc)
    with time_machine.travel(start, tick=False):
        run = import_run_create(actor=engineer, stream=io.BytesIO(_sarif_high()), filename="b.sarif", fmt="auto",
                                system=clean, source="bandit", repository="")
        import_run_execute(run.pk)
        finding = clean.findings.get()
        assert finding.severity == "high" and finding.sla_due == datetime(2031, 5, 31, 12, 0, tzinfo=dt_timezone.utc)
        assert gate.evaluate(clean).decision == "go"
    with time_machine.travel(datetime(2031, 5, 31, 12, 0, tzinfo=dt_timezone.utc), tick=False):
        assert gate.evaluate(clean).decision == "go"  # due this very second: not yet late
    with time_machine.travel(datetime(2031, 5, 31, 12, 0, 1, tzinfo=dt_timezone.utc), tick=False):
        reason = _only(gate.evaluate(clean), "FINDING_HIGH_PAST_SLA")
        assert reason.refs == [f"finding:{finding.pk}"]


def test_high_residual_without_acceptance_blocks(clean, owner, engineer):
    risk = rated(engineer, clean, residual=(3, 3), title="Training data poisoning")
    reason = _only(gate.evaluate(clean), "RISK_RESIDUAL_UNACCEPTED")
    assert reason.refs == [risk.ref]
    assert "high residual risk" in reason.message and risk.ref in reason.message
    assert "Request sign-off" in reason.action and "medium or lower" in reason.action
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    _only(gate.evaluate(clean), "RISK_RESIDUAL_UNACCEPTED")  # a pending request is not an acceptance
    services.decision_decide(actor=owner, risk=risk, accept=False, justification="Mitigate first.", expires_at=None)
    _only(gate.evaluate(clean), "RISK_RESIDUAL_UNACCEPTED")  # nor is a rejection
    accept(risk, owner)
    assert gate.evaluate(clean).decision == "go"


def test_mitigating_below_the_limit_clears_the_reason(clean, engineer):
    risk = rated(engineer, clean, residual=(3, 3))
    assert gate.evaluate(clean).decision == "no-go"
    services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 1, "residual_impact": 2})
    assert gate.evaluate(clean).decision == "go"


def test_closed_risks_do_not_block(clean, engineer):
    risk = rated(engineer, clean, residual=(5, 5))
    services.risk_close(actor=engineer, risk=risk, reason="System component removed.")
    assert gate.evaluate(clean).decision == "go"


def test_expired_acceptance_blocks(clean, owner, engineer):
    risk = rated(engineer, clean, residual=(4, 4))
    accept(risk, owner, days=5)
    with time_machine.travel(timezone.now() + timedelta(days=6), tick=False):
        reason = _only(gate.evaluate(clean), "ACCEPTANCE_EXPIRED")
        assert reason.refs == [risk.ref] and "expired" in reason.message and "accept it again" in reason.action


def test_required_rmf_subcategories_not_assessed_block(system):
    reason = _only(gate.evaluate(system), "RMF_REQUIRED_NOT_ASSESSED")
    assert reason.refs == ["rmf:MAP 1.1", "rmf:MEASURE 2.7", "rmf:MANAGE 1.1"]
    assert "MAP 1.1, MEASURE 2.7, MANAGE 1.1" in reason.message and "RMF profile" in reason.action
    RmfAssessment.objects.filter(system=system, subcategory__ident__in=["MAP 1.1", "MANAGE 1.1"]).update(
        status=AssessmentStatus.IMPLEMENTED)
    assert _only(gate.evaluate(system), "RMF_REQUIRED_NOT_ASSESSED").refs == ["rmf:MEASURE 2.7"]
    RmfAssessment.objects.filter(system=system, subcategory__ident="MEASURE 2.7").update(status=AssessmentStatus.GAP)
    gap = _only(gate.evaluate(system), "RMF_REQUIRED_GAP")
    assert gap.refs == ["rmf:MEASURE 2.7"]  # a gap is not met
    assert gap.url == reverse("rmf:profile", args=[system.slug]) + "?status=gap"  # opens the gaps
    RmfAssessment.objects.filter(system=system, subcategory__ident="MEASURE 2.7").update(
        status=AssessmentStatus.NOT_APPLICABLE)
    assert _only(gate.evaluate(system), "RMF_REQUIRED_NOT_APPLICABLE").refs == ["rmf:MEASURE 2.7"]
    RmfAssessment.objects.filter(system=system, subcategory__ident="MEASURE 2.7").update(status=AssessmentStatus.PARTIAL)
    assert gate.evaluate(system).decision == "go"  # implemented at least in part


def test_a_required_subcategory_without_an_assessment_row_is_not_assessed(system):
    RmfAssessment.objects.filter(system=system).update(status=AssessmentStatus.IMPLEMENTED)
    RmfAssessment.objects.filter(system=system, subcategory__ident="MAP 1.1").delete()
    assert _only(gate.evaluate(system), "RMF_REQUIRED_NOT_ASSESSED").refs == ["rmf:MAP 1.1"]


def test_unrated_risk_blocks_on_high_tier(clean, engineer):
    risk = make_risk(engineer, clean, title="Unrated one")
    assert risk.residual_level == "" and risk.residual_rank == 0
    reason = _only(gate.evaluate(clean), "RISK_NOT_RATED")
    assert reason.refs == [risk.ref] and "Rate its residual" in reason.action


def test_archived_system_is_no_go_first(clean, ciso):
    inventory_services.system_archive(actor=ciso, system=clean)
    clean.refresh_from_db()
    result = gate.evaluate(clean)
    assert result.decision == "no-go" and result.reasons[0].code == "SYSTEM_ARCHIVED"
    assert "Restore" in result.reasons[0].action


def test_every_reason_at_once(system, engineer, owner):
    make_finding(system, severity="critical", sla_due=YESTERDAY())
    rated(engineer, system, residual=(5, 5))
    make_risk(engineer, system)
    expired = rated(engineer, system, residual=(4, 5))
    accept(expired, owner, days=1)
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        codes = {r.code for r in gate.evaluate(system).reasons}
    assert codes == {"FINDING_CRITICAL_PAST_SLA", "RISK_RESIDUAL_UNACCEPTED", "RISK_NOT_RATED", "ACCEPTANCE_EXPIRED",
                     "RMF_REQUIRED_NOT_ASSESSED"}


# --- policies per tier ----------------------------------------------------------------------------

def test_tier_policies_change_the_outcome(clean, ciso, engineer):
    make_finding(clean, severity="high", sla_due=YESTERDAY())
    rated(engineer, clean, residual=(3, 3))  # high
    make_risk(engineer, clean)  # unrated
    assert {r.code for r in gate.evaluate(clean).reasons} == {"FINDING_HIGH_PAST_SLA", "RISK_RESIDUAL_UNACCEPTED",
                                                              "RISK_NOT_RATED"}
    clean = inventory_services.system_update(actor=ciso, system=clean, data={"risk_tier": "medium"})
    assert gate.evaluate(clean).decision == "go"  # medium tier: only critical findings, residual up to high, unrated ok

    policy = gate_policy("medium")
    policy.blocking_finding_severities = ["critical", "high"]
    policy.max_unaccepted_level = "medium"
    policy.block_unrated_risks = True
    policy.save()
    assert {r.code for r in gate.evaluate(clean).reasons} == {"FINDING_HIGH_PAST_SLA", "RISK_RESIDUAL_UNACCEPTED",
                                                              "RISK_NOT_RATED"}


def test_policy_required_subcategories_are_configurable(clean):
    GatePolicy.objects.update_or_create(tier="high", defaults={"required_subcategories": ["GOVERN 1.1"],
                                                               "blocking_finding_severities": [], "max_unaccepted_level": "",
                                                               "block_unrated_risks": False})
    assert gate.evaluate(clean).decision == "go"
    RmfAssessment.objects.filter(system=clean, subcategory__ident="GOVERN 1.1").update(status=AssessmentStatus.NOT_ASSESSED)
    assert _only(gate.evaluate(clean), "RMF_REQUIRED_NOT_ASSESSED").refs == ["rmf:GOVERN 1.1"]


def test_empty_max_level_means_every_rated_risk_needs_acceptance(clean, engineer):
    GatePolicy.objects.update_or_create(tier="high", defaults={"max_unaccepted_level": ""})
    rated(engineer, clean, residual=(1, 1))
    assert _only(gate.evaluate(clean), "RISK_RESIDUAL_UNACCEPTED")


# --- the API --------------------------------------------------------------------------------------

def test_api_go_is_200(clean, engineer):
    response = bearer_client(engineer).get(gate_url(clean.slug))
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "go" and body["go"] is True and body["reasons"] == [] and body["system"] == clean.slug


def test_api_no_go_is_409_with_every_reason(system, engineer):
    risk = rated(engineer, system, residual=(5, 5))
    response = bearer_client(engineer).get(gate_url(system.slug))
    assert response.status_code == 409
    body = response.json()
    assert body["decision"] == "no-go" and body["go"] is False
    by_code = {r["code"]: r for r in body["reasons"]}
    assert set(by_code) == {"RISK_RESIDUAL_UNACCEPTED", "RMF_REQUIRED_NOT_ASSESSED"}
    assert body["counts"] == {"RISK_RESIDUAL_UNACCEPTED": 1, "RMF_REQUIRED_NOT_ASSESSED": 3}
    assert body["blocking_items"] == 4
    for reason in body["reasons"]:
        assert set(reason) == {"code", "message", "action", "refs", "count", "url"}
        assert reason["message"] and reason["action"]
    assert by_code["RISK_RESIDUAL_UNACCEPTED"]["refs"] == [risk.ref]


def test_api_unknown_system_is_404(ciso):
    assert bearer_client(ciso).get(gate_url("no-such-system")).status_code == 404


def test_api_needs_authentication(clean):
    assert APIClient().get(gate_url(clean.slug)).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer rmp_not-a-real-token-at-all-000000")
    assert bad.get(gate_url(clean.slug)).status_code == 401


def test_api_accepts_a_session(clean, owner):
    assert session_client(owner).get(gate_url(clean.slug)).status_code == 200


def test_api_archived_system_is_409(clean, ciso):
    inventory_services.system_archive(actor=ciso, system=clean)
    body = bearer_client(ciso).get(gate_url(clean.slug)).json()
    assert body["reasons"][0]["code"] == "SYSTEM_ARCHIVED"


# --- constant query count -------------------------------------------------------------------------

def _populate(system, owner, engineer, n: int) -> None:
    for i in range(n):
        risk = rated(engineer, system, residual=(3 + i % 3, 3))
        if i % 3 == 0:
            accept(risk, owner)
        elif i % 3 == 1:
            accept(risk, owner, days=1)
        else:
            services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
        make_finding(system, severity="critical" if i % 2 else "high", sla_due=YESTERDAY())
    make_risk(engineer, system)


def _gate_queries(system, client) -> tuple[list, dict]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(gate_url(system.slug))
    return ctx.captured_queries, response.json()


def test_gate_query_count_does_not_grow(system, other_system, owner, other_owner, engineer):
    _populate(system, owner, engineer, 3)
    _populate(other_system, other_owner, engineer, 40)
    client = bearer_client(engineer)
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        client.get(gate_url(system.slug))  # warm: policy row and matrix created, token's last use recorded
        small_q, small = _gate_queries(system, client)
        big_q, big = _gate_queries(other_system, client)
    few, many = len(small_q), len(big_q)
    assert few == many, ([q["sql"][:60] for q in small_q], [q["sql"][:60] for q in big_q])
    # Pinned: token (with its user) + system + policy + matrix + findings + risks + their acceptances + RMF.
    assert many == 8, [q["sql"][:60] for q in big_q]
    assert {r["code"] for r in big["reasons"]} >= {"ACCEPTANCE_EXPIRED", "RISK_RESIDUAL_UNACCEPTED", "RISK_NOT_RATED",
                                                   "FINDING_CRITICAL_PAST_SLA"}
    # Every blocking finding counts, whatever is listed: 20 critical and 20 high of the 40 past their SLA.
    assert big["counts"]["FINDING_CRITICAL_PAST_SLA"] == 20 and big["counts"]["FINDING_HIGH_PAST_SLA"] == 20
    assert {r["code"] for r in small["reasons"]} >= {"FINDING_CRITICAL_PAST_SLA", "FINDING_HIGH_PAST_SLA"}


def test_every_blocking_finding_counts_beyond_what_is_listed(clean, monkeypatch):
    monkeypatch.setattr(gate, "LIST_LIMIT", 3)
    ids = [make_finding(clean, severity="critical", sla_due=YESTERDAY()).pk for _ in range(7)]
    result = gate.evaluate(clean)
    listed = [r for r in result.reasons if r.count == 1]
    assert [r.refs for r in listed] == [[f"finding:{i}"] for i in ids[:3]]  # due soonest first (same due: by id)
    rest = [r for r in result.reasons if r.count > 1]
    assert len(rest) == 1 and rest[0].count == 4 and "4 more" in rest[0].message
    assert rest[0].url.endswith(f"?system={clean.slug}&severity=critical&breached=1")
    assert result.counts == {"FINDING_CRITICAL_PAST_SLA": 7} and result.blocking_items == 7


def test_pages_say_the_reasons_in_words_and_the_api_keeps_the_codes(system, owner):
    from django.test import Client

    from governance.risks.gate import reason_label

    assert reason_label("FINDING_HIGH_PAST_SLA") == "high findings past their SLA"
    assert reason_label("FINDING_HIGH_PAST_SLA", 1) == "high finding past its SLA"
    assert reason_label("RMF_REQUIRED_GAP", 1) == "required RMF subcategory marked as a gap"
    assert reason_label("SIGNOFF_MISSING", 1) == reason_label("SIGNOFF_MISSING") == "no release sign-off"
    assert reason_label("FINDING_CRITICAL_OPEN") == "open critical findings"
    assert reason_label("RMF_REQUIRED_GAP") == "required RMF subcategories marked as a gap"
    assert reason_label("SOMETHING_NEW") == "SOMETHING_NEW"
    make_finding(system, severity="high", sla_due=YESTERDAY())
    client = Client()
    client.force_login(owner)
    page = client.get(system.get_absolute_url()).content.decode()
    assert "1 <span data-code=\"FINDING_HIGH_PAST_SLA\" title=\"FINDING_HIGH_PAST_SLA\">high finding past its SLA" in page
    assert ">FINDING_HIGH_PAST_SLA<" not in page
