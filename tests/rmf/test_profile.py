"""The RMF profile of a system: 72 rows by function, inline htmx editing with permissions, constant queries."""
import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from governance.audit.models import AuditEvent
from governance.inventory import services as inventory_services
from governance.rmf import services
from governance.rmf.models import AssessmentStatus as S, RmfAssessment
from tests.conftest import system_data

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def profile_url(system):
    return reverse("rmf:profile", args=[system.slug])


def edit_url(a):
    return reverse("rmf:assessment-edit", args=[a.pk])


def assessment(system, ident="GOVERN 1.1") -> RmfAssessment:
    return RmfAssessment.objects.select_related("subcategory").get(system=system, subcategory__ident=ident)


FN_HEAD = r'<summary class="fn-head fn-\w+"><h2>(\w+)'


def kpis(body: str) -> dict[str, int]:
    """{function: percent} from the coverage card."""
    return {fn: int(pct) for pct, fn in re.findall(
        r'<div class="kpi-value">(\d+)%</div><div class="kpi-label">(\w+) ·', body)}


def fill(system, actor, n=72, status=S.IMPLEMENTED):
    for a in RmfAssessment.objects.filter(system=system).order_by("subcategory__position")[:n]:
        services.assessment_update(actor=actor, assessment=a, data={
            "status": status, "owner": actor, "evidence_notes": "Policy doc v3\nSigned by the board.",
            "evidence_links": "https://intranet.example.com/policy\nhttps://example.com/evidence",
            "last_reviewed": timezone.localdate(),
        })


def test_anonymous_is_sent_to_login(client, system):
    response = client.get(profile_url(system))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_all_72_subcategories_grouped_by_4_functions(client, facilitator, system):
    client.force_login(facilitator)
    body = client.get(profile_url(system)).content.decode()
    assert len(re.findall(r'<tr id="assessment-\d+"', body)) == 72
    assert re.findall(FN_HEAD, body) == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert len(re.findall(r'<summary class="cat-head">', body)) == 19
    # catalogue order within the page, with NIST's text
    idents = re.findall(r'<span class="mono strong">([A-Z]+ \d+\.\d+)</span>', body)
    assert idents[0] == "GOVERN 1.1" and idents[-1] == "MANAGE 4.3" and len(set(idents)) == 72
    assert "Legal and regulatory requirements involving AI are understood, managed, and documented." in body
    # GOVERN's rows come before MAP's heading
    assert body.index("GOVERN 6.2") < body.index('fn-map') < body.index("MAP 1.1")
    assert "read-only for your role" in body and 'hx-get="/rmf/assessments/' not in body


def test_status_filter(client, owner, ciso, system):
    services.assessment_update(actor=ciso, assessment=assessment(system, "MAP 1.1"), data={"status": S.GAP})
    services.assessment_update(actor=ciso, assessment=assessment(system, "MANAGE 1.1"), data={"status": S.GAP})
    client.force_login(owner)
    body = client.get(profile_url(system), {"status": "gap"}).content.decode()
    assert re.findall(r'<span class="mono strong">([A-Z]+ \d+\.\d+)</span>', body) == ["MAP 1.1", "MANAGE 1.1"]
    assert re.findall(FN_HEAD, body) == ["MAP", "MANAGE"]
    assert f'href="{profile_url(system)}?status=gap" aria-current="true">Gap <span class="n">2</span>' in body
    empty = client.get(profile_url(system), {"status": "implemented"}).content.decode()
    assert "No subcategories with this status." in empty
    # an unknown status shows everything
    assert len(re.findall(r'<tr id="assessment-\d+"', client.get(profile_url(system), {"status": "x"})
                          .content.decode())) == 72


# session, user, 2 permission lookups, system, function codes, coverage, profile rows, role names and sign-offs
# waiting (sidebar)
PROFILE_QUERIES = 10


def test_query_count_is_constant(client, ciso, system, other_system, django_assert_max_num_queries):
    fill(system, ciso)  # every row with an owner, notes, links, date
    client.force_login(ciso)
    counts = []
    for s in (other_system, system):
        with django_assert_max_num_queries(PROFILE_QUERIES) as ctx:
            response = client.get(profile_url(s))
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts == [PROFILE_QUERIES, PROFILE_QUERIES]
    assert kpis(response.content.decode()) == {"system": 100, "GOVERN": 100, "MAP": 100, "MEASURE": 100, "MANAGE": 100}


# --- inline editing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["ciso", "admin_user", "owner", "engineer"])
def test_allowed_roles_edit_inline(client, request, system, role):
    user = request.getfixturevalue(role)
    a = assessment(system)
    client.force_login(user)

    form = client.get(edit_url(a), headers=HTMX)
    assert form.status_code == 200
    body = form.content.decode()
    assert body.lstrip().startswith(f'<tr id="assessment-{a.pk}" class="editing">') and "<html" not in body
    assert f'hx-post="{edit_url(a)}"' in body and 'name="csrfmiddlewaretoken"' in body

    before_kpis = kpis(client.get(profile_url(system)).content.decode())
    response = client.post(edit_url(a), {
        "status": "implemented", "owner": user.pk, "evidence_notes": "AI policy §3",
        "evidence_links": "https://intranet.example.com/ai-policy\n\n", "last_reviewed": "2024-05-01",
    }, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    # the updated row ...
    row = body.split('<section class="card" id="coverage-card"')[0]
    assert f'<tr id="assessment-{a.pk}" class="status-implemented">' in row
    assert "AI policy §3" in row and 'href="https://intranet.example.com/ai-policy"' in row and "2024-05-01" in row
    # ... and the coverage card, swapped out of band, with the new percentage
    assert '<section class="card" id="coverage-card" hx-swap-oob="true">' in body
    after_kpis = kpis(body)
    assert before_kpis["GOVERN"] == 0 and after_kpis["GOVERN"] == round(100 / 19) == 5
    assert after_kpis["MAP"] == before_kpis["MAP"] == 0
    assert "GOVERN · 1/19 assessed" in body and 'data-figure="' in body

    a.refresh_from_db()
    assert (a.status, a.owner, a.evidence_links, a.last_reviewed) == (
        "implemented", user, "https://intranet.example.com/ai-policy", dt.date(2024, 5, 1))
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "rmf.assess" and event.actor == user and event.system == system
    assert event.object_repr == "Support Copilot · GOVERN 1.1"
    assert event.before["status"] == "not_assessed" and event.after["status"] == "implemented"
    assert event.after["last_reviewed"] == "2024-05-01"


@pytest.mark.parametrize("role", ["other_owner", "facilitator", "nobody"])
def test_other_roles_get_403(client, request, system, role):
    a = assessment(system)
    client.force_login(request.getfixturevalue(role))
    n = AuditEvent.objects.count()
    assert client.get(edit_url(a), headers=HTMX).status_code == 403
    assert client.post(edit_url(a), {"status": "implemented"}, headers=HTMX).status_code == 403
    a.refresh_from_db()
    assert a.status == "not_assessed" and AuditEvent.objects.count() == n


def test_archived_system_profile_is_read_only(client, ciso, system):
    inventory_services.system_archive(actor=ciso, system=system)
    client.force_login(ciso)
    assert client.post(edit_url(assessment(system)), {"status": "implemented"}, headers=HTMX).status_code == 403


def test_edit_links_only_for_those_who_may(client, owner, other_owner, system):
    client.force_login(owner)
    assert client.get(profile_url(system)).content.decode().count('hx-get="/rmf/assessments/') == 72
    client.force_login(other_owner)
    assert 'hx-get="/rmf/assessments/' not in client.get(profile_url(system)).content.decode()


@pytest.mark.parametrize("data, field, message", [
    ({"evidence_links": "javascript:alert(1)"}, "evidence_links", "is not an http(s) link"),
    ({"evidence_links": "https://ok.example.com\nftp://files.example.com/x"}, "evidence_links", "is not an http(s) link"),
    ({"last_reviewed": "2999-01-01"}, "last_reviewed", "cannot be in the future"),
    ({"last_reviewed": "yesterday"}, "last_reviewed", "Enter a valid date"),
    ({"status": "done"}, "status", "Select a valid choice"),
])
def test_bad_input_gives_400_with_the_error(client, engineer, system, data, field, message):
    a = assessment(system)
    client.force_login(engineer)
    n = AuditEvent.objects.count()
    response = client.post(edit_url(a), {"status": "implemented", "evidence_notes": "kept", **data}, headers=HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    assert escape(errors[field][0]) in body
    assert body.lstrip().startswith(f'<tr id="assessment-{a.pk}" class="editing">')
    assert 'hx-swap-oob' not in body
    assert "kept" in body  # what was typed is kept for correction
    assert 'href="javascript:' not in body
    a.refresh_from_db()
    assert a.status == "not_assessed" and a.evidence_notes == "" and AuditEvent.objects.count() == n


def test_today_is_a_valid_review_date(client, engineer, system):
    a = assessment(system)
    client.force_login(engineer)
    response = client.post(edit_url(a), {"status": "partial", "last_reviewed": timezone.localdate().isoformat()},
                           headers=HTMX)
    assert response.status_code == 200


def test_cancel_returns_the_read_only_row(client, engineer, system):
    a = assessment(system)
    client.force_login(engineer)
    body = client.get(reverse("rmf:assessment-row", args=[a.pk]), headers=HTMX).content.decode()
    assert body.lstrip().startswith(f'<tr id="assessment-{a.pk}" class="status-not_assessed">')


def test_unchanged_post_records_nothing(client, engineer, system):
    a = assessment(system)
    client.force_login(engineer)
    n = AuditEvent.objects.count()
    assert client.post(edit_url(a), {"status": "not_assessed"}, headers=HTMX).status_code == 200
    assert AuditEvent.objects.count() == n


def test_evidence_is_escaped(client, engineer, system):
    a = assessment(system)
    client.force_login(engineer)
    body = client.post(edit_url(a), {"status": "gap", "evidence_notes": "<script>alert(1)</script>"},
                       headers=HTMX).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_stored_non_http_links_are_never_live(client, ciso, system):
    """Links are checked by the form; the row must not trust rows written another way (service, import, seed)."""
    a = assessment(system)
    services.assessment_update(actor=ciso, assessment=a, data={
        "evidence_links": "javascript:alert(1)\n JAVASCRIPT:alert(2)\ndata:text/html,x\nhttps://ok.example.com/e"})
    client.force_login(ciso)
    body = client.get(profile_url(system)).content.decode()
    hrefs = re.findall(r'href="([^"]*)"', body)
    assert not [h for h in hrefs if not h.startswith(("/", "https://", "http://", "#", "?"))]
    assert 'href="https://ok.example.com/e"' in body
    assert "javascript:alert(1)" in body  # shown as text


def test_works_without_javascript(client, owner, system):
    """The Edit link is a real href: without htmx it gives a whole page, and saving goes back to the profile."""
    a = assessment(system)
    client.force_login(owner)
    page = client.get(edit_url(a))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<html" in body and f'action="{edit_url(a)}"' in body
    assert "HX-Request" in page["Vary"]
    response = client.post(edit_url(a), {"status": "partial"})
    assert response.status_code == 302
    assert response.url == f"{profile_url(system)}#assessment-{a.pk}"
    a.refresh_from_db()
    assert a.status == "partial"
    bad = client.post(edit_url(a), {"status": "gap", "last_reviewed": "2999-01-01"})
    assert bad.status_code == 400 and "<html" in bad.content.decode()
    assert "cannot be in the future" in bad.content.decode()
    cancel = client.get(reverse("rmf:assessment-row", args=[a.pk]))
    assert cancel.status_code == 302 and cancel.url == response.url


# --- portfolio ------------------------------------------------------------------------------------------------

# session, user, systems, coverage of all systems, function codes, role names, 2 permission lookups, sign-offs
# waiting (sidebar)
PORTFOLIO_QUERIES = 9


def test_portfolio_query_count_is_constant(client, ciso, owner, django_assert_max_num_queries):
    client.force_login(ciso)
    counts = []
    for total in (2, 10):
        while RmfAssessment.objects.values("system").distinct().count() < total:
            n = RmfAssessment.objects.values("system").distinct().count()
            s = inventory_services.system_create(actor=ciso, data=system_data(owner, name=f"P{n:02d}", slug=f"p{n}"))
            fill(s, ciso, n=n * 3, status=S.PARTIAL)
        with django_assert_max_num_queries(PORTFOLIO_QUERIES) as ctx:
            response = client.get(reverse("rmf:portfolio"))
        assert response.status_code == 200
        assert len(re.findall(r'<a class="strong" href="/rmf/systems/', response.content.decode())) == total
        counts.append(len(ctx.captured_queries))
    assert counts == [PORTFOLIO_QUERIES, PORTFOLIO_QUERIES]


def test_portfolio_shows_percent_per_function(client, facilitator, ciso, system, other_system):
    for ident in ("GOVERN 1.1", "GOVERN 1.2"):
        services.assessment_update(actor=ciso, assessment=assessment(system, ident), data={"status": S.IMPLEMENTED})
    inventory_services.system_archive(actor=ciso, system=other_system)
    client.force_login(facilitator)
    body = client.get(reverse("rmf:portfolio")).content.decode()
    assert "Support Copilot" in body and "Fraud Scoring" not in body  # archived systems are left out
    assert f'<span class="pct low">{round(200 / 19)}%</span><div class="muted small">2/19 assessed</div>' in body
    assert 'data-figure="' in body


# --- grouped, collapsible, counted ------------------------------------------------------------------------------

def test_groups_are_collapsible_with_their_counts(client, owner, ciso, system):
    services.assessment_update(actor=ciso, assessment=assessment(system, "GOVERN 1.1"), data={"status": S.IMPLEMENTED})
    services.assessment_update(actor=ciso, assessment=assessment(system, "GOVERN 1.2"), data={"status": S.PARTIAL})
    services.assessment_update(actor=ciso, assessment=assessment(system, "GOVERN 2.1"), data={"status": S.GAP})
    services.assessment_update(actor=ciso, assessment=assessment(system, "MAP 1.1"), data={"status": S.NOT_APPLICABLE})
    client.force_login(owner)
    body = client.get(profile_url(system)).content.decode()
    # functions open, categories closed: the page starts as 19 category lines, not 72 rows
    assert len(re.findall(r'<details class="card flush rmf-function" id="fn-\w+" open>', body)) == 4
    assert len(re.findall(r'<details class="rmf-category" id="cat-\d+" >', body)) == 19
    govern = re.search(r'id="counts-fn-GOVERN" >(.*?)</span></span>', body).group(1)
    assert re.findall(r'(\d+) ([a-z ]+)', govern) == [("1", "implemented"), ("1", "partial"), ("1", "gap"),
                                                      ("16", "not assessed")]
    govern_1 = re.search(r'id="counts-cat-govern-1" >(.*?)</span></span>', body).group(1)
    assert re.findall(r'(\d+) ([a-z ]+)', govern_1) == [("1", "implemented"), ("1", "partial"), ("5", "not assessed")]
    assert "1 not applicable" in re.search(r'id="counts-fn-MAP" >(.*?)</span></span>', body).group(1)
    # the filter: a link per status with the system's count (the coverage card's), the current one marked
    links = re.findall(r'<a class="status-link[^"]*" href="([^"]+)"[^>]*>([^<]+) <span class="n">(\d+)</span>', body)
    assert [(label.strip(), n) for _, label, n in links] == [
        ("All", "72"), ("Implemented", "1"), ("Partial", "1"), ("Gap", "1"), ("Not assessed", "68"), ("Not applicable", "1")]
    assert links[3][0] == f"{profile_url(system)}?status=gap"
    assert 'aria-current="true">All' in body


def test_a_filtered_page_opens_its_groups_and_keeps_the_counts_of_all(client, owner, ciso, system):
    services.assessment_update(actor=ciso, assessment=assessment(system, "GOVERN 1.1"), data={"status": S.GAP})
    client.force_login(owner)
    body = client.get(profile_url(system), {"status": "gap"}).content.decode()
    assert re.findall(r'<details class="rmf-category" id="cat-\d+" (\w*)>', body) == ["open"]
    assert 'id="counts-cat-govern-1" ><span class="status-pill gap">1 gap</span><span class="status-pill not_assessed">6 not assessed' in body
    assert "Only the subcategories with status “Gap” are listed" in body


def test_an_inline_edit_updates_the_counts_in_place(client, engineer, system):
    a = assessment(system, "MEASURE 2.7")
    client.force_login(engineer)
    response = client.post(edit_url(a), {"status": "gap"}, headers={
        **HTMX, "HX-Current-URL": f"http://testserver{profile_url(system)}?status=not_assessed"})
    assert response.status_code == 200
    body = response.content.decode()
    assert '<span class="group-counts" id="counts-fn-MEASURE" hx-swap-oob="true"><span class="status-pill gap">1 gap</span>' in body
    assert '<span class="group-counts" id="counts-cat-measure-2" hx-swap-oob="true"><span class="status-pill gap">1 gap' in body
    assert '<nav class="card status-filter" id="status-filter" aria-label="Show subcategories by status" hx-swap-oob="true">' in body
    assert f'href="{profile_url(system)}?status=not_assessed" aria-current="true">Not assessed <span class="n">71</span>' in body
    assert '?status=gap">Gap <span class="n">1</span>' in body
