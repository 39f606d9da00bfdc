"""Models and datasets registered under a system: same rules as editing the system, audited, validated."""
import pytest
from django.urls import reverse
from django.utils.html import escape

from governance.audit.models import AuditEvent
from governance.inventory import services
from governance.inventory.models import AIModel, Dataset

pytestmark = pytest.mark.django_db

SHA = "a" * 64
MODEL = {"name": "llama-guard", "version": "3", "format": "safetensors",
         "source_uri": "https://huggingface.co/meta-llama/Llama-Guard-3-8B", "sha256": SHA.upper(),
         "provider": "Meta", "licence": "Llama 3.1"}
DATASET = {"name": "tickets-2024", "source_uri": "s3://support/tickets-2024", "licence": "internal",
           "contains_pii": "on", "provenance_documented": "on"}


def add_model(system):
    return reverse("inventory:model-add", args=[system.slug])


def add_dataset(system):
    return reverse("inventory:dataset-add", args=[system.slug])


def last_event():
    return AuditEvent.objects.order_by("-seq").first()


@pytest.mark.parametrize("role", ["ciso", "admin_user", "owner", "engineer"])
def test_allowed_roles_register_and_remove(client, role, request, system):
    user = request.getfixturevalue(role)
    client.force_login(user)

    response = client.post(add_model(system), MODEL)
    assert response.status_code == 302 and response.url == system.get_absolute_url()
    model = AIModel.objects.get(system=system)
    assert model.sha256 == SHA and model.format == "safetensors"  # sha256 normalised to lower case
    event = last_event()
    assert (event.action, event.actor, event.system) == ("model.register", user, system)
    assert event.before is None and event.after["name"] == "llama-guard" and event.after["sha256"] == SHA

    response = client.post(add_dataset(system), DATASET)
    assert response.status_code == 302
    dataset = Dataset.objects.get(system=system)
    assert dataset.contains_pii and dataset.provenance_documented
    assert last_event().action == "dataset.register" and last_event().after["name"] == "tickets-2024"

    response = client.post(reverse("inventory:model-remove", args=[system.slug, model.pk]))
    assert response.status_code == 302 and not AIModel.objects.filter(pk=model.pk).exists()
    event = last_event()
    assert event.action == "model.remove" and event.before["name"] == "llama-guard" and event.after is None

    response = client.post(reverse("inventory:dataset-remove", args=[system.slug, dataset.pk]))
    assert response.status_code == 302 and not Dataset.objects.filter(pk=dataset.pk).exists()
    assert last_event().action == "dataset.remove" and last_event().before["name"] == "tickets-2024"


@pytest.fixture
def components(system, other_system, ciso):
    """One model and one dataset under each system."""
    made = {}
    for s in (system, other_system):
        made[s.slug] = (
            services.model_register(actor=ciso, system=s, data={"name": "m", "version": "1"}),
            services.dataset_register(actor=ciso, system=s, data={"name": "d"}),
        )
    return made


def _all_writes_refused(client, target, model, dataset, counts, expected=403):
    before = counts()
    assert client.post(add_model(target), MODEL).status_code == expected
    assert client.post(add_dataset(target), DATASET).status_code == expected
    assert client.post(reverse("inventory:model-remove", args=[target.slug, model.pk])).status_code == expected
    assert client.post(reverse("inventory:dataset-remove", args=[target.slug, dataset.pk])).status_code == expected
    assert before.unchanged()


def test_owner_gets_403_on_someone_elses_system(client, owner, other_system, components, counts):
    client.force_login(owner)
    _all_writes_refused(client, other_system, *components[other_system.slug], counts)


@pytest.mark.parametrize("role", ["facilitator", "nobody"])
def test_read_only_roles_get_403(client, role, request, system, components, counts):
    client.force_login(request.getfixturevalue(role))
    _all_writes_refused(client, system, *components[system.slug], counts)


def test_archived_system_is_frozen(client, ciso, system, components, counts):
    services.system_archive(actor=ciso, system=system)
    client.force_login(ciso)
    _all_writes_refused(client, system, *components[system.slug], counts)


def test_removing_through_another_systems_address_is_404(client, ciso, system, other_system, components, counts):
    """A product owner must not reach another system's model by putting their own slug in the URL."""
    model, dataset = components[other_system.slug]
    client.force_login(ciso)
    before = counts()
    assert client.post(reverse("inventory:model-remove", args=[system.slug, model.pk])).status_code == 404
    assert client.post(reverse("inventory:dataset-remove", args=[system.slug, dataset.pk])).status_code == 404
    assert before.unchanged()


def test_get_is_not_allowed(client, ciso, system, components):
    client.force_login(ciso)
    model, dataset = components[system.slug]
    assert client.get(add_model(system)).status_code == 405
    assert client.get(reverse("inventory:model-remove", args=[system.slug, model.pk])).status_code == 405


def _refused(client, url, data, counts, field, message):
    before = counts()
    response = client.post(url, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in errors[field][0], errors
    body = response.content.decode()
    assert escape(errors[field][0]) in body and "nothing was saved" in body
    assert before.unchanged()


@pytest.mark.parametrize("sha, message", [
    ("abc", "64 hexadecimal characters"), ("z" * 64, "64 hexadecimal characters"),
    ("a" * 63, "64 hexadecimal characters"), ("a" * 65, "at most 64 characters"),
    ("javascript:alert(1)", "64 hexadecimal characters"),
])
def test_bad_sha256(client, engineer, system, counts, sha, message):
    client.force_login(engineer)
    _refused(client, add_model(system), {**MODEL, "sha256": sha}, counts, "sha256", message)


def test_duplicate_model_version(client, engineer, system, counts):
    client.force_login(engineer)
    client.post(add_model(system), MODEL)
    _refused(client, add_model(system), MODEL, counts, "__all__", "already registered")
    # another version of the same model is fine
    assert client.post(add_model(system), {**MODEL, "version": "4"}).status_code == 302


def test_same_model_under_another_system_is_fine(client, ciso, system, other_system):
    client.force_login(ciso)
    assert client.post(add_model(system), MODEL).status_code == 302
    assert client.post(add_model(other_system), MODEL).status_code == 302


def test_model_needs_a_name_and_a_known_format(client, engineer, system, counts):
    client.force_login(engineer)
    _refused(client, add_model(system), {**MODEL, "name": ""}, counts, "name", "required")
    _refused(client, add_model(system), {**MODEL, "format": "exe"}, counts, "format", "Select a valid choice")


def test_duplicate_dataset(client, engineer, system, counts):
    client.force_login(engineer)
    client.post(add_dataset(system), DATASET)
    _refused(client, add_dataset(system), {**DATASET, "name": " tickets-2024 "}, counts, "name", "already registered")


def test_components_show_on_the_system_page(client, owner, system):
    client.force_login(owner)
    client.post(add_model(system), {**MODEL, "format": "pickle"})
    client.post(add_dataset(system), DATASET)
    body = client.get(system.get_absolute_url()).content.decode()
    assert "llama-guard" in body and "tickets-2024" in body
    assert "Pickle-based formats can execute code" in body
    assert 'href="https://huggingface.co/meta-llama/Llama-Guard-3-8B"' in body
