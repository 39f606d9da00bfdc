"""Triage at speed: one action on every finding a filter matches (count confirmed, bounded queries, audited once),
"assigned to me", saved views per person, comments with @mentions, linking a finding to a risk of its system."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.audit.models import AuditEvent
from governance.findings import services
from governance.findings.models import (Finding, FindingBulkAction, FindingComment, FindingState, FindingTransition,
                                        SavedView)
from governance.findings.selectors import QUEUE_PAGE
from tests.conftest import make_user
from tests.findings.conftest import run_import, sarif_n
from tests.risks.conftest import make_finding, make_risk
from tests.security.conftest import api_client

pytestmark = pytest.mark.django_db
S = FindingState
HTMX = {"HX-Request": "true"}
MANY = QUEUE_PAGE + 20  # more than one page of the queue


@pytest.fixture
def many(system, other_system):
    run_import(sarif_n(MANY), system=system, source="bandit")
    run_import(sarif_n(7), system=other_system, source="bandit")
    return Finding.objects.filter(system=system)


def total_on_page(body: str) -> int:
    return int(re.search(r'data-total="(\d+)"', body).group(1))


def apply_to_filter(client, filter_query: str, confirmed: int, *, htmx: bool = True, **data):
    return client.post("/findings/bulk/", {"scope": "filter", "filter": filter_query, "confirmed": str(confirmed),
                                           "next": f"/findings/?{filter_query}", **data},
                       headers=HTMX if htmx else {})


# --- every finding matching the filter ------------------------------------------------------------------------

def test_the_queue_shows_its_total_and_pages_past_it(client, engineer, system, many):
    client.force_login(engineer)
    body = client.get(f"/findings/?system={system.slug}").content.decode()
    assert total_on_page(body) == MANY
    assert body.count('name="ids"') == QUEUE_PAGE and "Load more" in body  # more than the page shows
    assert f'name="filter" value="system={system.slug}"' in body  # what "all matching" sends back
    assert f"Select all {MANY} findings matching this filter" in body


def test_apply_to_every_finding_matching_the_filter_across_pages(client, engineer, system, other_system, many,
                                                                monkeypatch):
    monkeypatch.setattr(services, "BULK_BATCH", 25)  # three batches
    client.force_login(engineer)
    ours = set(many.values_list("id", flat=True))
    response = apply_to_filter(client, f"system={system.slug}", MANY, action="confirm", reason="triaged in one go")
    assert response.status_code == 204 and response["HX-Redirect"] == f"/findings/?system={system.slug}"
    assert set(Finding.objects.filter(state=S.CONFIRMED).values_list("id", flat=True)) == ours  # all N, no more
    assert not Finding.objects.filter(system=other_system).exclude(state=S.NEW).exists()
    transitions = FindingTransition.objects.filter(to_state=S.CONFIRMED)
    assert transitions.count() == MANY and {(t.actor_id, t.reason) for t in transitions} == {(engineer.pk, "triaged in one go")}
    event = AuditEvent.objects.get(action="finding.bulk")  # once for the action, not once per finding
    assert event.after == {"action": "confirm", "filter": f"system={system.slug}", "matched": MANY, "changed": MANY,
                           "state": "confirmed", "reason": "triaged in one go", "assignee": None, "risk": None}
    assert event.actor == engineer and event.object_type == "findings.findingbulkaction"
    assert not AuditEvent.objects.filter(action="finding.transition").exists()
    record = FindingBulkAction.objects.get()
    assert (record.matched, record.changed, record.action) == (MANY, MANY, "confirm")
    follow = client.get(response["HX-Redirect"])
    assert f"{MANY} of the {MANY} findings matching the filter moved to “Confirmed”." in follow.content.decode()


def test_applying_to_a_filter_costs_a_fixed_number_of_queries_per_batch(client, engineer, system, many, monkeypatch):
    client.force_login(engineer)
    counts = {}
    for batch, state in ((MANY, "confirm"), (10, "fixed")):  # one batch, then eight
        monkeypatch.setattr(services, "BULK_BATCH", batch)
        with CaptureQueriesContext(connection) as ctx:
            assert apply_to_filter(client, f"system={system.slug}&state=all", MANY, action=state).status_code == 204
        counts[batch] = len(ctx.captured_queries)
    # per batch: read the movable rows, update them, insert their transitions
    assert counts[10] - counts[MANY] == 3 * (-(-MANY // 10) - 1)
    assert counts[MANY] <= 20


def test_a_count_that_changed_since_it_was_confirmed_is_refused(client, engineer, system, many):
    client.force_login(engineer)
    response = apply_to_filter(client, f"system={system.slug}", MANY - 1, action="confirm")
    assert response.status_code == 409  # swapped in place by htmx: the bar with the reason, the rows untouched
    body = response.content.decode()
    assert f"This filter now matches {MANY} findings, not the {MANY - 1} you confirmed: nothing was changed" in body
    assert 'id="bulkbar"' in body and 'name="ids"' not in body
    assert 'name="scope" value="filter"' in body and 'value="confirm" selected' in body  # choices kept
    assert not Finding.objects.exclude(state=S.NEW).exists()
    assert not FindingTransition.objects.exists() and not AuditEvent.objects.filter(action="finding.bulk").exists()
    response = apply_to_filter(client, f"system={system.slug}", MANY + 5, action="confirm", htmx=False)
    assert response.status_code == 302  # without htmx: said on the page it came from
    assert any("not the 75 you confirmed" in str(m) for m in response.wsgi_request._messages)
    assert not Finding.objects.exclude(state=S.NEW).exists()


def test_validation_errors_come_back_in_the_bar_with_the_choices_kept(client, engineer, system, many):
    client.force_login(engineer)
    response = apply_to_filter(client, f"system={system.slug}", MANY, action="false_positive", reason=" ")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Reason: Say why: a reason is required." in body and 'value="false_positive" selected' in body
    assert 'name="confirmed" value="%d"' % MANY in body
    response = apply_to_filter(client, f"system={system.slug}", MANY, action="create_risk")
    assert response.status_code == 400 and "not from a whole filter" in response.content.decode()
    ids = list(many.values_list("id", flat=True)[:2])
    response = client.post("/findings/bulk/", {"ids": ids, "action": "assign", "reason": "kept", "next": "/findings/"},
                           headers=HTMX)
    assert response.status_code == 400 and "Choose who to assign to." in response.content.decode()
    assert 'value="kept"' in response.content.decode()
    assert not Finding.objects.exclude(state=S.NEW).exists() and not Finding.objects.filter(assignee__isnull=False).exists()


def test_the_filter_is_read_again_on_the_server(client, engineer, system, other_system, many):
    """Only the filter travels: ids sent along are ignored, and what the filter leaves out is not touched."""
    client.force_login(engineer)
    foreign = Finding.objects.filter(system=other_system).first()
    outside = [make_finding(system, severity="low", state=S.NEW, title="Reverse shell in notebook"),  # not high
               make_finding(system, severity="high", state=S.NEW, title="Hard-coded API key")]  # no "shell"
    response = client.post("/findings/bulk/", {"scope": "filter", "filter": "severity=high&q=shell", "confirmed": MANY + 7,
                                               "ids": [foreign.pk], "action": "fixed", "next": "/findings/"})
    assert response.status_code == 302
    assert Finding.objects.filter(state=S.FIXED).count() == MANY + 7  # both systems: the filter names no system
    assert [f.state for f in Finding.objects.filter(pk__in=[f.pk for f in outside])] == [S.NEW, S.NEW]
    assert AuditEvent.objects.get(action="finding.bulk").after["filter"] == "q=shell&severity=high"


def test_only_triagers_apply_to_a_whole_filter(client, owner, system, many):
    client.force_login(owner)  # triages the findings of their own system, one selection at a time
    assert apply_to_filter(client, f"system={system.slug}", MANY, action="confirm").status_code == 403
    assert not Finding.objects.exclude(state=S.NEW).exists()


def test_link_every_matching_finding_to_a_risk(client, engineer, system, other_system, many):
    risk = make_risk(engineer, system)
    client.force_login(engineer)
    response = apply_to_filter(client, "state=open", MANY + 7, action="link_risk", risk=risk.ref.lower())
    assert response.status_code == 204
    assert set(risk.findings.values_list("id", flat=True)) == set(many.values_list("id", flat=True))
    event = AuditEvent.objects.get(action="finding.bulk")
    assert (event.after["matched"], event.after["changed"], event.after["risk"]) == (MANY + 7, MANY, risk.ref)
    messages = [str(m) for m in client.get("/findings/").wsgi_request._messages]
    assert any("7 left as they were (already linked or of another system than Support Copilot)" in m for m in messages)


# --- assigned to me -----------------------------------------------------------------------------------------

def test_assign_everything_matching_then_filter_assigned_to_me(client, engineer, ciso, system, many):
    client.force_login(ciso)
    response = apply_to_filter(client, f"system={system.slug}", MANY, action="assign", assignee=str(engineer.pk))
    assert response.status_code == 204 and many.filter(assignee=engineer).count() == MANY
    assert AuditEvent.objects.get(action="finding.bulk").after["assignee"] == engineer.email
    client.force_login(engineer)
    body = client.get("/findings/?assigned=me").content.decode()
    assert total_on_page(body) == MANY and 'name="assigned" value="me" checked' in body
    client.force_login(ciso)
    assert total_on_page(client.get("/findings/?assigned=me").content.decode()) == 0  # "me" is who reads
    assert client.get("/api/v1/findings/?assigned=me").json()["count"] == 0
    assert api_client(engineer).get("/api/v1/findings/?assigned=me").json()["count"] == MANY  # a token's person
    assert api_client(ciso).get("/api/v1/findings/?assigned=me").json()["count"] == 0


def test_assign_and_unassign_from_the_finding_page(client, engineer, ciso, many):
    finding = many.first()
    client.force_login(ciso)
    page = client.get(f"/findings/{finding.pk}/").content.decode()
    assert 'id="id_assign_to"' in page
    client.post("/findings/bulk/", {"ids": [finding.pk], "action": "assign", "assignee": engineer.pk,
                                    "next": f"/findings/{finding.pk}/"})
    finding.refresh_from_db()
    assert finding.assignee == engineer
    assert f'<option value="{engineer.pk}" selected>' in client.get(f"/findings/{finding.pk}/").content.decode()
    client.post("/findings/bulk/", {"ids": [finding.pk], "action": "unassign", "next": f"/findings/{finding.pk}/"})
    finding.refresh_from_db()
    assert finding.assignee is None
    assert [e.after["assignee"] for e in AuditEvent.objects.filter(action="finding.assign").order_by("seq")] == [
        engineer.email, None]


# --- saved views --------------------------------------------------------------------------------------------

def test_saved_views_are_each_persons_own(client, engineer, ciso, system, many):
    client.force_login(engineer)
    response = client.post("/findings/views/", {"name": "Mine, high", "query": "assigned=me&severity=high&after=xyz"},
                           headers=HTMX)
    assert response.status_code == 200
    view = SavedView.objects.get()
    assert (view.owner, view.query) == (engineer, "severity=high&assigned=me")  # the filter only, not the page
    assert 'href="/findings/?severity=high&amp;assigned=me">Mine, high</a>' in response.content.decode()
    assert "Mine, high" in client.get("/findings/").content.decode()
    assert AuditEvent.objects.filter(action="saved_view.save", actor=engineer).exists()

    client.force_login(ciso)
    assert "Mine, high" not in client.get("/findings/").content.decode()
    assert client.post(f"/findings/views/{view.pk}/delete/").status_code == 404  # not theirs: not there
    client.post("/findings/views/", {"name": "Mine, high", "query": "state=all"}, headers=HTMX)  # same name, own
    assert SavedView.objects.filter(owner=ciso).get().query == "state=all"
    assert SavedView.objects.get(owner=engineer).query == "severity=high&assigned=me"

    client.force_login(engineer)
    client.post("/findings/views/", {"name": "Mine, high", "query": "state=fixed"}, headers=HTMX)  # replaces
    assert SavedView.objects.get(owner=engineer).query == "state=fixed"
    response = client.post(f"/findings/views/{view.pk}/delete/", headers=HTMX)
    assert response.status_code == 200 and "Mine, high" not in response.content.decode()
    assert not SavedView.objects.filter(owner=engineer).exists() and SavedView.objects.filter(owner=ciso).exists()


def test_a_view_needs_a_name(client, engineer):
    client.force_login(engineer)
    response = client.post("/findings/views/", {"name": "  ", "query": "state=all"}, headers=HTMX)
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not SavedView.objects.exists()


# --- comments and mentions ----------------------------------------------------------------------------------

@pytest.fixture
def finding(system):
    run_import(sarif_n(1), system=system)
    return Finding.objects.get()


def comment(client, finding, body: str):
    return client.post(f"/findings/{finding.pk}/comments/", {"body": body}, headers=HTMX)


def test_a_comment_mentions_and_emails_by_address(client, engineer, ciso, owner, finding,
                                                  django_capture_on_commit_callbacks):
    client.force_login(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        response = comment(client, finding, "@ciso please look; cc @owner@example.com and me @engineer. <b>x</b>")
    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x</b>" not in body  # escaped
    assert 'id="comments"' in body and "Engineer" in body
    assert [m.to for m in mail.outbox] == [["ciso@example.com", "owner@example.com"]]  # not its author
    message = mail.outbox[0]
    assert f"finding #{finding.pk}" in message.subject and "@ciso please look" in message.body
    assert f"/findings/{finding.pk}/" in message.body
    saved = FindingComment.objects.get()
    assert (saved.finding, saved.author) == (finding, engineer)
    event = AuditEvent.objects.get(action="finding.comment")
    assert event.after["mentioned"] == ["ciso@example.com", "owner@example.com"] and event.object_id == str(finding.pk)
    assert "please look" in client.get(f"/findings/{finding.pk}/").content.decode()


def test_an_ambiguous_mention_asks_for_the_address(client, engineer, finding, django_capture_on_commit_callbacks):
    make_user("ana@one.example", None)
    make_user("ana@two.example", None)
    client.force_login(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        response = comment(client, finding, "@ana what do you think?")
    assert response.status_code == 400
    body = response.content.decode()
    assert "@ana could be ana@one.example or ana@two.example: write the whole address" in body
    assert "@ana what do you think?" in body  # the text is kept
    assert not FindingComment.objects.exists() and not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        assert comment(client, finding, "@ana@two.example what do you think? (@nobody-here is no one)").status_code == 200
    assert [m.to for m in mail.outbox] == [["ana@two.example"]]


def test_comment_length_and_roles(client, engineer, facilitator, other_owner, owner, finding):
    client.force_login(engineer)
    response = comment(client, finding, "x" * 4001)
    assert response.status_code == 400 and "at most 4000 characters" in response.content.decode()
    assert comment(client, finding, "   ").status_code == 400
    for user in (facilitator, other_owner):
        client.force_login(user)
        assert comment(client, finding, "hello").status_code == 403
        assert 'action="/findings/%d/comments/"' % finding.pk not in client.get(f"/findings/{finding.pk}/").content.decode()
    client.force_login(owner)
    assert comment(client, finding, "mine").status_code == 200
    assert not FindingComment.objects.exclude(body="mine").exists()


# --- link to a risk from the finding page ---------------------------------------------------------------------

def test_link_to_risk_offers_the_systems_risks_and_refuses_another_systems(client, engineer, system, other_system,
                                                                         finding):
    ours, theirs = make_risk(engineer, system, title="Ours"), make_risk(engineer, other_system, title="Theirs")
    client.force_login(engineer)
    page = client.get(f"/findings/{finding.pk}/").content.decode()
    assert f'<option value="{ours.ref}">' in page and f'<option value="{theirs.ref}">' not in page
    response = client.post(f"/findings/{finding.pk}/link-risk/", {"risk": theirs.ref}, headers=HTMX)
    assert response.status_code == 400
    assert (f"{theirs.ref} is a risk of Fraud Scoring; this finding is of Support Copilot. Link it to one of "
            "Support Copilot&#x27;s risks.") in response.content.decode()
    response = client.post(f"/findings/{finding.pk}/link-risk/", {"risk": "RISK-9999"}, headers=HTMX)
    assert response.status_code == 400 and "No risk “RISK-9999” in the register." in response.content.decode()
    response = client.post(f"/findings/{finding.pk}/link-risk/", {"risk": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()  # whole page
    assert not theirs.findings.exists() and not ours.findings.exists()
    response = client.post(f"/findings/{finding.pk}/link-risk/", {"risk": ours.ref.lower()}, headers=HTMX)
    assert response.status_code == 200 and f'href="/risks/{ours.ref}/"' in response.content.decode()
    assert list(ours.findings.all()) == [finding]
    assert AuditEvent.objects.filter(action="risk.link_findings", object_id=str(ours.pk)).exists()


# --- query counts --------------------------------------------------------------------------------------------

def test_finding_page_queries_do_not_grow_with_comments_or_risks(client, engineer, system, finding,
                                                                 django_assert_max_num_queries):
    client.force_login(engineer)
    services.comment_add(actor=engineer, finding=finding, body="first")
    make_risk(engineer, system)
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/findings/{finding.pk}/").status_code == 200
    for i in range(15):
        services.comment_add(actor=engineer, finding=finding, body=f"note {i}")
        risk = make_risk(engineer, system)
        if i % 2:
            risk.findings.add(finding)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(f"/findings/{finding.pk}/").status_code == 200
    assert len(few.captured_queries) <= 14


def test_queue_page_queries_pinned(client, engineer, system, many, django_assert_max_num_queries):
    client.force_login(engineer)
    for i in range(5):
        SavedView.objects.create(owner=engineer, name=f"view {i}", query=f"severity=high&q=m{i}")
    with django_assert_max_num_queries(12):
        assert client.get("/findings/?assigned=me&state=all").status_code == 200
