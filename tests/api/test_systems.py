"""GET/POST /api/v1/systems/ and GET/PATCH /api/v1/systems/<slug>/: the same rules as the UI, on the server."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.test import APIClient

from governance.accounts.models import Role
from governance.audit.models import AuditEvent
from governance.inventory import services as inventory_services
from governance.inventory.models import AISystem
from governance.rmf.models import RmfAssessment
from tests.conftest import make_user, system_data

LIST = "/api/v1/systems/"


def detail(slug: str) -> str:
    return f"/api/v1/systems/{slug}/"


def new_system(owner_email: str, **overrides) -> dict:
    payload = {
        "name": "Claims Triage", "slug": "claims-triage", "purpose": "Routes insurance claims to adjusters.",
        "business_owner": owner_email, "lifecycle_stage": "build", "risk_tier": "medium",
        "deployment": "internal", "design_approach": "classical_ml", "data_categories": ["pii", "financial"],
    }
    payload.update(overrides)
    return payload


class Counts:
    """Rows that a rejected write must leave untouched."""

    def __init__(self):
        self.before = self.now()

    @staticmethod
    def now():
        audit = AuditEvent.objects.exclude(action__startswith="api_token.")  # making a test client writes one
        return AISystem.objects.count(), audit.count(), RmfAssessment.objects.count()

    def unchanged(self) -> bool:
        return self.now() == self.before


# --- reading ----------------------------------------------------------------------------------

def test_list_returns_paginated_systems(api_as, engineer, system, other_system):
    response = api_as(engineer).get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [s["slug"] for s in body["results"]] == ["fraud-scoring", "support-copilot"]
    copilot = body["results"][1]
    assert copilot["business_owner"] == "owner@example.com"
    assert copilot["technical_owner"] is None
    assert copilot["data_categories"] == ["pii"]
    assert copilot["archived"] is False
    assert copilot["url"] == "http://testserver/systems/support-copilot/"


@pytest.mark.parametrize("user_fixture", ["ciso", "owner", "other_owner", "engineer", "facilitator", "admin_user", "nobody"])
def test_every_logged_in_user_may_read(request, api_as, system, user_fixture):
    client = api_as(request.getfixturevalue(user_fixture))
    assert client.get(LIST).status_code == 200
    assert client.get(detail(system.slug)).json()["name"] == "Support Copilot"


def test_detail_of_unknown_slug_is_404(api_as, ciso):
    assert api_as(ciso).get(detail("no-such-system")).status_code == 404


def test_anonymous_gets_401(system):
    client = APIClient()
    assert client.get(LIST).status_code == 401
    assert client.get(detail(system.slug)).status_code == 401
    assert client.post(LIST, new_system("owner@example.com"), format="json").status_code == 401
    assert client.patch(detail(system.slug), {"name": "x"}, format="json").status_code == 401
    assert AISystem.objects.get(pk=system.pk).name == "Support Copilot"


def test_pagination_with_limit_and_offset(api_as, ciso, owner):
    for i in range(7):
        inventory_services.system_create(actor=ciso, data=system_data(owner, name=f"System {i}", slug=f"system-{i}"))
    client = api_as(ciso)
    first = client.get(LIST, {"limit": 3}).json()
    assert first["count"] == 7
    assert [s["slug"] for s in first["results"]] == ["system-0", "system-1", "system-2"]
    assert "offset=3" in first["next"] and first["previous"] is None
    last = client.get(LIST, {"limit": 3, "offset": 6}).json()
    assert [s["slug"] for s in last["results"]] == ["system-6"]
    assert last["next"] is None


def test_pagination_is_stable_when_names_tie(api_as, ciso, owner):
    for i in range(6):
        inventory_services.system_create(actor=ciso, data=system_data(owner, name="Same name", slug=f"same-{i}"))
    client = api_as(ciso)
    seen = []
    for offset in range(0, 6, 2):
        seen += [s["slug"] for s in client.get(LIST, {"limit": 2, "offset": offset}).json()["results"]]
    assert sorted(seen) == [f"same-{i}" for i in range(6)]


def test_page_size_is_capped(api_as, ciso, system):
    response = api_as(ciso).get(LIST, {"limit": 100000})
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_filters_q_stage_tier(api_as, ciso, owner):
    inventory_services.system_create(actor=ciso, data=system_data(owner, name="Alpha Chat", slug="alpha", lifecycle_stage="deploy", risk_tier="high"))
    inventory_services.system_create(actor=ciso, data=system_data(owner, name="Beta Chat", slug="beta", lifecycle_stage="operate", risk_tier="high"))
    inventory_services.system_create(actor=ciso, data=system_data(owner, name="Gamma Scorer", slug="gamma", lifecycle_stage="deploy", risk_tier="low",
                                                                  purpose="Scores loan applications."))
    client = api_as(ciso)

    def slugs(**params):
        response = client.get(LIST, params)
        assert response.status_code == 200
        return [s["slug"] for s in response.json()["results"]]

    assert slugs(q="chat") == ["alpha", "beta"]
    assert slugs(q="loan") == ["gamma"]
    assert slugs(stage="deploy") == ["alpha", "gamma"]
    assert slugs(tier="high") == ["alpha", "beta"]
    assert slugs(stage="deploy", tier="high") == ["alpha"]
    assert slugs(q="chat", stage="operate") == ["beta"]
    assert slugs(q="nothing matches this") == []


def test_unknown_filter_value_is_400(api_as, ciso, system):
    response = api_as(ciso).get(LIST, {"stage": "launched", "tier": "extreme"})
    assert response.status_code == 400
    assert set(response.json()) == {"stage", "tier"}


def test_archived_systems_are_listed_only_on_request(api_as, ciso, system, other_system):
    inventory_services.system_archive(actor=ciso, system=other_system)
    client = api_as(ciso)
    assert [s["slug"] for s in client.get(LIST).json()["results"]] == ["support-copilot"]
    archived = client.get(LIST, {"archived": "1"}).json()["results"]
    assert [(s["slug"], s["archived"]) for s in archived] == [("fraud-scoring", True)]


def test_list_query_count_does_not_grow_with_rows(api_as, ciso, owner, engineer, django_assert_max_num_queries):
    client = api_as(ciso)
    client.get(LIST)  # the token's first use writes last_used_at; keep that out of the count

    def make(n, start):
        for i in range(start, start + n):
            inventory_services.system_create(
                actor=ciso, data=system_data(owner, name=f"S{i:03}", slug=f"s-{i}", technical_owner=engineer)
            )

    make(3, 0)
    with django_assert_max_num_queries(6) as small:
        assert len(client.get(LIST).json()["results"]) == 3
    make(37, 3)
    with django_assert_max_num_queries(len(small.captured_queries)) :
        assert len(client.get(LIST).json()["results"]) == 40


def test_detail_query_count_is_small(api_as, ciso, system, django_assert_max_num_queries):
    client = api_as(ciso)
    client.get(detail(system.slug))
    with django_assert_max_num_queries(4):
        assert client.get(detail(system.slug)).status_code == 200


# --- creating ---------------------------------------------------------------------------------

def test_ciso_creates_system_for_any_owner(api_as, ciso, owner, engineer):
    response = api_as(ciso).post(LIST, new_system(owner.email, technical_owner=engineer.email), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "claims-triage" and body["business_owner"] == owner.email
    assert body["technical_owner"] == engineer.email
    system = AISystem.objects.get(slug="claims-triage")
    assert system.business_owner == owner and system.data_categories == ["pii", "financial"]
    assert system.assessments.count() == 72
    event = AuditEvent.objects.get(action="system.create", system=system)
    assert event.actor == ciso


def test_owner_creates_own_system(api_as, owner):
    response = api_as(owner).post(LIST, new_system(owner.email), format="json")
    assert response.status_code == 201, response.json()
    assert AISystem.objects.get(slug="claims-triage").business_owner == owner


def test_owner_cannot_create_system_for_someone_else(api_as, owner, other_owner, engineer):
    counts = Counts()
    client = api_as(owner)
    response = client.post(LIST, new_system(other_owner.email), format="json")
    assert response.status_code == 403
    response = client.post(LIST, new_system(owner.email, technical_owner=engineer.email), format="json")
    assert response.status_code == 403
    assert counts.unchanged()


@pytest.mark.parametrize("user_fixture", ["engineer", "facilitator", "nobody"])
def test_roles_without_create_permission_get_403(request, api_as, owner, user_fixture):
    counts = Counts()
    response = api_as(request.getfixturevalue(user_fixture)).post(LIST, new_system(owner.email), format="json")
    assert response.status_code == 403
    assert "cannot register" in response.json()["detail"]
    assert counts.unchanged()


def test_admin_creates_system(api_as, admin_user, owner):
    assert api_as(admin_user).post(LIST, new_system(owner.email), format="json").status_code == 201


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"lifecycle_stage": "launched"}, "lifecycle_stage", "not a valid choice"),
        ({"risk_tier": "extreme"}, "risk_tier", "not a valid choice"),
        ({"data_categories": ["pii", "horoscopes"]}, "data_categories", "not a valid choice"),
        ({"data_categories": "pii"}, "data_categories", "list"),
        ({"slug": "support-copilot"}, "slug", "already used"),
        ({"slug": "Not a slug!"}, "slug", "letters"),
        ({"executes_generated_code": True}, "code_execution_isolation", "isolated"),
        ({"executes_generated_code": True, "code_execution_isolation": "   "}, "code_execution_isolation", "isolated"),
        ({"business_owner": "ghost@example.com"}, "business_owner", "does not exist"),
        ({"technical_owner": "ghost@example.com"}, "technical_owner", "does not exist"),
        ({"design_approach": "third_party_api", "third_party_provider": ""}, "third_party_provider", "provider"),
        ({"name": ""}, "name", "blank"),
        ({"purpose": None}, "purpose", "null"),
    ],
)
def test_bad_input_gives_field_errors_and_saves_nothing(api_as, ciso, system, overrides, field, message):
    counts = Counts()
    response = api_as(ciso).post(LIST, new_system("owner@example.com", **overrides), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert message in str(errors[field]).lower() or message in str(errors[field])
    assert counts.unchanged()


def test_missing_fields_are_all_reported_at_once(api_as, ciso):
    counts = Counts()
    response = api_as(ciso).post(LIST, {}, format="json")
    assert response.status_code == 400
    assert {"name", "slug", "purpose", "business_owner"} <= set(response.json())
    assert counts.unchanged()


def test_several_bad_fields_are_reported_together(api_as, ciso, system):
    response = api_as(ciso).post(
        LIST, new_system("owner@example.com", slug="support-copilot", lifecycle_stage="launched",
                         data_categories=["horoscopes"]), format="json")
    assert response.status_code == 400
    assert {"slug", "lifecycle_stage", "data_categories"} <= set(response.json())


def test_malformed_json_is_400(api_as, ciso):
    counts = Counts()
    response = api_as(ciso).post(LIST, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert counts.unchanged()


def test_owner_email_is_matched_case_insensitively(api_as, ciso, owner):
    response = api_as(ciso).post(LIST, new_system("Owner@Example.COM"), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["business_owner"] == "owner@example.com"


def test_business_owner_must_hold_an_owner_role(api_as, ciso, engineer):
    counts = Counts()
    response = api_as(ciso).post(LIST, new_system(engineer.email), format="json")
    assert response.status_code == 400
    assert "business_owner" in response.json()
    assert counts.unchanged()


def test_read_only_fields_are_ignored_on_create(api_as, ciso, owner):
    response = api_as(ciso).post(LIST, new_system(owner.email, rmf_version="9.9", archived=True), format="json")
    assert response.status_code == 201
    system = AISystem.objects.get(slug="claims-triage")
    assert system.rmf_version != "9.9" and not system.is_archived


# --- updating ---------------------------------------------------------------------------------

def test_ciso_patches_any_field_including_ownership(api_as, ciso, system, other_owner, engineer):
    response = api_as(ciso).patch(
        detail(system.slug),
        {"risk_tier": "critical", "business_owner": other_owner.email, "technical_owner": engineer.email},
        format="json",
    )
    assert response.status_code == 200, response.json()
    system.refresh_from_db()
    assert (system.risk_tier, system.business_owner, system.technical_owner) == ("critical", other_owner, engineer)
    event = AuditEvent.objects.filter(action="system.update", system=system).get()
    assert event.actor == ciso and event.before["risk_tier"] == "high" and event.after["risk_tier"] == "critical"


def test_owner_patches_own_system(api_as, owner, system):
    response = api_as(owner).patch(detail(system.slug), {"lifecycle_stage": "deploy"}, format="json")
    assert response.status_code == 200
    assert response.json()["lifecycle_stage"] == "deploy"
    system.refresh_from_db()
    assert system.lifecycle_stage == "deploy"


def test_owner_cannot_patch_someone_elses_system(api_as, owner, other_system):
    counts = Counts()
    response = api_as(owner).patch(detail(other_system.slug), {"risk_tier": "low"}, format="json")
    assert response.status_code == 403
    other_system.refresh_from_db()
    assert other_system.risk_tier == "high"
    assert counts.unchanged()


def test_owner_cannot_hand_own_system_to_someone_else(api_as, owner, other_owner, system):
    counts = Counts()
    response = api_as(owner).patch(detail(system.slug), {"business_owner": other_owner.email}, format="json")
    assert response.status_code == 403
    system.refresh_from_db()
    assert system.business_owner == owner
    assert counts.unchanged()


def test_engineer_patches_technical_fields(api_as, engineer, system, other_system):
    client = api_as(engineer)
    for target in (system, other_system):
        response = client.patch(detail(target.slug), {"executes_generated_code": True,
                                                      "code_execution_isolation": "gVisor sandbox, no network"},
                                format="json")
        assert response.status_code == 200, response.json()
        target.refresh_from_db()
        assert target.executes_generated_code


def test_engineer_gets_403_when_changing_ownership(api_as, engineer, other_owner, system):
    counts = Counts()
    client = api_as(engineer)
    response = client.patch(detail(system.slug), {"business_owner": other_owner.email, "risk_tier": "low"}, format="json")
    assert response.status_code == 403
    assert "ownership" in response.json()["detail"]
    response = client.patch(detail(system.slug), {"technical_owner": engineer_email(engineer)}, format="json")
    assert response.status_code == 403
    system.refresh_from_db()
    assert (system.business_owner.email, system.risk_tier, system.technical_owner) == ("owner@example.com", "high", None)
    assert counts.unchanged()


def engineer_email(engineer):
    return engineer.email


def test_engineer_may_resend_unchanged_ownership(api_as, engineer, owner, system):
    response = api_as(engineer).patch(detail(system.slug), {"business_owner": owner.email, "risk_tier": "critical"},
                                      format="json")  # raising the tier is open to engineers (lowering is not)
    assert response.status_code == 200
    system.refresh_from_db()
    assert system.risk_tier == "critical"


@pytest.mark.parametrize("user_fixture", ["facilitator", "nobody"])
def test_read_only_roles_get_403_on_patch(request, api_as, system, user_fixture):
    counts = Counts()
    response = api_as(request.getfixturevalue(user_fixture)).patch(detail(system.slug), {"name": "Hijacked"}, format="json")
    assert response.status_code == 403
    system.refresh_from_db()
    assert system.name == "Support Copilot"
    assert counts.unchanged()


def test_put_and_delete_are_not_allowed(api_as, ciso, system):
    client = api_as(ciso)
    assert client.put(detail(system.slug), new_system("owner@example.com"), format="json").status_code == 405
    assert client.delete(detail(system.slug)).status_code == 405
    assert AISystem.objects.filter(pk=system.pk).exists()


def test_patch_validates_against_current_values(api_as, ciso, system):
    counts = Counts()
    response = api_as(ciso).patch(detail(system.slug), {"executes_generated_code": True}, format="json")
    assert response.status_code == 400
    assert "code_execution_isolation" in response.json()
    assert counts.unchanged()


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"lifecycle_stage": "launched"}, "lifecycle_stage"),
        ({"data_categories": ["pii", "horoscopes"]}, "data_categories"),
        ({"slug": "fraud-scoring"}, "slug"),
        ({"business_owner": "ghost@example.com"}, "business_owner"),
        ({"name": "x" * 500}, "name"),
    ],
)
def test_bad_patch_saves_nothing(api_as, ciso, system, other_system, payload, field):
    counts = Counts()
    response = api_as(ciso).patch(detail(system.slug), {**payload, "risk_tier": "low"}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    system.refresh_from_db()
    assert system.risk_tier == "high" and system.slug == "support-copilot"
    assert counts.unchanged()


def test_patch_slug_moves_the_system(api_as, ciso, system):
    response = api_as(ciso).patch(detail(system.slug), {"slug": "copilot-v2"}, format="json")
    assert response.status_code == 200
    assert response.json()["url"].endswith("/systems/copilot-v2/")
    assert api_as(ciso).get(detail("copilot-v2")).status_code == 200


def test_archived_system_cannot_be_patched(api_as, ciso, system):
    inventory_services.system_archive(actor=ciso, system=system)
    response = api_as(ciso).patch(detail(system.slug), {"risk_tier": "low"}, format="json")
    assert response.status_code == 403


def test_patch_without_changes_records_no_audit_event(api_as, ciso, system):
    counts = Counts()
    response = api_as(ciso).patch(detail(system.slug), {"risk_tier": "high"}, format="json")
    assert response.status_code == 200
    assert counts.unchanged()


def test_role_change_takes_effect_for_existing_token(api_as, owner, other_system):
    client = api_as(owner)
    assert client.patch(detail(other_system.slug), {"risk_tier": "low"}, format="json").status_code == 403
    owner.groups.add(Group.objects.get(name=Role.CISO))
    assert client.patch(detail(other_system.slug), {"risk_tier": "low"}, format="json").status_code == 200


# --- CSRF -------------------------------------------------------------------------------------

def test_session_post_without_csrf_token_is_rejected(ciso, owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ciso)
    counts = Counts()
    response = client.post(LIST, new_system(owner.email), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert counts.unchanged()


def test_session_patch_without_csrf_token_is_rejected(ciso, system):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ciso)
    response = client.patch(detail(system.slug), {"risk_tier": "low"}, format="json")
    assert response.status_code == 403
    system.refresh_from_db()
    assert system.risk_tier == "high"


def test_session_post_with_csrf_token_is_accepted(ciso, owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ciso)
    client.get(reverse("accounts:profile"))  # renders a form, so sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(LIST, new_system(owner.email), format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content


def test_session_get_needs_no_csrf_token(ciso, system):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ciso)
    assert client.get(LIST).status_code == 200


def test_bearer_post_needs_no_csrf_token(ciso, owner):
    from governance.accounts.services import api_token_create

    _, plain = api_token_create(user=ciso, name="ci")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.post(LIST, new_system(owner.email), format="json").status_code == 201
