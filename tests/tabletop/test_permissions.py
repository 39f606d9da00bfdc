"""Server-side permissions in every view and the API: who runs, who plays, who sees what; notes never reach players."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from governance.accounts.models import Role
from governance.tabletop import services
from governance.tabletop.models import InjectRelease, Response
from tests.conftest import PASSWORD, make_user
from tests.tabletop.conftest import SECRET_NOTE


def client_for(user) -> Client:
    c = Client()
    assert c.login(email=user.email, password=PASSWORD)
    return c


@pytest.fixture
def running(exercise, facilitator):
    """Running, with the security inject (T+0), the ML inject (T+10) and the all-hands registry inject released."""
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start")
    for order in (1, 2, 3):
        services.inject_release(actor=facilitator, exercise=exercise, inject=exercise.scenario.injects.get(order=order))
    exercise.refresh_from_db()
    return exercise


def url(name, exercise, *args):
    return reverse(f"tabletop:{name}", args=[exercise.pk, *args])


def test_console_only_for_its_facilitator_or_a_ciso(running, facilitator, ciso, people, admin_user):
    other_facilitator = make_user("f2@example.com", Role.FACILITATOR)
    assert client_for(facilitator).get(url("console", running)).status_code == 200
    assert client_for(ciso).get(url("console", running)).status_code == 200
    for user in (other_facilitator, admin_user, people["ml"], people["observer"], people["outsider"]):
        c = client_for(user)
        assert c.get(url("console", running)).status_code == 403, user
        assert c.post(url("control", running, "pause")).status_code == 403, user
        inject = running.scenario.injects.get(order=4)
        assert c.post(url("release", running, inject.pk)).status_code == 403, user
    running.refresh_from_db()
    assert running.state == "running" and not InjectRelease.objects.filter(exercise=running, inject__order=4).exists()


def test_console_shows_notes_and_all_responses(running, facilitator):
    html = client_for(facilitator).get(url("console", running)).content.decode()
    assert SECRET_NOTE in html and "Facilitator only" in html


def test_player_sees_only_injects_for_their_function_and_never_notes(running, people):
    ml = client_for(people["ml"])
    html = ml.get(url("play", running)).content.decode()
    assert "ML platform chat" in html  # to ML engineers
    assert "Model registry audit log" in html  # to everyone
    assert "Cloud threat detection" not in html  # to security only
    assert SECRET_NOTE not in html and "Facilitator only" not in html
    assert "Isolate the node" not in html and "Freeze automatic promotion" not in html  # expected actions stay hidden
    legal = client_for(people["legal"]).get(url("play", running)).content.decode()
    assert "ML platform chat" not in legal and "Model registry audit log" in legal


def test_player_poll_answers_204_until_something_changes(running, people, facilitator):
    ml_user = people["ml"]
    c = client_for(ml_user)
    page = c.get(url("play", running))
    version = page.context["version"]
    poll = c.get(url("play", running) + f"?partial=poll&v={version}&after={page.context['last']}", HTTP_HX_REQUEST="true")
    assert poll.status_code == 204
    services.inject_release(actor=facilitator, exercise=running, inject=running.scenario.injects.get(order=5))
    poll = c.get(url("play", running) + f"?partial=poll&v={version}&after={page.context['last']}", HTTP_HX_REQUEST="true")
    html = poll.content.decode()
    assert poll.status_code == 200 and "Hot wash prompt" in html and 'hx-swap-oob="afterbegin:#inject-list"' in html
    assert "Model registry audit log" not in html  # only the new card
    assert SECRET_NOTE not in html


def test_player_responds_only_to_their_injects(running, people):
    c = client_for(people["ml"])
    security_release = InjectRelease.objects.get(exercise=running, inject__order=1)
    ml_release = InjectRelease.objects.get(exercise=running, inject__order=2)
    assert c.post(url("respond", running, security_release.pk), {"kind": "response", "text": "x"}).status_code == 404
    response = c.post(url("respond", running, ml_release.pk), {"kind": "response", "text": "Quarantine it"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Quarantine it" in response.content.decode()
    response = c.post(url("respond", running, ml_release.pk), {"kind": "decision", "text": "Roll back"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "rationale" in response.content.decode()
    assert Response.objects.filter(exercise=running).count() == 1
    observer = client_for(people["observer"])
    assert observer.post(url("respond", running, ml_release.pk), {"kind": "response", "text": "x"}).status_code == 403
    outsider = client_for(people["outsider"])
    assert outsider.get(url("play", running)).status_code == 403
    assert outsider.get(url("observe", running)).status_code == 403
    assert outsider.get(url("exercise", running)).status_code == 403


def test_observer_scores_and_never_sees_notes(running, people):
    c = client_for(people["observer"])
    html = c.get(url("observe", running)).content.decode()
    assert "Isolate the node" in html and SECRET_NOTE not in html
    action = running.scenario.injects.get(order=1).expected_actions.first()
    response = c.post(url("score", running, action.pk), {"rating": "2", "observation": "ok"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Mostly met" in response.content.decode()
    unreleased = running.scenario.injects.get(order=4).expected_actions.first()
    assert c.post(url("score", running, unreleased.pk), {"rating": "2"}).status_code == 404
    assert client_for(people["ml"]).post(url("score", running, action.pk), {"rating": "3"}).status_code == 403
    assert client_for(people["ml"]).get(url("observe", running)).status_code == 403


def test_exercise_url_sends_each_person_to_their_screen(running, people, facilitator):
    assert client_for(facilitator).get(url("exercise", running)).url == url("console", running)
    assert client_for(people["ml"]).get(url("exercise", running)).url == url("play", running)
    assert client_for(people["observer"]).get(url("exercise", running)).url == url("observe", running)


def test_report_opens_to_participants_after_play_and_hides_notes(running, people, facilitator):
    ml = client_for(people["ml"])
    assert ml.get(url("report", running)).status_code == 403
    assert ml.get(url("report-md", running)).status_code == 403
    services.exercise_transition(actor=facilitator, exercise=running, action="hot_wash")
    html = ml.get(url("report", running)).content.decode()
    assert "After-action report" in html and SECRET_NOTE not in html
    assert "Create risk" not in html  # improvement controls are the facilitator's
    md = ml.get(url("report-md", running))
    assert md["Content-Type"].startswith("text/markdown") and SECRET_NOTE not in md.content.decode()
    assert client_for(people["outsider"]).get(url("report", running)).status_code == 403
    assert ml.post(url("improvement-add", running), {"title": "x", "kind": "risk"}).status_code == 403


def test_scenario_library_is_for_planners(scenarios, people, facilitator):
    assert client_for(people["ml"]).get(reverse("tabletop:scenarios")).status_code == 403
    assert client_for(people["ml"]).get(reverse("tabletop:scenario", args=["malicious-pickle-model"])).status_code == 403
    assert client_for(people["ml"]).get(reverse("tabletop:scenario-export", args=["malicious-pickle-model"])).status_code == 403
    assert client_for(people["ml"]).get(reverse("tabletop:create")).status_code == 403
    assert client_for(facilitator).get(reverse("tabletop:scenarios")).status_code == 200


# --- API ----------------------------------------------------------------------------------------------------

def api_url(exercise):
    return reverse("api-exercise-injects", args=[exercise.pk])


def test_api_player_gets_only_their_released_injects_without_notes(running, people):
    data = client_for(people["ml"]).get(api_url(running)).json()
    assert data["role"] == "player" and data["function"] == "ml_engineer"
    assert [i["order"] for i in data["injects"]] == [3, 2]  # newest first; the security inject is not theirs
    body = client_for(people["ml"]).get(api_url(running)).content.decode()
    assert SECRET_NOTE not in body and "facilitator_notes" not in body and "expected_actions" not in body
    legal = client_for(people["legal"]).get(api_url(running)).json()
    assert [i["order"] for i in legal["injects"]] == [3]


def test_api_never_returns_notes_even_to_the_facilitator(running, facilitator, people):
    data = client_for(facilitator).get(api_url(running)).json()
    assert sorted(i["order"] for i in data["injects"]) == [1, 2, 3]
    assert SECRET_NOTE not in client_for(facilitator).get(api_url(running)).content.decode()
    obs = client_for(people["observer"]).get(api_url(running)).json()
    assert len(obs["injects"]) == 3


def test_api_refuses_outsiders_and_anonymous(running, people):
    assert client_for(people["outsider"]).get(api_url(running)).status_code == 403
    assert Client().get(api_url(running)).status_code in (401, 403)
    assert client_for(people["ml"]).get(reverse("api-exercise-injects", args=[99999])).status_code == 404


def test_api_with_a_bearer_token(running, people):
    from governance.accounts.services import api_token_create

    _, token = api_token_create(user=people["ml"], name="exercise")
    data = Client().get(api_url(running), HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [i["order"] for i in data["injects"]] == [3, 2]


def test_system_page_shows_when_it_was_last_exercised(running, system, ciso, facilitator):
    """Exercised means a completed exercise included it: the system page, posture and the inventory filter agree."""
    page = lambda: client_for(ciso).get(reverse("inventory:detail", args=[system.slug])).content.decode()  # noqa: E731
    assert "Never in a completed tabletop exercise" in page()  # still running
    services.exercise_transition(actor=facilitator, exercise=running, action="hot_wash")
    services.exercise_transition(actor=facilitator, exercise=running, action="complete")
    assert "Last exercised" in page() and running.title in page()
