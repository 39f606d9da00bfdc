"""Archiving and restoring: CISO any system, a product owner their own, nobody else."""
import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.inventory import services

pytestmark = pytest.mark.django_db


def url(system):
    return reverse("inventory:archive", args=[system.slug])


def test_anonymous_is_sent_to_login(client, system):
    response = client.post(url(system))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    system.refresh_from_db()
    assert not system.is_archived


@pytest.mark.parametrize("role", ["ciso", "admin_user", "owner"])
def test_allowed_roles_archive_and_restore(client, role, request, system):
    user = request.getfixturevalue(role)
    client.force_login(user)
    response = client.post(url(system))
    assert response.status_code == 302 and response.url == system.get_absolute_url()
    system.refresh_from_db()
    assert system.is_archived
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "system.archive" and event.actor == user and event.system == system
    assert event.after["archived_at"] is not None

    response = client.post(url(system), {"restore": "1"})
    assert response.status_code == 302
    system.refresh_from_db()
    assert not system.is_archived
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "system.restore" and event.before["archived_at"] and event.after == {"archived_at": None}


def test_owner_cannot_archive_someone_elses_system(client, owner, other_system, counts):
    client.force_login(owner)
    before = counts()
    assert client.post(url(other_system)).status_code == 403
    other_system.refresh_from_db()
    assert not other_system.is_archived and before.unchanged()


@pytest.mark.parametrize("role", ["engineer", "facilitator", "nobody", "other_owner"])
def test_other_roles_get_403(client, role, request, system, ciso, counts):
    client.force_login(request.getfixturevalue(role))
    before = counts()
    assert client.post(url(system)).status_code == 403
    system.refresh_from_db()
    assert not system.is_archived
    services.system_archive(actor=ciso, system=system)
    before = counts()
    assert client.post(url(system), {"restore": "1"}).status_code == 403
    system.refresh_from_db()
    assert system.is_archived and before.unchanged()


def test_get_is_not_allowed(client, ciso, system):
    client.force_login(ciso)
    assert client.get(url(system)).status_code == 405
    system.refresh_from_db()
    assert not system.is_archived


def test_archiving_twice_records_once(client, ciso, system):
    client.force_login(ciso)
    client.post(url(system))
    client.post(url(system))
    assert AuditEvent.objects.filter(action="system.archive").count() == 1


def test_archived_system_leaves_the_list_but_keeps_its_page(client, ciso, system):
    client.force_login(ciso)
    client.post(url(system), follow=True)  # consume the flash message
    assert "Support Copilot" not in client.get(reverse("inventory:list")).content.decode()
    assert "Support Copilot" in client.get(reverse("inventory:list"), {"archived": "1"}).content.decode()
    detail = client.get(system.get_absolute_url()).content.decode()
    assert "Archived" in detail and "Restore" in detail


def test_buttons_follow_permissions(client, owner, engineer, system):
    client.force_login(owner)
    assert url(system) in client.get(system.get_absolute_url()).content.decode()
    client.force_login(engineer)
    assert url(system) not in client.get(system.get_absolute_url()).content.decode()
