"""The register's screens, per role: list + heat map, form, risk page with sign-off, inbox, matrix, system gate card,
and the findings → risk actions of the triage queue."""
from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.findings.models import FindingState
from governance.risks import selectors, services
from governance.risks.models import Decision, MitigationAction, Risk, RiskStatus
from governance.rmf.models import ReferenceItem, RmfSubcategory
from tests.risks.conftest import accept, make_finding, make_risk, rated

pytestmark = pytest.mark.django_db

LIST = reverse("risks:list")
NEW = reverse("risks:create")
INBOX = reverse("risks:inbox")
MATRIX = reverse("risks:matrix")


def refs_listed(response) -> list[str]:
    return re.findall(r'<a class="ref" href="/risks/[^"]+/">(RISK-\d+)</a>', response.content.decode())


def figure(response) -> dict:
    match = re.search(r'data-figure="([^"]+)"', response.content.decode())
    return json.loads(html.unescape(match.group(1)))


def heat_total(fig: dict, side: str) -> int:
    trace = next(t for t in fig["data"] if t["name"] == side)
    return sum(int(v) for row in trace["text"] for v in row if v)


def counts() -> tuple:
    return (Risk.objects.count(), Decision.objects.count(), MitigationAction.objects.count(), AuditEvent.objects.count())


def form_post(system, **overrides) -> dict:
    data = {"system": system.slug, "title": "Jailbreak leaks the system prompt", "description": "Seen in red-team run 4.",
            "owner": "", "due_date": "", "inherent_likelihood": "4", "inherent_impact": "4",
            "residual_likelihood": "2", "residual_impact": "3", "treatment": "mitigate",
            "treatment_plan": "Prompt hardening and output filter.", "findings": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def risk(engineer, system):
    return rated(engineer, system, title="Prompt injection via retrieved pages")


# --- access ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [LIST, NEW, INBOX, MATRIX, reverse("risks:export-csv"), "/risks/RISK-0001/"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["ciso", "owner", "other_owner", "engineer", "facilitator"])
def test_every_role_reads_the_register_and_risk_page(client, risk, role, request):
    client.force_login(request.getfixturevalue(role))
    assert refs_listed(client.get(LIST)) == [risk.ref]
    assert client.get(risk.get_absolute_url()).status_code == 200


def test_unknown_risk_is_404(client, ciso):
    client.force_login(ciso)
    assert client.get("/risks/RISK-9999/").status_code == 404


# --- create / edit -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role, status", [("ciso", 200), ("owner", 200), ("other_owner", 200), ("engineer", 200),
                                          ("facilitator", 403), ("nobody", 403)])
def test_who_may_open_the_new_risk_form(client, system, role, status, request):
    client.force_login(request.getfixturevalue(role))
    assert client.get(NEW).status_code == status


def test_owner_creates_a_risk_levels_from_the_matrix(client, owner, system):
    client.force_login(owner)
    subcats = list(RmfSubcategory.objects.filter(version="1.0", ident__in=["MAP 5.1", "MEASURE 2.7"]))
    llm01 = ReferenceItem.objects.get(catalogue="owasp-llm", ident="LLM01")
    trust = ReferenceItem.objects.filter(catalogue="trustworthiness").first()
    response = client.post(NEW, form_post(system, owner=owner.pk, due_date="2030-01-31",
                                          rmf_subcategories=[s.pk for s in subcats], ref_owasp=[llm01.pk],
                                          ref_trustworthiness=[trust.pk]))
    assert response.status_code == 302
    risk = Risk.objects.get()
    assert response.url == risk.get_absolute_url()
    assert (risk.inherent_level, risk.residual_level, risk.source) == ("critical", "medium", "manual")
    assert sorted(risk.rmf_subcategories.values_list("ident", flat=True)) == ["MAP 5.1", "MEASURE 2.7"]
    assert set(risk.references.all()) == {llm01, trust}
    assert AuditEvent.objects.filter(action="risk.create", object_id=str(risk.pk)).exists()


def test_other_owner_cannot_add_a_risk_to_a_system_they_do_not_own(client, other_owner, system, other_system):
    client.force_login(other_owner)
    assert system.slug not in client.get(NEW).content.decode()
    before = counts()
    response = client.post(NEW, form_post(system))
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert counts() == before


def test_facilitator_post_is_refused(client, facilitator, system):
    client.force_login(facilitator)
    before = counts()
    assert client.post(NEW, form_post(system)).status_code == 403
    assert counts() == before


@pytest.mark.parametrize("overrides, field, message", [
    ({"title": ""}, "title", "This field is required."),
    ({"residual_impact": ""}, "residual_impact", "Rate both likelihood and impact of the residual risk"),
    ({"inherent_likelihood": "9"}, "inherent_likelihood", "Select a valid choice"),
    ({"treatment_plan": ""}, "treatment_plan", "Describe how the risk will be treated."),
    ({"due_date": "31/31/2030"}, "due_date", "Enter a valid date."),
])
def test_form_errors_field_by_field_nothing_saved(client, engineer, system, overrides, field, message):
    client.force_login(engineer)
    before = counts()
    response = client.post(NEW, form_post(system, **overrides))
    assert response.status_code == 400
    body = response.content.decode()
    assert "nothing was saved" in body
    assert message in html.unescape(body)
    assert response.context["form"].errors[field]
    assert counts() == before


def test_new_risk_prefilled_from_findings_links_them(client, engineer, system):
    f1, f2 = make_finding(system, title="Hard-coded key"), make_finding(system, severity="high", title="Pickle load")
    client.force_login(engineer)
    response = client.get(NEW, {"system": system.slug, "findings": f"{f1.pk},{f2.pk}"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["system"] == system.slug and f1.title in form.initial["title"]
    assert form.initial["findings"] == f"{f1.pk},{f2.pk}"
    response = client.post(NEW, form_post(system, findings=f"{f1.pk},{f2.pk}"))
    assert response.status_code == 302
    risk = Risk.objects.get()
    assert risk.source == "findings" and set(risk.findings.all()) == {f1, f2}


def test_findings_of_another_system_are_refused(client, engineer, system, other_system):
    foreign = make_finding(other_system)
    client.force_login(engineer)
    before = counts()
    response = client.post(NEW, form_post(system, findings=str(foreign.pk)))
    assert response.status_code == 400 and "belong to another system" in response.content.decode()
    assert counts() == before


@pytest.mark.parametrize("role, status", [("ciso", 200), ("owner", 200), ("engineer", 200), ("other_owner", 403),
                                          ("facilitator", 403)])
def test_who_may_edit(client, risk, role, status, request):
    client.force_login(request.getfixturevalue(role))
    url = reverse("risks:edit", args=[risk.ref])
    assert client.get(url).status_code == status
    before = counts()
    response = client.post(url, form_post(risk.system, title="Renamed"))
    assert response.status_code == (302 if status == 200 else 403)
    risk.refresh_from_db()
    assert (risk.title == "Renamed") is (status == 200)
    if status != 200:
        assert counts() == before


def test_edit_cannot_move_the_risk_and_recomputes_levels(client, engineer, risk, other_system):
    client.force_login(engineer)
    response = client.post(reverse("risks:edit", args=[risk.ref]),
                           {**form_post(risk.system, residual_likelihood="5", residual_impact="5"), "system": other_system.slug})
    assert response.status_code == 302
    risk.refresh_from_db()
    assert risk.system.slug == "support-copilot" and risk.residual_level == "critical"


def test_edit_error_saves_nothing(client, engineer, risk):
    client.force_login(engineer)
    before = counts()
    response = client.post(reverse("risks:edit", args=[risk.ref]), form_post(risk.system, title="", residual_impact=""))
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"title", "residual_impact"}
    risk.refresh_from_db()
    assert risk.title == "Prompt injection via retrieved pages" and counts() == before


# --- sign-off ---------------------------------------------------------------------------------------------------

def decide(client, risk, **data):
    body = {"decision": "accept", "kind": "residual_risk", "justification": "Controls in place.",
            "expires_at": (timezone.localdate() + timedelta(days=90)).isoformat()}
    body.update(data)
    return client.post(reverse("risks:decide", args=[risk.ref]), body)


@pytest.mark.parametrize("role, allowed", [("ciso", True), ("owner", True), ("other_owner", False),
                                           ("engineer", False), ("facilitator", False)])
def test_only_the_owning_product_owner_or_a_ciso_decides(client, risk, engineer, role, allowed, request):
    services.decision_request(actor=engineer, risk=risk, kind="residual_risk")
    user = request.getfixturevalue(role)
    client.force_login(user)
    page = client.get(risk.get_absolute_url()).content.decode()
    assert ("Record decision" in page) is allowed  # the UI hides what the server refuses
    before = counts()
    response = decide(client, risk)
    risk.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert risk.status == RiskStatus.ACCEPTED
        d = risk.decisions.get(status=Decision.Status.ACCEPTED)
        assert d.decided_by == user and d.snapshot_sha256 and d.expires_at.date() == timezone.localdate() + timedelta(days=90)
    else:
        assert response.status_code == 403
        assert risk.status == RiskStatus.AWAITING_DECISION and counts() == before


def test_anonymous_cannot_decide(client, risk):
    response = decide(client, risk)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert not risk.decisions.exists()


@pytest.mark.parametrize("data, field", [
    ({"expires_at": ""}, "expires_at"),
    ({"expires_at": "2001-01-01"}, "expires_at"),
    ({"justification": ""}, "justification"),
    ({"decision": "reject", "justification": "  "}, "justification"),
])
def test_decision_errors_are_form_errors_nothing_saved(client, owner, risk, data, field):
    client.force_login(owner)
    before = counts()
    response = decide(client, risk, **data)
    assert response.status_code == 400
    assert response.context["decide_form"].errors[field]
    risk.refresh_from_db()
    assert risk.status == RiskStatus.OPEN and counts() == before


def test_reject_needs_no_expiry(client, owner, risk):
    client.force_login(owner)
    assert decide(client, risk, decision="reject", justification="Mitigate first.", expires_at="").status_code == 302
    risk.refresh_from_db()
    assert risk.status == RiskStatus.REJECTED and risk.decisions.get().expires_at is None


@pytest.mark.parametrize("role, status", [("engineer", 302), ("owner", 302), ("ciso", 302), ("other_owner", 403),
                                          ("facilitator", 403)])
def test_who_may_request_sign_off(client, risk, role, status, request):
    client.force_login(request.getfixturevalue(role))
    response = client.post(reverse("risks:request", args=[risk.ref]), {"kind": "treatment_plan", "note": "Please."})
    assert response.status_code == status
    risk.refresh_from_db()
    assert (risk.status == RiskStatus.AWAITING_DECISION) is (status == 302)


def test_request_on_a_closed_risk_is_a_form_error(client, engineer, risk):
    services.risk_close(actor=engineer, risk=risk, reason="Duplicate.")
    client.force_login(engineer)
    before = counts()
    response = client.post(reverse("risks:request", args=[risk.ref]), {"kind": "residual_risk"})
    assert response.status_code == 400 and "is closed: decisions on a closed risk are refused." in response.content.decode()
    assert counts() == before


def test_closing_keeps_findings_open_and_says_so(client, engineer, system):
    f = make_finding(system)
    fixed = make_finding(system, state=FindingState.FIXED)
    risk = rated(engineer, system, findings=[f, fixed])
    client.force_login(engineer)
    assert client.post(reverse("risks:close", args=[risk.ref]), {"reason": ""}).status_code == 400
    assert client.post(reverse("risks:close", args=[risk.ref]), {"reason": "Superseded by RISK-0009."}).status_code == 302
    risk.refresh_from_db()
    f.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED and f.state == FindingState.NEW
    body = client.get(risk.get_absolute_url()).content.decode()
    assert "1 linked finding still open" in body and "closing the risk did not close them" in body


def test_decision_snapshot_shown_and_changed_since_flagged(client, owner, engineer, risk):
    decision = accept(risk, owner)
    client.force_login(owner)
    body = client.get(risk.get_absolute_url()).content.decode()
    assert decision.snapshot_sha256 in body and "matches what was signed" in body
    with pytest.raises(PermissionDenied):  # a signed-off rating: only its decider may lower it
        services.risk_update(actor=engineer, risk=risk, data={"title": "Quietly softened", "residual_likelihood": 1})
    services.risk_update(actor=owner, risk=risk, data={"title": "Quietly softened", "residual_likelihood": 1})
    body = client.get(risk.get_absolute_url()).content.decode()
    assert "changed since decision" in body
    assert "Prompt injection via retrieved pages" in body  # what was signed is still shown
    d = selectors.risk_page(risk.ref).decisions[0]
    assert {"title", "residual_likelihood", "residual_level"} <= set(d.changed_since)


def test_mitigation_actions(client, engineer, other_owner, risk):
    client.force_login(other_owner)
    assert client.post(reverse("risks:action-add", args=[risk.ref]), {"title": "Filter"}).status_code == 403
    client.force_login(engineer)
    assert client.post(reverse("risks:action-add", args=[risk.ref]), {"title": ""}).status_code == 400
    assert client.post(reverse("risks:action-add", args=[risk.ref]), {"title": "Output filter", "due_date": "2030-02-01"}).status_code == 302
    action = risk.actions.get()
    url = reverse("risks:action-status", args=[risk.ref, action.pk])
    assert client.post(url, {"status": "done"}).status_code == 302
    action.refresh_from_db()
    assert action.status == "done"
    client.force_login(other_owner)
    assert client.post(url, {"status": "planned"}).status_code == 403


def test_risk_page_history_and_escaping(client, engineer, system):
    risk = rated(engineer, system, title="<script>alert(1)</script>")
    client.force_login(engineer)
    body = client.get(risk.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "risk.create" in body


def test_risk_page_query_count_is_constant(client, owner, engineer, system, django_assert_max_num_queries):
    risk = rated(engineer, system, findings=[make_finding(system)])
    accept(risk, owner)
    client.force_login(owner)
    with CaptureQueriesContext(connection) as small:
        client.get(risk.get_absolute_url())
    for i in range(8):
        services.mitigation_add(actor=engineer, risk=risk, data={"title": f"a{i}"})
    services.risk_link_findings(actor=engineer, risk=risk, findings=[make_finding(system) for _ in range(8)])
    accept(risk, owner)
    with CaptureQueriesContext(connection) as big:
        client.get(risk.get_absolute_url())
    assert len(big) == len(small)


# --- inbox ------------------------------------------------------------------------------------------------------

def test_inbox_per_role(client, ciso, owner, other_owner, engineer, system, other_system):
    mine = rated(engineer, system, title="Mine")
    theirs = rated(engineer, other_system, title="Theirs")
    services.decision_request(actor=engineer, risk=mine, kind="residual_risk")
    services.decision_request(actor=engineer, risk=theirs, kind="residual_risk")
    soon = rated(engineer, system, title="Expiring soon")
    accept(soon, owner, days=10)
    later = rated(engineer, system, title="Expiring later")
    accept(later, owner, days=60)
    client.force_login(owner)
    body = client.get(INBOX).content.decode()
    assert mine.ref in body and theirs.ref not in body and soon.ref in body and later.ref not in body
    client.force_login(ciso)
    body = client.get(INBOX).content.decode()
    assert mine.ref in body and theirs.ref in body
    client.force_login(engineer)
    assert "Nothing is waiting for your decision." in client.get(INBOX).content.decode()


def test_inbox_inline_accept_returns_to_inbox(client, owner, engineer, risk):
    services.decision_request(actor=engineer, risk=risk, kind="treatment_plan")
    client.force_login(owner)
    response = decide(client, risk, kind="treatment_plan", next=INBOX)
    assert response.status_code == 302 and response.url == INBOX
    assert risk.decisions.get().status == Decision.Status.ACCEPTED
    response = decide(client, risk, next="//evil.example/")
    assert response.url == risk.get_absolute_url()


# --- matrix -------------------------------------------------------------------------------------------------------

def matrix_post(response, **changes) -> dict:
    form = response.context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update(changes)
    return data


@pytest.mark.parametrize("role, status", [("ciso", 200), ("admin_user", 200), ("owner", 403), ("engineer", 403),
                                          ("facilitator", 403)])
def test_matrix_page_for_ciso_and_admin_only(client, role, status, request):
    client.force_login(request.getfixturevalue(role))
    assert client.get(MATRIX).status_code == status
    assert client.post(MATRIX, {}).status_code == (400 if status == 200 else 403)


def test_matrix_save_recomputes_every_risk_and_the_list_follows(client, ciso, engineer, system):
    risk = rated(engineer, system, residual=(2, 2))  # medium by default
    client.force_login(ciso)
    response = client.get(MATRIX)
    response = client.post(MATRIX, matrix_post(response, c_2_2="critical", lv_critical_label="Severe!"))
    assert response.status_code == 302
    risk.refresh_from_db()
    assert risk.residual_level == "critical"
    body = client.get(LIST, {"level": "critical"}).content.decode()
    assert risk.ref in body and "Severe!" in body


def test_matrix_errors(client, ciso):
    client.force_login(ciso)
    response = client.get(MATRIX)
    response = client.post(MATRIX, matrix_post(response, c_1_1="apocalyptic", lv_low_colour="red", l_1=""))
    assert response.status_code == 400
    assert {"c_1_1", "lv_low_colour", "l_1"} <= set(response.context["form"].errors)
    assert not AuditEvent.objects.filter(action="risk_matrix.update").exists()


# --- register list + heat map -------------------------------------------------------------------------------------

@pytest.fixture
def register(ciso, owner, engineer, system, other_system):
    today = timezone.localdate()
    a = rated(engineer, system, title="Alpha", residual=(5, 5), due_date=today - timedelta(days=3))  # critical, overdue
    b = rated(engineer, system, title="Bravo", residual=(1, 1), owner=owner)  # low
    c = make_risk(engineer, system, title="Charlie")  # not rated
    d = rated(engineer, other_system, title="Delta", residual=(3, 3))  # high
    services.decision_request(actor=engineer, risk=d, kind="residual_risk")
    e = rated(engineer, system, title="Echo closed")
    services.risk_close(actor=engineer, risk=e, reason="done")
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


@pytest.mark.parametrize("params, expected", [
    ({}, "abdc"),  # highest residual first, closed hidden, unrated last
    ({"system": "support-copilot"}, "abc"),
    ({"level": "critical"}, "a"),
    ({"level": "unrated"}, "c"),
    ({"status": "all"}, "adebc"),
    ({"status": "closed"}, "e"),
    ({"overdue": "1"}, "a"),
    ({"awaiting": "1"}, "d"),
    ({"q": "bravo"}, "b"),
    ({"level": "bogus", "status": "bogus"}, "abdc"),  # unknown values are ignored, not errors
])
def test_filters(client, ciso, register, params, expected):
    client.force_login(ciso)
    response = client.get(LIST, params)
    refs = refs_listed(response)
    want = [register[k].ref for k in expected]
    assert sorted(refs) == sorted(want) and refs[0] == want[0]


def test_owner_filter(client, ciso, owner, register):
    client.force_login(ciso)
    assert refs_listed(client.get(LIST, {"owner": owner.pk})) == [register["b"].ref]


def test_level_chips_and_overdue_flag(client, ciso, register):
    client.force_login(ciso)
    body = client.get(LIST).content.decode()
    assert 'style="background:#c62828;color:#ffffff"' in body  # critical, coloured from the matrix
    assert "overdue" in body and "Not rated" in body


@pytest.mark.parametrize("params", [{}, {"system": "support-copilot"}, {"level": "high"}, {"awaiting": "1"},
                                    {"status": "all"}])
def test_heat_map_agrees_with_the_list(client, ciso, register, params):
    client.force_login(ciso)
    response = client.get(LIST, params)
    listed = set(refs_listed(response))
    fig = figure(response)
    rated_listed = Risk.objects.filter(ref__in=listed).exclude(residual_level="")
    assert heat_total(fig, "residual") == rated_listed.count()
    assert heat_total(fig, "inherent") == Risk.objects.filter(ref__in=listed).exclude(inherent_level="").count()
    hover = json.dumps(fig["data"])
    assert all(ref in hover for ref in rated_listed.values_list("ref", flat=True))
    assert not any(r.ref in hover for r in Risk.objects.exclude(ref__in=listed))


def test_heat_cell_position(client, ciso, register):
    client.force_login(ciso)
    fig = figure(client.get(LIST, {"level": "critical"}))
    residual = next(t for t in fig["data"] if t["name"] == "residual")
    assert residual["text"][4][4] == "1"  # likelihood 5 × impact 5


def test_htmx_returns_the_results_partial(client, ciso, register):
    client.force_login(ciso)
    response = client.get(LIST, {"level": "low"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results"') and "<html" not in body
    assert refs_listed(response) == [register["b"].ref] and "data-figure" in body


def test_pagination_keeps_the_heat_map_whole(client, ciso, engineer, system):
    for i in range(55):
        rated(engineer, system, title=f"R{i}")
    client.force_login(ciso)
    response = client.get(LIST)
    assert len(refs_listed(response)) == 50 and heat_total(figure(response), "residual") == 55
    page2 = client.get(LIST, {"page": 2})
    assert len(refs_listed(page2)) == 5 and 'href="?page=1"' in page2.content.decode()


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(LIST).status_code == 200
    return len(ctx)


def test_list_query_count_does_not_grow_with_risks(client, ciso, owner, engineer, system, other_system):
    def add(n):
        for i in range(n):
            target = system if i % 2 else other_system
            r = rated(engineer, target, title=f"Risk {i}", owner=owner if i % 3 else engineer,
                      findings=[make_finding(target)])
            services.mitigation_add(actor=engineer, risk=r, data={"title": "x"})
    add(3)
    client.force_login(ciso)
    small = _list_queries(client)
    add(37)
    assert Risk.objects.count() == 40
    assert _list_queries(client) == small
    # session, user, permissions ×2, roles, sign-offs waiting (sidebar), matrix, the risks (with counts), systems and
    # owners for the filters
    assert small <= 10, small


# --- system page gate card ----------------------------------------------------------------------------------------

def test_system_page_shows_the_gate_with_reasons(client, owner, engineer, system):
    rated(engineer, system, title="Unaccepted", residual=(4, 4))
    client.force_login(owner)
    body = client.get(system.get_absolute_url()).content.decode()
    assert "Release gate" in body and "NO-GO" in body and "RISK_RESIDUAL_UNACCEPTED" in body
    assert "Request sign-off from" in body
    assert f"/risks/?system={system.slug}" in body


def test_system_page_query_count_constant(client, owner, engineer, system):
    rated(engineer, system, residual=(4, 4))
    client.force_login(owner)
    client.get(system.get_absolute_url())  # the first call creates the tier's default gate policy
    with CaptureQueriesContext(connection) as small:
        client.get(system.get_absolute_url())
    for i in range(15):
        r = rated(engineer, system, residual=(i % 5 + 1, 4), title=f"more {i}")
        if i % 3 == 0:
            accept(r, owner)
    with CaptureQueriesContext(connection) as big:
        client.get(system.get_absolute_url())
    assert len(big) == len(small)


# --- findings queue → risks ---------------------------------------------------------------------------------------

def test_bulk_link_to_risk_only_same_system(client, engineer, risk, other_system):
    same, foreign = make_finding(risk.system), make_finding(other_system)
    client.force_login(engineer)
    response = client.post(reverse("findings:bulk"), {"action": "link_risk", "risk": risk.ref.lower(),
                                                      "ids": [same.pk, foreign.pk], "next": "/findings/"}, follow=True)
    assert list(risk.findings.all()) == [same]
    assert "1 finding linked" in response.content.decode() and "1 skipped" in response.content.decode()


def test_bulk_link_to_risk_needs_a_known_ref(client, engineer, risk):
    f = make_finding(risk.system)
    client.force_login(engineer)
    body = client.post(reverse("findings:bulk"), {"action": "link_risk", "risk": "", "ids": [f.pk]}, follow=True).content.decode()
    assert "Give the risk" in body
    body = client.post(reverse("findings:bulk"), {"action": "link_risk", "risk": "RISK-9999", "ids": [f.pk]}, follow=True).content.decode()
    assert "No risk" in body and not risk.findings.exists()


def test_bulk_create_risk_redirects_prefilled(client, engineer, system):
    f1, f2 = make_finding(system), make_finding(system)
    client.force_login(engineer)
    response = client.post(reverse("findings:bulk"), {"action": "create_risk", "ids": [f1.pk, f2.pk]})
    assert response.status_code == 302
    assert response.url.startswith(NEW) and f"system={system.slug}" in response.url
    assert f"findings={f1.pk}%2C{f2.pk}" in response.url or f"findings={f2.pk}%2C{f1.pk}" in response.url
    assert client.get(response.url).status_code == 200
