"""Registering an AI system: who may, who becomes the owner, field-by-field errors, nothing half-saved."""
import pytest
from django.urls import reverse
from django.utils.html import escape

from governance.audit.models import AuditEvent
from governance.inventory.models import AISystem
from governance.rmf.models import RmfAssessment
from tests.inventory.conftest import form_data

pytestmark = pytest.mark.django_db

URL = reverse("inventory:create")


def test_anonymous_is_sent_to_login(client, counts):
    before = counts()
    response = client.post(URL, form_data())
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert before.unchanged()


def test_ciso_registers_a_system_for_a_product_owner(client, ciso, owner):
    client.force_login(ciso)
    assert client.get(URL).status_code == 200
    response = client.post(URL, form_data(business_owner=owner.pk, technical_owner=ciso.pk, uses_generative_ai="on"))
    system = AISystem.objects.get(slug="claims-triage")
    assert response.status_code == 302 and response.url == system.get_absolute_url()
    assert system.business_owner == owner and system.technical_owner == ciso
    assert system.uses_generative_ai and system.data_categories == ["pii"]
    assert system.rmf_version == "1.0"
    assert RmfAssessment.objects.filter(system=system).count() == 72
    event = AuditEvent.objects.get(action="system.create", object_id=str(system.pk))
    assert event.actor == ciso and event.system == system and event.before is None
    assert event.after["name"] == "Claims Triage" and event.after["business_owner_id"] == owner.pk


def test_admin_may_register(client, admin_user, owner):
    client.force_login(admin_user)
    response = client.post(URL, form_data(business_owner=owner.pk))
    assert response.status_code == 302
    assert AISystem.objects.get(slug="claims-triage").business_owner == owner


def test_product_owner_becomes_the_owner(client, owner, other_owner):
    client.force_login(owner)
    page = client.get(URL).content.decode()
    assert 'name="business_owner"' in page and "disabled" in page.split('name="business_owner"')[1].split(">")[0]
    response = client.post(URL, form_data(business_owner=other_owner.pk, technical_owner=other_owner.pk))
    assert response.status_code == 302
    system = AISystem.objects.get(slug="claims-triage")
    assert system.business_owner == owner  # the posted owner was ignored
    assert system.technical_owner is None
    assert AuditEvent.objects.get(action="system.create").actor == owner


@pytest.mark.parametrize("role", ["engineer", "facilitator", "nobody"])
def test_roles_without_create_get_403(client, role, request, owner, counts):
    client.force_login(request.getfixturevalue(role))
    before = counts()
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data(business_owner=owner.pk)).status_code == 403
    assert before.unchanged()


def test_slug_is_derived_from_the_name(client, ciso, owner):
    client.force_login(ciso)
    client.post(URL, form_data(business_owner=owner.pk, name="Loan Advisor ✓ v2", slug=""))
    assert AISystem.objects.filter(slug="loan-advisor-v2").exists()


def _refused(client, counts, data, field, message):
    before = counts()
    response = client.post(URL, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(message in e for e in errors[field]), errors[field]
    body = response.content.decode()
    assert "nothing was saved" in body
    assert any(escape(e) in body for e in errors[field])  # shown next to its field
    assert before.unchanged()
    return errors


def test_missing_name_and_purpose(client, ciso, owner, counts):
    client.force_login(ciso)
    errors = _refused(client, counts, form_data(business_owner=owner.pk, name="", purpose="", slug="x"), "name",
                      "This field is required.")
    assert errors["purpose"] == ["This field is required."]


def test_missing_business_owner_for_ciso(client, ciso, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(), "business_owner", "This field is required.")


def test_business_owner_must_be_a_product_owner(client, ciso, engineer, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(business_owner=engineer.pk), "business_owner", "Select a valid choice")


def test_duplicate_slug(client, ciso, owner, system, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(business_owner=owner.pk, slug=system.slug), "slug", "is already used")


def test_duplicate_derived_slug(client, ciso, owner, system, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(business_owner=owner.pk, name=system.name, slug=""), "slug", "is already used")


def test_generated_code_needs_isolation(client, ciso, owner, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(business_owner=owner.pk, executes_generated_code="on",
                                       code_execution_isolation="   "),
             "code_execution_isolation", "Describe how generated code is isolated")


def test_third_party_api_needs_provider(client, ciso, owner, counts):
    client.force_login(ciso)
    _refused(client, counts, form_data(business_owner=owner.pk, design_approach="third_party_api"),
             "third_party_provider", "Name the provider")


def test_bad_choices(client, ciso, owner, counts):
    client.force_login(ciso)
    errors = _refused(client, counts, form_data(business_owner=owner.pk, risk_tier="extreme", data_categories=["dna"],
                                                slug="Not A Slug!"),
                      "risk_tier", "Select a valid choice")
    assert "data_categories" in errors and "slug" in errors


def test_several_errors_at_once_each_on_its_field(client, ciso, owner, counts):
    client.force_login(ciso)
    before = counts()
    response = client.post(URL, form_data(business_owner=owner.pk, purpose="", executes_generated_code="on",
                                          design_approach="third_party_api"))
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"purpose", "code_execution_isolation", "third_party_provider"}
    assert response.content.decode().count('class="field has-error') == 3
    assert before.unchanged()


def test_product_owner_errors_keep_ownership_locked(client, owner, counts):
    client.force_login(owner)
    before = counts()
    response = client.post(URL, form_data(name=""))
    assert response.status_code == 400 and list(response.context["form"].errors) == ["name"]
    assert before.unchanged()
