"""JSON API of the register: roles, refs, validation by field, relations by ident, filters, decisions, query counts."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.risks import services
from governance.risks.models import Decision, Risk, RiskStatus
from governance.rmf.models import ReferenceItem, RmfSubcategory
from tests.risks.conftest import accept, bearer_client, make_finding, make_risk, rated, session_client

pytestmark = pytest.mark.django_db

LIST = "/api/v1/risks/"


def detail(ref: str) -> str:
    return f"/api/v1/risks/{ref}/"


def decision_url(ref: str) -> str:
    return f"/api/v1/risks/{ref}/decision"


def new_risk(system_slug: str = "support-copilot", **extra) -> dict:
    return {"title": "Indirect prompt injection via web pages", "system": system_slug, "description": "RAG reads pages.",
            "inherent_likelihood": 4, "inherent_impact": 4, "residual_likelihood": 2, "residual_impact": 3, **extra}


def future(days: int = 90) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


# --- create ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["engineer", "ciso", "owner"])
def test_create_on_a_system_they_may_manage(request, system, who):
    response = bearer_client(request.getfixturevalue(who)).post(LIST, new_risk(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert re.fullmatch(r"RISK-\d{4}", body["ref"])
    assert body["inherent_level"] == "critical" and body["residual_level"] == "medium" and body["status"] == "open"
    assert body["url"].endswith(f"/risks/{body['ref']}/")
    risk = Risk.objects.get(ref=body["ref"])
    assert risk.system == system and risk.created_by == request.getfixturevalue(who)
    assert AuditEvent.objects.filter(action="risk.create", object_id=str(risk.pk)).exists()


def test_refs_are_sequential_and_zero_padded(engineer, system):
    client = bearer_client(engineer)
    refs = [client.post(LIST, new_risk(), format="json").json()["ref"] for _ in range(2)]
    first = int(refs[0].split("-")[1])
    assert refs == [f"RISK-{first:04d}", f"RISK-{first + 1:04d}"]


def test_owner_may_not_create_on_another_owners_system(owner, other_system):
    response = bearer_client(owner).post(LIST, new_risk("fraud-scoring"), format="json")
    assert response.status_code == 403 and not Risk.objects.exists()


@pytest.mark.parametrize("who", ["facilitator", "nobody"])
def test_roles_without_risk_rights_get_403(request, system, engineer, who):
    client = bearer_client(request.getfixturevalue(who))
    assert client.post(LIST, new_risk(), format="json").status_code == 403
    risk = rated(engineer, system)
    assert client.patch(detail(risk.ref), {"title": "x"}, format="json").status_code == 403
    assert client.post(decision_url(risk.ref), {"decision": "accept", "justification": "x", "expires_at": future()},
                       format="json").status_code == 403
    assert Risk.objects.count() == 1 and Risk.objects.get().title != "x"


def test_anonymous_gets_401(system, engineer):
    risk = rated(engineer, system)
    client = APIClient()
    assert client.get(LIST).status_code == 401
    assert client.get(detail(risk.ref)).status_code == 401
    assert client.post(LIST, new_risk(), format="json").status_code == 401
    assert client.patch(detail(risk.ref), {"title": "x"}, format="json").status_code == 401
    assert client.post(decision_url(risk.ref), {}, format="json").status_code == 401


def test_levels_and_status_are_read_only(engineer, system):
    response = bearer_client(engineer).post(LIST, new_risk(residual_level="low", inherent_level="low", residual_rank=0,
                                                           status="accepted", ref="RISK-9999"), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["residual_level"] == "medium" and body["inherent_level"] == "critical" and body["status"] == "open"
    assert body["ref"] != "RISK-9999"
    risk = Risk.objects.get(ref=body["ref"])
    assert risk.residual_rank == 2
    patched = bearer_client(engineer).patch(detail(risk.ref), {"residual_level": "low", "status": "closed"}, format="json")
    assert patched.status_code == 200 and patched.json()["residual_level"] == "medium" and patched.json()["status"] == "open"


def test_not_rated_is_null_and_empty(engineer, system):
    body = bearer_client(engineer).post(LIST, {"title": "Unrated", "system": system.slug}, format="json").json()
    assert body["residual_likelihood"] is None and body["residual_impact"] is None
    assert body["residual_level"] == "" and body["inherent_level"] == ""


def test_relations_by_ident_and_findings_by_id(engineer, system):
    f1, f2 = make_finding(system), make_finding(system, severity="high")
    response = bearer_client(engineer).post(LIST, new_risk(
        rmf_subcategories=["MANAGE 1.1", "MAP 5.1"], references=["LLM01", "AML.T0010"], findings=[f1.pk, f2.pk],
    ), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert sorted(body["rmf_subcategories"]) == ["MANAGE 1.1", "MAP 5.1"]
    assert sorted(body["references"]) == ["AML.T0010", "LLM01"]
    assert sorted(body["findings"]) == sorted([f1.pk, f2.pk])
    risk = Risk.objects.get(ref=body["ref"])
    assert sorted(risk.references.values_list("ident", flat=True)) == ["AML.T0010", "LLM01"]
    assert sorted(risk.findings.values_list("pk", flat=True)) == sorted([f1.pk, f2.pk])
    again = bearer_client(engineer).get(detail(risk.ref)).json()
    assert sorted(again["references"]) == ["AML.T0010", "LLM01"] and sorted(again["findings"]) == sorted([f1.pk, f2.pk])


@pytest.mark.parametrize("field, value", [
    ("system", "no-such-system"),
    ("rmf_subcategories", ["MANAGE 99.9"]),
    ("references", ["LLM99"]),
    ("findings", [999999]),
    ("owner", "nobody-here@example.com"),
    ("owner", "not-an-email"),
    ("residual_likelihood", 6),
    ("residual_impact", 0),
    ("inherent_likelihood", -1),
    ("inherent_impact", "high"),
    ("treatment", "ignore"),
    ("source", "rumour"),
    ("due_date", "next week"),
    ("title", ""),
])
def test_field_errors_are_400_and_nothing_is_saved(engineer, system, field, value):
    client = bearer_client(engineer)
    events = AuditEvent.objects.count()
    response = client.post(LIST, new_risk(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Risk.objects.exists() and AuditEvent.objects.count() == events


def test_archived_system_takes_no_new_risks(engineer, ciso, system):
    from governance.inventory import services as inventory_services

    inventory_services.system_archive(actor=ciso, system=system)
    response = bearer_client(engineer).post(LIST, new_risk(), format="json")
    assert response.status_code == 400 and "system" in response.json()


def test_ratings_are_checked_against_the_matrix_in_force(engineer, ciso, system):
    from tests.risks.test_matrix import THREE

    services.matrix_update(actor=ciso, **THREE)
    response = bearer_client(engineer).post(LIST, new_risk(), format="json")  # inherent 4×4 on a 3×3
    assert response.status_code == 400
    assert set(response.json()) == {"inherent_likelihood", "inherent_impact"}
    ok = bearer_client(engineer).post(LIST, new_risk(inherent_likelihood=3, inherent_impact=3), format="json")
    assert ok.status_code == 201 and ok.json()["residual_level"] == "red"


# --- read and edit --------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["ciso", "owner", "other_owner", "engineer", "facilitator", "nobody"])
def test_every_logged_in_user_may_read(request, engineer, system, who):
    risk = rated(engineer, system, title="Readable")
    client = bearer_client(request.getfixturevalue(who))
    assert client.get(LIST).json()["count"] == 1
    assert client.get(detail(risk.ref)).json()["title"] == "Readable"


def test_unknown_ref_is_404(ciso):
    client = bearer_client(ciso)
    assert client.get(detail("RISK-9999")).status_code == 404
    assert client.patch(detail("RISK-9999"), {"title": "x"}, format="json").status_code == 404
    assert client.post(decision_url("RISK-9999"), {"decision": "reject", "justification": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("who, system_fixture, code", [
    ("engineer", "system", 200), ("engineer", "other_system", 200), ("ciso", "other_system", 200),
    ("owner", "system", 200), ("owner", "other_system", 403), ("other_owner", "system", 403),
])
def test_patch_rights(request, engineer, who, system_fixture, code):
    risk = rated(engineer, request.getfixturevalue(system_fixture), title="Before")
    response = bearer_client(request.getfixturevalue(who)).patch(
        detail(risk.ref), {"title": "After", "residual_likelihood": 5, "residual_impact": 5}, format="json")
    assert response.status_code == code
    risk.refresh_from_db()
    if code == 200:
        assert risk.title == "After" and risk.residual_level == "critical" and response.json()["residual_level"] == "critical"
        event = AuditEvent.objects.get(action="risk.update", object_id=str(risk.pk))
        assert event.before["title"] == "Before" and event.after["title"] == "After"
    else:
        assert risk.title == "Before" and risk.residual_level == "medium"


def test_patch_relations_and_unrating(engineer, system):
    risk = rated(engineer, system, rmf_subcategories=[])
    response = bearer_client(engineer).patch(detail(risk.ref), {
        "rmf_subcategories": ["GOVERN 1.1"], "references": ["LLM01"], "residual_likelihood": None, "residual_impact": None,
    }, format="json")
    assert response.status_code == 200, response.json()
    risk.refresh_from_db()
    assert list(risk.rmf_subcategories.values_list("ident", flat=True)) == ["GOVERN 1.1"]
    assert risk.residual_level == "" and risk.residual_rank == 0


def test_patch_cannot_move_a_risk_to_another_system(engineer, system, other_system):
    risk = rated(engineer, system)
    response = bearer_client(engineer).patch(detail(risk.ref), {"system": other_system.slug}, format="json")
    assert response.status_code == 400 and "system" in response.json()
    risk.refresh_from_db()
    assert risk.system == system


def test_patch_field_error_changes_nothing(engineer, system):
    risk = rated(engineer, system, title="Same")
    response = bearer_client(engineer).patch(detail(risk.ref), {"title": "New", "residual_impact": 9}, format="json")
    assert response.status_code == 400 and "residual_impact" in response.json()
    risk.refresh_from_db()
    assert risk.title == "Same"


# --- list filters and query count -----------------------------------------------------------------

def test_list_filters(engineer, owner, system, other_system):
    high = rated(engineer, system, residual=(3, 3), title="High one")
    low = rated(engineer, system, residual=(1, 1), title="Low one")
    unrated = make_risk(engineer, system, title="Unrated one")
    theirs = rated(engineer, other_system, residual=(5, 5), title="Critical elsewhere", due_date=timezone.localdate() - timedelta(days=1))
    closed = rated(engineer, system, title="Closed one")
    services.risk_close(actor=engineer, risk=closed, reason="Gone.")
    services.decision_request(actor=engineer, risk=low, kind=Decision.Kind.RESIDUAL_RISK)
    client = bearer_client(engineer)

    def refs(query: str = "") -> list[str]:
        response = client.get(LIST + query)
        assert response.status_code == 200
        return [r["ref"] for r in response.json()["results"]]

    assert refs() == [theirs.ref, high.ref, low.ref, unrated.ref]  # worst first, closed hidden
    assert refs("?system=fraud-scoring") == [theirs.ref]
    assert refs("?level=high") == [high.ref]
    assert refs("?level=unrated") == [unrated.ref]
    assert refs("?status=closed") == [closed.ref]
    assert len(refs("?status=all")) == 5
    assert refs("?awaiting=1") == [low.ref]
    assert refs("?overdue=1") == [theirs.ref]
    assert refs("?q=elsewhere") == [theirs.ref]
    assert refs(f"?q={high.ref}") == [high.ref]


def _list_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST + "?limit=200")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["count"]


def _grow(engineer, owner, system, n: int) -> None:
    subcategories = list(RmfSubcategory.objects.filter(version="1.0", ident__in=["MANAGE 1.1", "MAP 1.1"]))
    references = list(ReferenceItem.objects.filter(ident__in=["LLM01", "AML.T0010"]))
    for i in range(n):
        risk = rated(engineer, system, residual=(1 + i % 5, 3), owner=engineer, findings=[make_finding(system)],
                     rmf_subcategories=subcategories, references=references)
        if i % 2:
            accept(risk, owner)


def test_list_query_count_does_not_grow(engineer, owner, system):
    client = bearer_client(engineer)
    _grow(engineer, owner, system, 3)
    client.get(LIST)  # token's last use recorded
    few, n_few = _list_queries(client)
    _grow(engineer, owner, system, 37)
    many, n_many = _list_queries(client)
    assert (n_few, n_many) == (3, 40)
    assert few == many == 6  # token + count + page + rmf subcategories + references + findings


# --- decisions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, code", [("owner", 201), ("ciso", 201), ("other_owner", 403), ("engineer", 403)])
def test_decision_rights_by_bearer_token(request, engineer, system, who, code):
    risk = rated(engineer, system)
    response = bearer_client(request.getfixturevalue(who)).post(
        decision_url(risk.ref), {"decision": "accept", "justification": "Filter in place.", "expires_at": future()}, format="json")
    assert response.status_code == code, response.json()
    risk.refresh_from_db()
    if code == 201:
        body = response.json()
        assert body["status"] == "accepted" and body["risk_status"] == "accepted" and len(body["snapshot_sha256"]) == 64
        assert risk.status == RiskStatus.ACCEPTED
    else:
        assert risk.status == RiskStatus.OPEN and not risk.decisions.exists()


def test_owner_cannot_decide_on_another_owners_system(owner, engineer, other_system):
    risk = rated(engineer, other_system)
    response = bearer_client(owner).post(decision_url(risk.ref), {"decision": "reject", "justification": "No."}, format="json")
    assert response.status_code == 403 and not risk.decisions.exists()


@pytest.mark.parametrize("who, code", [("owner", 201), ("other_owner", 403), ("engineer", 403), ("ciso", 201)])
def test_decision_rights_by_session_with_csrf(request, engineer, system, who, code):
    risk = rated(engineer, system)
    client = session_client(request.getfixturevalue(who))
    body = {"decision": "reject", "justification": "Needs an output filter first."}
    assert client.post(decision_url(risk.ref), body, format="json").status_code == 403  # no CSRF token
    token = "a" * 32
    client.cookies["csrftoken"] = token
    response = client.post(decision_url(risk.ref), body, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == code
    assert risk.decisions.filter(status="rejected").count() == (1 if code == 201 else 0)


@pytest.mark.parametrize("body, field", [
    ({"decision": "accept", "justification": "", "expires_at": None}, "justification"),
    ({"decision": "accept", "justification": "   ", "expires_at": "FUTURE"}, "justification"),
    ({"decision": "accept", "justification": "ok"}, "expires_at"),
    ({"decision": "accept", "justification": "ok", "expires_at": None}, "expires_at"),
    ({"decision": "accept", "justification": "ok", "expires_at": "PAST"}, "expires_at"),
    ({"decision": "accept", "justification": "ok", "expires_at": "soon"}, "expires_at"),
    ({"decision": "reject"}, "justification"),
    ({"decision": "reject", "justification": ""}, "justification"),
    ({"decision": "maybe", "justification": "ok"}, "decision"),
    ({"justification": "ok"}, "decision"),
])
def test_decision_field_errors_are_400_and_change_nothing(owner, engineer, system, body, field):
    risk = rated(engineer, system)
    services.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK)
    client = bearer_client(owner)
    events = AuditEvent.objects.count()
    if body.get("expires_at") == "FUTURE":
        body["expires_at"] = future()
    if body.get("expires_at") == "PAST":
        body["expires_at"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = client.post(decision_url(risk.ref), body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    risk.refresh_from_db()
    assert risk.status == RiskStatus.AWAITING_DECISION
    assert list(risk.decisions.values_list("status", flat=True)) == ["pending"]
    assert AuditEvent.objects.count() == events


def test_decision_by_api_then_later_edit_keeps_snapshot(owner, engineer, system):
    risk = rated(engineer, system, title="Signed title")
    sha = bearer_client(owner).post(decision_url(risk.ref), {"decision": "accept", "justification": "ok",
                                                            "expires_at": future()}, format="json").json()["snapshot_sha256"]
    response = bearer_client(engineer).patch(detail(risk.ref), {"title": "Edited later", "residual_likelihood": 5},
                                             format="json")
    decision = Decision.objects.get(risk=risk, decided_at__isnull=False)
    assert decision.snapshot["title"] == "Signed title" and decision.snapshot_sha256 == sha
    # the rating went above what was signed: the acceptance no longer covers it, the owner is asked again
    assert decision.status == Decision.Status.WITHDRAWN and response.json()["status"] == "awaiting_decision"
    assert Decision.objects.get(risk=risk, status=Decision.Status.PENDING).requested_by == engineer


def test_accepted_risk_is_still_editable_but_closed_risk_refuses_requests(owner, engineer, system):
    risk = rated(engineer, system)
    accept(risk, owner)
    assert bearer_client(engineer).patch(detail(risk.ref), {"treatment": "accept"}, format="json").status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"residual_likelihood": 4, "residual_impact": None}, "residual_impact"),
    ({"inherent_impact": 2, "inherent_likelihood": None}, "inherent_likelihood"),
])
def test_half_a_rating_is_refused(engineer, system, body, field):
    response = bearer_client(engineer).post(LIST, {"title": "Half", "system": system.slug, **body}, format="json")
    assert response.status_code == 400 and field in response.json()


def test_patch_clearing_one_half_of_a_rating_is_refused(engineer, system):
    risk = rated(engineer, system)
    response = bearer_client(engineer).patch(detail(risk.ref), {"residual_impact": None}, format="json")
    assert response.status_code == 400 and "residual_impact" in response.json()
    assert bearer_client(engineer).patch(detail(risk.ref), {"residual_likelihood": 1}, format="json").status_code == 200
