"""Editing a system: owners edit their own, engineers the technical fields, only CISO/admin the ownership."""
import pytest
from django.urls import reverse
from django.utils.html import escape

from governance.audit.models import AuditEvent
from governance.inventory import services
from governance.inventory.models import AISystem
from tests.inventory.conftest import form_data

pytestmark = pytest.mark.django_db


def url(system):
    return reverse("inventory:edit", args=[system.slug])


def last_event():
    return AuditEvent.objects.order_by("-seq").first()


def field_tag(body: str, name: str) -> str:
    """The opening tag of the form control called `name`."""
    return body.split(f'name="{name}"')[1].split(">")[0]


def test_anonymous_is_sent_to_login(client, system):
    response = client.get(url(system))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_ciso_edits_everything_including_ownership(client, ciso, system, other_owner, engineer):
    old_owner = system.business_owner_id
    client.force_login(ciso)
    body = client.get(url(system)).content.decode()
    assert "disabled" not in field_tag(body, "business_owner")
    response = client.post(url(system), form_data(system, business_owner=other_owner.pk, technical_owner=engineer.pk,
                                                  risk_tier="critical"))
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.business_owner == other_owner and system.technical_owner == engineer
    assert system.risk_tier == "critical"
    event = last_event()
    assert event.action == "system.update" and event.actor == ciso and event.system == system
    assert event.before == {"business_owner_id": old_owner, "technical_owner_id": None, "risk_tier": "high"}
    assert event.after == {"business_owner_id": other_owner.pk, "technical_owner_id": engineer.pk,
                           "risk_tier": "critical"}


def test_owner_edits_own_system_but_not_its_ownership(client, owner, other_owner, system):
    client.force_login(owner)
    body = client.get(url(system)).content.decode()
    assert "disabled" in field_tag(body, "business_owner")
    assert "disabled" in field_tag(body, "technical_owner")
    response = client.post(url(system), form_data(system, business_owner=other_owner.pk, technical_owner=owner.pk,
                                                  purpose="Now also summarises tickets."))
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.business_owner == owner and system.technical_owner is None
    assert system.purpose == "Now also summarises tickets."
    event = last_event()
    assert event.actor == owner and set(event.after) == {"purpose"}
    assert event.before == {"purpose": "Drafts answers for support agents."}


def test_owner_gets_403_on_someone_elses_system(client, owner, other_system, counts):
    client.force_login(owner)
    before = counts()
    assert client.get(url(other_system)).status_code == 403
    assert client.post(url(other_system), form_data(other_system, name="Hijacked")).status_code == 403
    other_system.refresh_from_db()
    assert other_system.name == "Fraud Scoring"
    assert before.unchanged()


def test_engineer_edits_technical_fields_of_any_system_but_not_ownership(client, engineer, owner, other_owner,
                                                                         system, other_system):
    client.force_login(engineer)
    for target in (system, other_system):
        body = client.get(url(target)).content.decode()
        assert "disabled" in field_tag(body, "business_owner")
    response = client.post(url(other_system), form_data(
        other_system, business_owner=owner.pk, technical_owner=engineer.pk, design_approach="agent",
        executes_generated_code="on", code_execution_isolation="gVisor sandbox, no network, no secrets.",
    ))
    assert response.status_code == 302
    other_system.refresh_from_db()
    assert other_system.business_owner == other_owner  # unchanged
    assert other_system.technical_owner is None
    assert other_system.design_approach == "agent" and other_system.executes_generated_code
    event = last_event()
    assert event.actor == engineer
    assert "business_owner_id" not in event.after and "technical_owner_id" not in event.after
    assert event.after["design_approach"] == "agent"


@pytest.mark.parametrize("role", ["facilitator", "nobody"])
def test_read_only_roles_get_403(client, role, request, system, counts):
    client.force_login(request.getfixturevalue(role))
    before = counts()
    assert client.get(url(system)).status_code == 403
    assert client.post(url(system), form_data(system, name="Changed")).status_code == 403
    system.refresh_from_db()
    assert system.name == "Support Copilot" and before.unchanged()


@pytest.mark.parametrize("role", ["ciso", "owner", "engineer"])
def test_archived_systems_cannot_be_edited(client, role, request, system, ciso):
    services.system_archive(actor=ciso, system=system)
    client.force_login(request.getfixturevalue(role))
    assert client.get(url(system)).status_code == 403
    assert client.post(url(system), form_data(system, name="Changed")).status_code == 403


def test_unchanged_form_records_nothing(client, ciso, system):
    client.force_login(ciso)
    n = AuditEvent.objects.count()
    assert client.post(url(system), form_data(system)).status_code == 302
    assert AuditEvent.objects.count() == n


def test_slug_change_redirects_to_the_new_address(client, ciso, system):
    client.force_login(ciso)
    response = client.post(url(system), form_data(system, slug="support-copilot-v2"))
    assert response.status_code == 302 and response.url == "/systems/support-copilot-v2/"
    assert client.get(response.url).status_code == 200


@pytest.mark.parametrize("overrides, field, message", [
    ({"name": ""}, "name", "This field is required."),
    ({"purpose": ""}, "purpose", "This field is required."),
    ({"slug": "fraud-scoring"}, "slug", "is already used by another system"),
    ({"executes_generated_code": "on", "code_execution_isolation": ""}, "code_execution_isolation",
     "Describe how generated code is isolated"),
    ({"design_approach": "third_party_api", "third_party_provider": ""}, "third_party_provider", "Name the provider"),
    ({"lifecycle_stage": "sunset"}, "lifecycle_stage", "Select a valid choice"),
])
def test_bad_input_is_refused_field_by_field(client, ciso, system, other_system, counts, overrides, field, message):
    client.force_login(ciso)
    before = counts()
    response = client.post(url(system), form_data(system, risk_tier="low", **overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    body = response.content.decode()
    assert escape(errors[field][0]) in body and "nothing was saved" in body
    system.refresh_from_db()
    assert system.risk_tier == "high"  # the valid part of the post was not saved either
    assert before.unchanged()


def test_error_page_shows_the_saved_name_in_the_heading(client, ciso, system):
    client.force_login(ciso)
    response = client.post(url(system), form_data(system, name=""))
    assert response.status_code == 400
    assert "<h1>Edit Support Copilot</h1>" in response.content.decode()
    assert AISystem.objects.get(pk=system.pk).name == "Support Copilot"
