"""Changing one's own password: the current one, the new one twice (Django's validators), audited; other sessions
end, this one stays; wrong current passwords are throttled like sign-ins."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from governance.accounts.services import api_token_create
from governance.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CHANGE = reverse("accounts:password-change")
LOGIN = reverse("accounts:login")
NEW = "Quartz-lagoon-58-violet"


def signed_in(email: str, password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post(LOGIN, {"username": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def _change(client, old=PASSWORD, new1=NEW, new2=NEW):
    return client.post(CHANGE, {"old_password": old, "new_password1": new1, "new_password2": new2})


def test_change_keeps_this_session_ends_the_others_and_is_audited(engineer):
    here, elsewhere = signed_in(engineer.email), signed_in(engineer.email)
    assert here.get(CHANGE).status_code == 200
    response = _change(here)
    assert response.status_code == 302 and response.url == reverse("accounts:profile")
    assert "signed out everywhere else" in here.get(reverse("accounts:profile")).content.decode()
    assert here.get(reverse("inventory:list")).status_code == 200  # this browser stays signed in
    assert elsewhere.get(reverse("inventory:list")).status_code == 302  # the other one is signed out
    engineer.refresh_from_db()
    assert engineer.check_password(NEW)
    event = AuditEvent.objects.get(action="user.password_change")
    assert event.actor_id == engineer.pk and event.object_id == str(engineer.pk)
    assert NEW not in json.dumps(event.after) and PASSWORD not in json.dumps(event.after)
    # the new password signs in, the old one no longer does
    assert Client().post(LOGIN, {"username": engineer.email, "password": PASSWORD}).status_code == 200
    signed_in(engineer.email, NEW)


def test_api_tokens_keep_working_after_a_change(engineer):
    _, token = api_token_create(user=engineer, name="ci")
    _change(signed_in(engineer.email))
    response = Client().get(reverse("api-system-list"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("old, new1, new2, field, message", [
    ("wrong-password", NEW, NEW, "old_password", "entered incorrectly"),
    (PASSWORD, NEW, NEW + "x", "new_password2", "didn’t match"),
    (PASSWORD, "short", "short", "new_password2", "too short"),
    (PASSWORD, "password123", "password123", "new_password2", "too common"),
    (PASSWORD, "engineer@example", "engineer@example", "new_password2", "too similar"),
    (PASSWORD, PASSWORD, PASSWORD, "new_password2", "different from the current one"),
])
def test_refusals_say_why_and_change_nothing(client, engineer, old, new1, new2, field, message):
    client.force_login(engineer)
    response = _change(client, old, new1, new2)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert 'role="alert"' in response.content.decode()
    engineer.refresh_from_db()
    assert engineer.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="user.password_change").exists()


def test_wrong_current_passwords_are_throttled(client, engineer, settings):
    settings.RAMPART_LOGIN_MAX_FAILURES = 3
    client.force_login(engineer)
    for _ in range(3):
        assert _change(client, old="wrong-password").status_code == 400
    response = _change(client)  # even the right one is refused now
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    engineer.refresh_from_db()
    assert engineer.check_password(PASSWORD)
    # the same counter guards sign-in with this address
    assert Client().post(LOGIN, {"username": engineer.email, "password": PASSWORD}).status_code == 429


def test_the_form_is_csrf_protected(engineer):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(engineer)
    assert _change(strict).status_code == 403
    engineer.refresh_from_db()
    assert engineer.check_password(PASSWORD)
