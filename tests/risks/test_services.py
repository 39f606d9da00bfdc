"""Sign-off rules in the services: who may decide, what a decision needs, the inbox, e-mails, frozen snapshots."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.findings.models import FindingState
from governance.risks import selectors, services
from governance.risks.models import Decision, MitigationAction, Risk, RiskStatus
from tests.risks.conftest import accept, make_finding, make_risk, rated

pytestmark = pytest.mark.django_db


def _state(risk) -> tuple:
    risk.refresh_from_db()
    return (risk.status, list(risk.decisions.values_list("status", "justification", "expires_at")))


# --- who may decide ------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner", "ciso"])
def test_owner_of_the_system_and_ciso_may_decide(request, engineer, system, who):
    risk = rated(engineer, system)
    decider = request.getfixturevalue(who)
    decision = accept(risk, decider)
    risk.refresh_from_db()
    assert decision.status == Decision.Status.ACCEPTED and decision.decided_by == decider
    assert risk.status == RiskStatus.ACCEPTED


@pytest.mark.parametrize("who", ["other_owner", "engineer", "facilitator", "nobody", "admin_user"])
def test_others_may_not_decide_and_nothing_changes(request, engineer, system, who):
    risk = rated(engineer, system)
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    before, events = _state(risk), AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        accept(risk, request.getfixturevalue(who))
    with pytest.raises(PermissionDenied):
        services.decision_decide(actor=request.getfixturevalue(who), risk=risk, accept=False,
                                 justification="No.", expires_at=None)
    assert _state(risk) == before and AuditEvent.objects.count() == events


def test_product_owner_decides_only_on_own_systems(owner, other_owner, engineer, system, other_system):
    mine, theirs = rated(engineer, system), rated(engineer, other_system)
    accept(mine, owner)
    with pytest.raises(PermissionDenied):
        accept(theirs, owner)
    accept(theirs, other_owner)
    assert Decision.objects.filter(status="accepted").count() == 2


# --- what a decision needs -----------------------------------------------------------------------

@pytest.mark.parametrize("justification, expires_in, field", [
    ("", timedelta(days=30), "justification"),
    ("   ", timedelta(days=30), "justification"),
    ("Controls in place.", None, "expires_at"),
    ("Controls in place.", timedelta(seconds=-1), "expires_at"),
    ("Controls in place.", timedelta(0), "expires_at"),
])
def test_acceptance_needs_justification_and_future_expiry(owner, engineer, system, justification, expires_in, field):
    risk = rated(engineer, system)
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    before, events = _state(risk), AuditEvent.objects.count()
    expires_at = timezone.now() + expires_in if expires_in is not None else None
    with pytest.raises(ValidationError) as exc:
        services.decision_decide(actor=owner, risk=risk, accept=True, justification=justification, expires_at=expires_at)
    assert field in exc.value.message_dict
    assert _state(risk) == before and AuditEvent.objects.count() == events


def test_rejection_needs_a_reason_and_no_expiry(owner, engineer, system):
    risk = rated(engineer, system)
    with pytest.raises(ValidationError) as exc:
        services.decision_decide(actor=owner, risk=risk, accept=False, justification="", expires_at=None)
    assert "justification" in exc.value.message_dict
    decision = services.decision_decide(actor=owner, risk=risk, accept=False, justification="Residual too high; add a filter.",
                                        expires_at=timezone.now() + timedelta(days=3))
    risk.refresh_from_db()
    assert decision.status == Decision.Status.REJECTED and decision.expires_at is None
    assert risk.status == RiskStatus.REJECTED
    assert AuditEvent.objects.filter(action="decision.reject", object_id=str(decision.pk)).exists()


def test_new_decision_withdraws_the_previous_acceptance(owner, engineer, system):
    risk = rated(engineer, system)
    first = accept(risk, owner)
    services.decision_decide(actor=owner, risk=risk, accept=False, justification="Changed my mind.", expires_at=None)
    first.refresh_from_db()
    assert first.status == Decision.Status.WITHDRAWN
    assert list(risk.decisions.values_list("status", flat=True).order_by("id")) == ["withdrawn", "rejected"]


# --- request, inbox, e-mails ---------------------------------------------------------------------

def test_request_creates_a_pending_decision_in_the_owners_inbox_only(owner, other_owner, engineer, ciso, nobody,
                                                                      system, other_system):
    risk = rated(engineer, system)
    rated(engineer, other_system)
    decision = services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.TREATMENT_PLAN, note="Please sign.")
    risk.refresh_from_db()
    assert decision.status == Decision.Status.PENDING and risk.status == RiskStatus.AWAITING_DECISION
    assert list(selectors.inbox(owner)) == [decision]
    assert list(selectors.inbox(ciso)) == [decision]
    for user in (other_owner, engineer, nobody):
        assert list(selectors.inbox(user)) == []
    # Deciding takes it out of the inbox.
    accept(risk, owner)
    assert list(selectors.inbox(owner)) == [] and list(selectors.inbox(ciso)) == []


def test_second_request_replaces_the_pending_one(owner, engineer, system):
    risk = rated(engineer, system)
    first = services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    second = services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.TREATMENT_PLAN)
    first.refresh_from_db()
    assert first.status == Decision.Status.WITHDRAWN
    assert list(selectors.inbox(owner)) == [second]


def test_closed_risk_cannot_be_put_up_for_decision(engineer, system):
    risk = rated(engineer, system)
    services.risk_close(actor=engineer, risk=risk, reason="Feature removed.")
    with pytest.raises(ValidationError):
        services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)


def test_request_mails_the_product_owner(owner, engineer, system, mailoutbox, run_on_commit):
    risk = rated(engineer, system, title="Jailbreak via uploaded PDF")
    with run_on_commit():
        services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK, note="Ready for you.")
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [owner.email]
    assert risk.ref in mail.subject and "Sign-off requested" in mail.subject
    assert "Ready for you." in mail.body and f"/risks/{risk.ref}" in mail.body


def test_decision_mails_requester_and_risk_owner(owner, engineer, ciso, system, mailoutbox, run_on_commit):
    risk = rated(engineer, system, owner=ciso)
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    mailoutbox.clear()
    with run_on_commit():
        accept(risk, owner, justification="WAF rule deployed.")
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([engineer.email, ciso.email])
    assert "Accepted" in mailoutbox[0].subject and "WAF rule deployed." in mailoutbox[0].body


def test_nothing_is_mailed_when_the_decision_is_refused(owner, other_owner, engineer, system, mailoutbox, run_on_commit):
    risk = rated(engineer, system)
    with run_on_commit(), pytest.raises(PermissionDenied):
        accept(risk, other_owner)
    assert mailoutbox == []


def test_upcoming_expiry_warns_owner_once(owner, engineer, ciso, system, mailoutbox):
    soon, later = rated(engineer, system, owner=ciso), rated(engineer, system)
    accept(soon, owner, days=10)
    accept(later, owner, days=60)
    assert services.acceptances_warn(days=14) == 1
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([owner.email, ciso.email])
    assert soon.ref in mailoutbox[0].subject and "expires" in mailoutbox[0].subject
    assert services.acceptances_warn(days=14) == 0 and len(mailoutbox) == 1
    assert Decision.objects.get(risk=soon).expiry_warned_at is not None


# --- snapshot ------------------------------------------------------------------------------------

def _sha(snapshot) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_snapshot_survives_later_edits(owner, engineer, system):
    finding = make_finding(system)
    risk = rated(engineer, system, title="Model leaks PII", residual=(2, 2), rmf_subcategories=[], findings=[finding])
    services.mitigation_add(actor=engineer, risk=risk, data={"title": "Output filter", "owner": engineer})
    decision = accept(risk, owner)
    stored = Decision.objects.get(pk=decision.pk)
    frozen, frozen_sha = stored.snapshot, stored.snapshot_sha256
    assert frozen["title"] == "Model leaks PII" and frozen["residual_level"] == "medium"
    assert frozen["actions"][0]["title"] == "Output filter" and frozen["open_findings"] == [finding.pk]
    assert frozen["system"] == {"slug": system.slug, "name": system.name}
    assert frozen_sha == _sha(frozen)

    services.risk_update(actor=engineer, risk=risk, data={"title": "Renamed", "residual_likelihood": 5, "residual_impact": 5,
                                                          "treatment_plan": "Different plan"})
    action = MitigationAction.objects.get(risk=risk)
    services.mitigation_set_status(actor=engineer, action=action, status=MitigationAction.Status.DONE)
    services.mitigation_add(actor=engineer, risk=risk, data={"title": "Another action"})
    Risk.objects.get(pk=risk.pk).findings.clear()

    stored = Decision.objects.get(pk=decision.pk)
    assert stored.snapshot == frozen and stored.snapshot_sha256 == frozen_sha == _sha(stored.snapshot)
    event = AuditEvent.objects.get(action="decision.accept", object_id=str(decision.pk))
    assert event.after["snapshot_sha256"] == frozen_sha


def test_verify_audit_covers_decisions_and_names_a_tampered_one(owner, engineer, system, capsys):
    risk = rated(engineer, system)
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    decision = accept(risk, owner)
    services.decision_decide(actor=owner, risk=rated(engineer, system), accept=False, justification="No.", expires_at=None)
    call_command("verify_audit")
    assert "Audit trail intact" in capsys.readouterr().out

    event = AuditEvent.objects.get(action="decision.accept", object_id=str(decision.pk))
    tampered = {**event.after, "expires_at": "2099-01-01T00:00:00Z"}
    AuditEvent.objects.filter(pk=event.pk).update(after=tampered)
    with pytest.raises(CommandError, match=rf"event #{event.seq} was altered"):
        call_command("verify_audit")


# --- closing risks and findings are independent --------------------------------------------------

def test_closing_a_risk_leaves_its_findings_open(engineer, system):
    findings = [make_finding(system), make_finding(system, severity="high")]
    risk = rated(engineer, system, findings=findings)
    services.risk_close(actor=engineer, risk=risk, reason="Accepted by design.")
    risk.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED
    assert sorted(risk.findings.values_list("state", flat=True)) == [FindingState.NEW, FindingState.NEW]


def test_link_findings_is_audited_and_idempotent(engineer, system):
    risk = rated(engineer, system)
    f1, f2 = make_finding(system), make_finding(system)
    assert services.risk_link_findings(actor=engineer, risk=risk, findings=[f1, f2]) == 2
    assert services.risk_link_findings(actor=engineer, risk=risk, findings=[f1]) == 0
    assert AuditEvent.objects.filter(action="risk.link_findings").count() == 1


def _sarif(rule_ids: list[str]) -> bytes:
    results = [{"ruleId": rid, "level": "error", "message": {"text": f"problem {rid}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f"src/{rid}.py"}, "region": {"startLine": 3}}}],
                "properties": {"issue_severity": "HIGH", "issue_confidence": "HIGH"}} for rid in rule_ids]
    return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": [{"id": r} for r in rule_ids]}},
                                                      "results": results}]}).encode()


def _import(system, data: bytes, engineer):
    import io

    from governance.findings.imports import import_run_execute
    from governance.findings.imports import import_run_create

    run = import_run_create(actor=engineer, stream=io.BytesIO(data), filename="bandit.sarif", fmt="auto", system=system,
                            source="bandit", repository="")
    import_run_execute(run.pk)
    run.refresh_from_db()
    return run


def test_finding_closed_by_reimport_does_not_close_the_risk(engineer, system, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    run = _import(system, _sarif(["B601", "B602"]), engineer)
    assert run.status == "done"
    gone = system.findings.get(rule_id="B602")
    risk = rated(engineer, system, findings=list(system.findings.all()))
    _import(system, _sarif(["B601"]), engineer)
    gone.refresh_from_db()
    risk.refresh_from_db()
    assert gone.state not in ("new", "confirmed")
    assert risk.status == RiskStatus.OPEN
    assert risk.findings.count() == 2


@pytest.mark.parametrize("tamper", ["snapshot", "both"])
def test_verify_audit_fails_when_a_signed_snapshot_is_rewritten(owner, engineer, system, tamper):
    risk = rated(engineer, system, title="What was signed")
    decision = accept(risk, owner)
    call_command("verify_audit")
    snap = {**decision.snapshot, "title": "Something milder"}
    update = {"snapshot": snap}
    if tamper == "both":  # rewrite the row's hash too: the audited hash still tells
        update["snapshot_sha256"] = _sha(snap)
    Decision.objects.filter(pk=decision.pk).update(**update)
    message = "no longer matches its hash" if tamper == "snapshot" else "differs from the audited one"
    with pytest.raises(CommandError, match=rf"decision {decision.pk} of {risk.ref}: its .*{message}"):
        call_command("verify_audit")


def test_warning_claims_before_sending(owner, engineer, system, mailoutbox):
    risk = rated(engineer, system)
    decision = accept(risk, owner, days=3)
    Decision.objects.filter(pk=decision.pk).update(expiry_warned_at=timezone.now())  # another run claimed it
    assert services.acceptances_warn() == 0 and mailoutbox == []


def test_only_the_decider_lowers_the_rating_of_a_signed_off_risk(engineer, owner, system):
    """Lowered by an engineer, it would outlast its acceptance: once that expired, the gate would say go unasked."""
    from django.core.exceptions import PermissionDenied

    from tests.risks.conftest import accept, rated

    risk = rated(engineer, system, residual=(4, 4))
    accept(risk, owner)
    with pytest.raises(PermissionDenied):
        services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 1, "residual_impact": 1})
    risk.refresh_from_db()
    assert risk.residual_likelihood == 4
    services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 5, "residual_impact": 5})  # raising
    services.risk_update(actor=owner, risk=risk, data={"residual_likelihood": 1, "residual_impact": 1})
    risk.refresh_from_db()
    assert risk.residual_likelihood == 1


def test_linking_findings_of_another_system_is_refused_by_the_service(engineer, system, other_system):
    """The rule was enforced by the form, the API and the queue view, but not by risk_link_findings itself."""
    risk = make_risk(engineer, system)
    foreign, own = make_finding(other_system), make_finding(system)
    with pytest.raises(ValidationError) as refused:
        services.risk_link_findings(actor=engineer, risk=risk, findings=[own, foreign])
    assert f"#{foreign.pk}" in str(refused.value)
    assert not risk.findings.exists()
    with pytest.raises(ValidationError):
        services.risk_update(actor=engineer, risk=risk, data={}, relations={"findings": [foreign]})
    assert services.risk_link_findings(actor=engineer, risk=risk, findings=[own]) == 1
