"""Bulk decisions in the inbox: one decision and one justification on several sign-offs, each recorded on its own."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.risks import selectors, services
from governance.risks.models import Decision, Risk
from tests.risks.conftest import rated

pytestmark = pytest.mark.django_db


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ask(engineer, system, n=3):
    risks = [rated(engineer, system, residual=(4, 4)) for _ in range(n)]
    return [services.decision_request(actor=engineer, risk=r, kind=Decision.Kind.RESIDUAL_RISK) for r in risks]


def expiry(days=90) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def test_owner_accepts_several_with_one_justification(system, owner, engineer):
    pending = ask(engineer, system)
    client = page_client(owner)
    response = client.post("/risks/inbox/decide/", {
        "decisions": [pending[0].pk, pending[2].pk], "decision": "accept",
        "justification": "WAF rules and rate limits cover both.", "expires_at": expiry()})
    assert response.status_code == 302
    decided = Decision.objects.filter(status=Decision.Status.ACCEPTED).order_by("pk")
    assert [d.risk_id for d in decided] == [pending[0].risk_id, pending[2].risk_id]
    assert all(d.justification == "WAF rules and rate limits cover both." and d.snapshot_sha256 for d in decided)
    assert AuditEvent.objects.filter(action="decision.accept").count() == 2
    assert list(selectors.inbox(owner)) == [pending[1]]
    page = client.get(response["Location"])
    assert b"2 sign-offs accepted" in page.content


def test_one_refused_refuses_all(system, owner, engineer):
    pending = ask(engineer, system, 2)
    Risk.objects.filter(pk=pending[1].risk_id).update(status="closed")
    response = page_client(owner).post("/risks/inbox/decide/", {
        "decisions": [p.pk for p in pending], "decision": "reject", "justification": "Not now."})
    # The closed risk's sign-off left the inbox: the form names it as no longer waiting.
    assert response.status_code == 400 and b"no longer waiting for your decision" in response.content
    assert not Decision.objects.exclude(status=Decision.Status.PENDING).exists()


def test_service_is_all_or_none(system, owner, engineer):
    pending = ask(engineer, system, 2)
    Risk.objects.filter(pk=pending[1].risk_id).update(status="closed")
    with pytest.raises(Exception) as exc:
        services.decisions_decide_bulk(actor=owner, decisions=pending, accept=False, justification="No.",
                                       expires_at=None)
    assert pending[1].risk.ref in str(exc.value) and "Nothing was recorded" in str(exc.value)
    assert not Decision.objects.exclude(status=Decision.Status.PENDING).exists()


def test_sign_offs_of_someone_elses_system_cannot_be_ticked(system, other_system, owner, other_owner, engineer):
    theirs = ask(engineer, other_system, 1)[0]
    mine = ask(engineer, system, 1)[0]
    response = page_client(owner).post("/risks/inbox/decide/", {
        "decisions": [mine.pk, theirs.pk], "decision": "reject", "justification": "No."})
    assert response.status_code == 400
    assert not Decision.objects.exclude(status=Decision.Status.PENDING).exists()


@pytest.mark.parametrize("data,error", [
    ({"decision": "accept", "justification": "x", "expires_at": expiry()}, b"Tick the sign-offs"),
    ({"decision": "accept", "justification": "x"}, b"An acceptance needs an expiry date"),
    ({"decision": "accept", "justification": "x", "expires_at": expiry(-1)}, b"must be in the future"),
    ({"decision": "reject", "justification": ""}, b"This field is required"),
])
def test_bad_values_show_their_error_and_keep_the_ticks(system, owner, engineer, data, error):
    pending = ask(engineer, system, 2)
    if error != b"Tick the sign-offs":
        data = {**data, "decisions": [pending[0].pk]}
    response = page_client(owner).post("/risks/inbox/decide/", data)
    assert response.status_code == 400 and error in response.content
    if "decisions" in data:
        assert f'value="{pending[0].pk}" form="bulk-decide" aria-label="Tick {pending[0].risk.ref}" checked'.encode() \
            in response.content
    assert not Decision.objects.exclude(status=Decision.Status.PENDING).exists()


def test_engineer_has_no_inbox_to_decide(system, engineer):
    pending = ask(engineer, system, 2)
    response = page_client(engineer).post("/risks/inbox/decide/", {
        "decisions": [p.pk for p in pending], "decision": "reject", "justification": "No."})
    assert response.status_code == 400
    assert not Decision.objects.exclude(status=Decision.Status.PENDING).exists()


def test_inbox_queries_stay_flat(system, owner, engineer, django_assert_max_num_queries):
    ask(engineer, system, 2)
    client = page_client(owner)
    client.get("/risks/inbox/")
    with django_assert_max_num_queries(12) as few:
        client.get("/risks/inbox/")
    ask(engineer, system, 15)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/risks/inbox/").content.count(b'form="bulk-decide"') == 17
