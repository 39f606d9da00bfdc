"""The facilitator's screens: editing a planned exercise, adding several participants, releasing early, promoting
an improvement to a rated risk, objective scores over rated actions."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from governance.accounts.models import Role
from governance.audit.models import AuditEvent
from governance.tabletop import services
from governance.tabletop.models import Participant, ParticipantRole, Scenario
from tests.conftest import PASSWORD, make_user
from tests.tabletop.conftest import T0, at

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}

def client_for(user) -> Client:
    c = Client()
    assert c.login(email=user.email, password=PASSWORD)
    return c

def url(name, exercise, *args):
    return reverse(f"tabletop:{name}", args=[exercise.pk, *args])

def edit_data(exercise, **changes):
    data = {"title": exercise.title, "scenario": exercise.scenario_id, "facilitator": exercise.facilitator_id,
            "scheduled_for": "2026-04-01T10:30", "systems": [s.pk for s in exercise.systems.all()],
            "objectives_text": "\n".join(exercise.objectives)}
    data.update(changes)
    return data

# --- 1. editing a planned exercise --------------------------------------------------------------------------------

def test_planned_exercise_is_edited_and_audited(exercise, facilitator, system, other_system):
    c = client_for(facilitator)
    page = c.get(url("edit", exercise))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="Q1 supply-chain drill"' in body and exercise.objectives[0] in body
    assert url("edit", exercise) in c.get(url("console", exercise)).content.decode()  # linked from the console
    response = c.post(url("edit", exercise), edit_data(
        exercise, title="Q2 supply-chain drill", systems=[system.pk, other_system.pk],
        objectives_text="Contain within an hour\nTell the regulator"))
    assert response.status_code == 302 and response.url == url("console", exercise)
    exercise.refresh_from_db()
    assert exercise.title == "Q2 supply-chain drill"
    assert exercise.objectives == ["Contain within an hour", "Tell the regulator"]
    assert exercise.scheduled_for.strftime("%Y-%m-%d %H:%M") != T0.strftime("%Y-%m-%d %H:%M")
    assert set(exercise.systems.values_list("pk", flat=True)) == {system.pk, other_system.pk}
    event = AuditEvent.objects.get(action="exercise.update")
    assert event.before["title"] == "Q1 supply-chain drill" and event.after["title"] == "Q2 supply-chain drill"
    assert event.after["systems"] == sorted([system.pk, other_system.pk]) and "facilitator_id" not in event.after

def test_edit_refuses_invalid_input_in_place(exercise, facilitator):
    response = client_for(facilitator).post(url("edit", exercise), edit_data(exercise, title=""))
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    exercise.refresh_from_db()
    assert exercise.title == "Q1 supply-chain drill" and not AuditEvent.objects.filter(action="exercise.update").exists()

def test_new_facilitator_takes_the_old_ones_place(exercise, facilitator):
    other = make_user("f2@example.com", Role.FACILITATOR)
    response = client_for(facilitator).post(url("edit", exercise), edit_data(exercise, facilitator=other.pk))
    assert response.status_code == 302
    roles = dict(Participant.objects.filter(exercise=exercise).values_list("user__email", "role"))
    assert roles["f2@example.com"] == ParticipantRole.FACILITATOR and facilitator.email not in roles
    assert client_for(other).get(url("console", exercise)).status_code == 200

def test_empty_objectives_take_the_new_scenarios(exercise, facilitator, scenarios):
    other = Scenario.objects.exclude(pk=exercise.scenario_id).first()
    client_for(facilitator).post(url("edit", exercise), edit_data(exercise, scenario=other.pk, objectives_text=""))
    exercise.refresh_from_db()
    assert exercise.scenario_id == other.pk and exercise.objectives == other.objectives

def test_edit_is_refused_once_the_clock_has_started(exercise, facilitator):
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    c = client_for(facilitator)
    for response in (c.get(url("edit", exercise)), c.post(url("edit", exercise), edit_data(exercise, title="Renamed"))):
        assert response.status_code == 409
        body = response.content.decode()
        assert "can be edited only until its clock starts" in body and 'id="edit-refused"' in body
        assert 'name="title"' not in body  # no form to fill in vain
    exercise.refresh_from_db()
    assert exercise.title == "Q1 supply-chain drill" and not AuditEvent.objects.filter(action="exercise.update").exists()
    assert url("edit", exercise) not in c.get(url("console", exercise)).content.decode()

def test_service_refuses_a_started_exercise(exercise, facilitator):
    from django.core.exceptions import ValidationError

    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    with pytest.raises(ValidationError) as exc:
        services.exercise_update(actor=facilitator, exercise=exercise, data={"title": "x"}, systems=[])
    assert exc.value.code == "started"

def test_only_the_runner_edits(exercise, people, ciso):
    assert client_for(people["ml"]).get(url("edit", exercise)).status_code == 403
    assert client_for(ciso).get(url("edit", exercise)).status_code == 200


# --- 2. adding several participants -----------------------------------------------------------------------------

def test_participant_panel_stays_open_after_each_addition(exercise, facilitator):
    c = client_for(facilitator)
    extra = [make_user(f"p{i}@example.com", None) for i in range(3)]
    for i, user in enumerate(extra):
        response = c.post(url("participant-add", exercise), {"user": user.pk, "role": "player", "function": "legal"}, **HTMX)
        assert response.status_code == 200
        body = response.content.decode()
        assert body.lstrip().startswith('<section class="card" id="participants">')  # the panel alone, swapped in place
        assert '<details class="add" open>' in body and f"{user} added." in body
        assert body.count('<li><span class="avatar">') == 4 + i + 1  # facilitator, 2 players, observer, the new ones
    assert Participant.objects.filter(exercise=exercise).count() == 7
    assert AuditEvent.objects.filter(action="exercise.participant_add").count() == 3 + 3


def test_participant_errors_show_in_the_open_panel(exercise, facilitator):
    user = make_user("p@example.com", None)
    response = client_for(facilitator).post(url("participant-add", exercise), {"user": user.pk, "role": "player"}, **HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    assert '<details class="add" open>' in body and "A player needs a function" in body
    assert not Participant.objects.filter(exercise=exercise, user=user).exists()


def test_without_javascript_the_console_comes_back_with_the_panel_open(exercise, facilitator):
    c = client_for(facilitator)
    user = make_user("p@example.com", None)
    response = c.post(url("participant-add", exercise), {"user": user.pk, "role": "observer"})
    assert response.status_code == 302 and response.url == url("console", exercise) + "?adding=1#participants"
    assert '<details class="add" open>' in c.get(response.url).content.decode()
    assert '<details class="add" >' in c.get(url("console", exercise)).content.decode()  # closed on a plain visit


def test_participant_removed_in_place(exercise, facilitator, people):
    participant = exercise.participants.get(user=people["legal"])
    response = client_for(facilitator).post(url("participant-remove", exercise, participant.pk), **HTMX)
    assert response.status_code == 200 and "removed." in response.content.decode()
    assert not Participant.objects.filter(pk=participant.pk).exists()
    own = exercise.participants.get(user=facilitator)
    refused = client_for(facilitator).post(url("participant-remove", exercise, own.pk), **HTMX)
    assert refused.status_code == 409 and "The facilitator stays on the exercise." in refused.content.decode()


# --- 4. an improvement becomes a rated risk -----------------------------------------------------------------------

@pytest.fixture
def risk_item(exercise, facilitator, system, people):
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="hot_wash", now=at(20))
    return services.improvement_add(actor=facilitator, exercise=exercise, data={
        "title": "Pin hashes of hub downloads", "kind": "risk", "system": system, "owner": people["ml"]})


def test_promoting_a_risk_without_its_rating_is_refused_in_place(exercise, facilitator, risk_item):
    from governance.risks.models import Risk

    c = client_for(facilitator)
    report = c.get(url("report", exercise)).content.decode()
    assert f'id="promote-{risk_item.pk}"' in report and f'name="promote-{risk_item.pk}-likelihood"' in report
    assert f'<option value="{risk_item.owner_id}" selected>' in report  # the item's owner is proposed
    response = c.post(url("improvement-promote", exercise, risk_item.pk), {f"promote-{risk_item.pk}-impact": "2"}, **HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    details = body[body.index(f'<details class="promote" id="promote-{risk_item.pk}" open>'):]
    assert "Rate the likelihood: an unrated risk blocks the release gate." in details[:details.index("</details>")]
    assert '<option value="2" selected>' in details  # what was chosen stays chosen
    assert not Risk.objects.exists()
    risk_item.refresh_from_db()
    assert not risk_item.is_promoted


def test_a_rated_risk_goes_into_the_register_and_keeps_the_gate_clear(exercise, facilitator, risk_item, people, ciso):
    from governance.risks.gate import evaluate, gate_policy
    from governance.risks.models import Risk

    response = client_for(facilitator).post(url("improvement-promote", exercise, risk_item.pk), {
        f"promote-{risk_item.pk}-likelihood": "2", f"promote-{risk_item.pk}-impact": "2",
        f"promote-{risk_item.pk}-owner": ciso.pk, f"promote-{risk_item.pk}-due_date": "2026-09-30"}, **HTMX)
    assert response.status_code == 200 and response["HX-Refresh"] == "true"  # the report comes back with its message
    risk = Risk.objects.get()
    assert (risk.inherent_likelihood, risk.inherent_impact, risk.residual_likelihood, risk.residual_impact) == (2, 2, 2, 2)
    assert risk.residual_level and risk.owner == ciso and str(risk.due_date) == "2026-09-30"
    risk_item.refresh_from_db()
    assert risk_item.risk_id == risk.pk and risk_item.owner == ciso
    assert gate_policy(risk.system.risk_tier).block_unrated_risks  # the gate would say no-go for an unrated one
    assert "RISK_NOT_RATED" not in [r.code for r in evaluate(risk.system).reasons]


def test_service_refuses_an_unrated_risk(risk_item, facilitator):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.improvement_promote(actor=facilitator, item=risk_item)
    assert set(exc.value.message_dict) == {"likelihood", "impact"}


# --- 5. objective scores over rated actions ------------------------------------------------------------------------

def test_objective_scores_count_only_rated_actions_and_say_how_many(exercise, facilitator, people):
    from governance.tabletop import report_md, selectors

    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    observer = exercise.participants.get(user=people["observer"])
    own = exercise.participants.get(user=facilitator)
    objective = 0
    actions = [a for i in exercise.scenario.injects.all() for a in i.expected_actions.all() if a.objective == objective]
    assert len(actions) >= 3
    for a in actions[:2]:
        services.inject_release(actor=facilitator, exercise=exercise, inject=a.inject, now=at(1))
    # action 1: fully met (3) by one observer; action 2: 3 and 0 by two observers (mean 1.5 of 3); the rest unrated
    services.score_record(observer=observer, action=actions[0], rating=3, now=at(2))
    services.score_record(observer=observer, action=actions[1], rating=3, now=at(2))
    services.score_record(observer=own, action=actions[1], rating=0, now=at(3))
    exercise.refresh_from_db()
    report = selectors.report(exercise)
    row = report.by_objective[objective]
    # (100% + 50%) / 2 rated actions; not (3+3+0)/9 over the ratings, nor diluted by the unrated actions
    assert (row["pct"], row["rated"], row["actions"]) == (75, 2, len(actions))
    assert report.totals["score_pct"] == 75 and report.totals["scored_actions"] == 2
    unrated = next(o for i, o in enumerate(report.by_objective) if i != objective and o["actions"])
    assert unrated["pct"] is None and unrated["rated"] == 0

    body = client_for(facilitator).get(url("report", exercise)).content.decode()
    assert f"2 of {len(actions)} expected actions rated · the score counts the rated ones only" in body
    assert f"0 of {unrated['actions']} expected action" in body
    assert f"(2 of {report.totals['actions']} actions rated)" in body
    md = report_md.render(report)
    assert f"| 75% | 2 of {len(actions)} |" in md and "| not scored | 0 of" in md


def test_the_console_feed_refreshes_its_people_count_after_an_addition(exercise, facilitator):
    from governance.tabletop import selectors

    before = selectors.feed_version(exercise.pk)
    client_for(facilitator).post(url("participant-add", exercise),
                                 {"user": make_user("p@example.com", None).pk, "role": "observer"}, **HTMX)
    assert selectors.feed_version(exercise.pk) != before  # the next poll re-renders the KPIs ("5 people")
    feed = client_for(facilitator).get(url("console", exercise), {"partial": "feed", "v": before}, **HTMX)
    assert feed.status_code == 200 and '<div class="kpi-value">5</div><div class="kpi-label">people</div>' in feed.content.decode()
