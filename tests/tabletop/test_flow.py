"""The whole exercise at service level: plan → run with a controlled clock → respond, score → report → register."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit.models import AuditEvent
from governance.inventory import services as inventory
from governance.risks.models import Risk
from governance.rmf.models import RmfAssessment, RmfSubcategory
from governance.tabletop import report_md, selectors, services
from governance.tabletop.models import ExerciseState, ImprovementItem, InjectRelease, VisibilityGap
from governance.tabletop.selectors import last_exercised
from tests.tabletop.conftest import at


def test_builtin_scenarios_load_idempotently(scenarios):
    from governance.tabletop.loader import load_builtin_scenarios

    assert scenarios.count() >= 6
    for s in scenarios:
        n = s.injects.count()
        assert 4 <= n <= 6, s.slug
        assert s.rmf_subcategories.exists() and s.references.filter(catalogue="atlas-technique").exists(), s.slug
    assert {o for _, o in load_builtin_scenarios()} == {"unchanged"}


def test_whole_exercise(exercise, facilitator, people, system, ciso):
    ml = exercise.participants.get(user=people["ml"])
    observer = exercise.participants.get(user=people["observer"])
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    assert services.exercises_release_due(now=at(0)) == 1  # inject 1 at T+0
    assert services.exercises_release_due(now=at(5)) == 0
    assert services.exercises_release_due(now=at(11)) == 1  # inject 2 at T+10
    releases = list(InjectRelease.objects.filter(exercise=exercise).order_by("clock_minute"))
    assert [r.inject.order for r in releases] == [1, 2]
    # inject 1 goes to security: not for the ML engineer; inject 2 is for ML engineers
    with pytest.raises(PermissionDenied):
        services.response_record(participant=ml, release=releases[0], text="x", now=at(12))
    services.response_record(participant=ml, release=releases[1], text="Quarantine the checkpoint", now=at(13))
    with pytest.raises(ValidationError):
        services.response_record(participant=ml, release=releases[1], text="Roll back", kind="decision", now=at(14))
    services.response_record(participant=ml, release=releases[1], text="Roll back fraud-xgb", kind="decision",
                             rationale="Cannot prove 7.2.1 is clean", now=at(15))
    # the pickle question was answered from the inventory (no third-party pickle models here: nothing to list)
    assert releases[1].visibility_answer["question"].startswith("Which systems load pickle")
    action = releases[1].inject.expected_actions.first()
    services.score_record(observer=observer, action=action, rating=3, observation="Named the jobs quickly", now=at(16))
    services.score_record(observer=observer, action=action, rating=2, observation="Missed one job", now=at(17))  # re-score
    services.observation_add(author=people["observer"], exercise=exercise, kind="strength", text="Calm escalation", now=at(18))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="hot_wash", now=at(30))
    services.hotwash_update(actor=facilitator, exercise=exercise, strengths="Fast containment",
                            areas_for_improvement="No hash pinning for hub downloads")

    exercise.refresh_from_db()
    report = selectors.report(exercise)
    assert report.totals["duration"] == 30.0
    assert report.totals["injects"] == 2 and report.totals["responses"] == 2 and report.totals["decisions"] == 1
    row = next(r for r in report.first_response if r["release"].pk == releases[1].pk)
    assert row["minutes"] == pytest.approx(2.0, abs=0.01)  # released at T+11, first response at T+13
    assert next(r for r in report.first_response if r["release"].pk == releases[0].pk)["minutes"] is None
    assert "Fast containment" in report.strengths and "Calm escalation" in report.strengths
    objective = report.by_objective[action.objective]
    assert objective["pct"] == 67  # one rating of 2 out of 3
    md = report_md.render(report)
    assert "# After-action report" in md and "Roll back fraud-xgb" in md

    item = services.improvement_add(actor=facilitator, exercise=exercise, data={
        "title": "Pin hashes of third-party model downloads", "kind": "risk", "system": system, "owner": ciso})
    item = services.improvement_promote(actor=facilitator, item=item, rating={"likelihood": 3, "impact": 4})
    risk = Risk.objects.get(pk=item.risk_id)
    assert (risk.inherent_likelihood, risk.inherent_impact, risk.residual_likelihood, risk.residual_impact) == (3, 4, 3, 4)
    assert risk.residual_level and risk.owner == ciso
    assert risk.source == "tabletop" and exercise.ref in risk.source_ref
    assert set(risk.rmf_subcategories.values_list("ident", flat=True)) == set(
        exercise.scenario.rmf_subcategories.values_list("ident", flat=True))
    assert services.improvement_promote(actor=facilitator, item=item).risk_id == risk.pk  # idempotent
    assert item.tracked_status == ImprovementItem.Status.IN_PROGRESS

    gap_item = services.improvement_add(actor=facilitator, exercise=exercise, data={
        "title": "No supplier review of model hubs", "kind": "rmf_gap", "system": system,
        "subcategory": RmfSubcategory.objects.get(ident="GOVERN 6.1")})
    gap_item = services.improvement_promote(actor=facilitator, item=gap_item)
    assessment = RmfAssessment.objects.get(system=system, subcategory__ident="GOVERN 6.1")
    assert assessment.status == "gap" and exercise.ref in assessment.evidence_notes

    action_item = services.improvement_add(actor=facilitator, exercise=exercise, data={
        "title": "Add ModelScan to the training pipeline", "kind": "mitigation", "target_risk": risk})
    action_item = services.improvement_promote(actor=facilitator, item=action_item)
    assert action_item.mitigation.risk_id == risk.pk
    from governance.risks.services import mitigation_set_status
    mitigation_set_status(actor=ciso, action=action_item.mitigation, status="done")
    action_item.refresh_from_db()
    assert action_item.tracked_status == ImprovementItem.Status.CLOSED  # tracked to closure through the register

    services.exercise_transition(actor=facilitator, exercise=exercise, action="complete", now=at(45))
    exercise.refresh_from_db()
    assert exercise.state == ExerciseState.COMPLETED
    assert last_exercised(system).pk == exercise.pk
    actions = set(AuditEvent.objects.filter(object_type="tabletop.exercise").values_list("action", flat=True))
    assert {"exercise.start", "exercise.inject_release", "exercise.response", "exercise.decision", "exercise.score",
            "exercise.hot_wash", "exercise.complete"} <= actions


def test_transitions_are_enforced(exercise, facilitator):
    with pytest.raises(ValidationError):
        services.exercise_transition(actor=facilitator, exercise=exercise, action="pause", now=at(0))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    with pytest.raises(ValidationError):
        services.exercise_transition(actor=facilitator, exercise=exercise, action="complete", now=at(1))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="hot_wash", now=at(2))
    inject = exercise.scenario.injects.get(order=3)
    with pytest.raises(ValidationError):  # play has stopped
        services.inject_release(actor=facilitator, exercise=exercise, inject=inject, now=at(3))


def test_visibility_gaps_are_recorded_from_missing_data(exercise, facilitator, system, ciso):
    """The fraud-xgb question: the model is not registered at first (a gap), then registered without a scan."""
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    registry = exercise.scenario.injects.get(order=3)  # asks who owns fraud-xgb
    release = services.inject_release(actor=facilitator, exercise=exercise, inject=registry, now=at(1))
    assert any("No model named like 'fraud-xgb'" in g for g in
               VisibilityGap.objects.filter(exercise=exercise).values_list("detail", flat=True))
    assert release.visibility_answer["summary"].startswith("0 registered model")

    inventory.model_register(actor=ciso, system=system, data={"name": "fraud-xgb", "version": "7", "format": "pickle",
                                                               "provider": "community-hub", "source_uri": "https://hub.example/x"})
    from governance.tabletop.visibility import answer
    a = answer("model_owner_scan", "fraud-xgb")
    assert any("never been scanned" in g.detail for g in a.gaps)
    assert any("no technical owner" in g.detail for g in a.gaps)
    pickles = answer("third_party_pickle", "")
    assert [r.system for r in pickles.rows] == [system.slug]
    assert any("no pinned sha256" in g.detail for g in pickles.gaps)
