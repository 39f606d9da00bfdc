"""Changing one's own password: the current one, the new one twice (Django's validators), audited; other sessions
end, this one stays; wrong current passwords are throttled like sign-ins."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from governance.accounts.models import Role, User
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


# --- a password an admin chose is changed at first sign-in ------------------------------------------------------

def _admin_creates(client, admin_user, mode="generate", **extra):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user-create"), {
        "email": "new.person@example.com", "full_name": "New Person", "roles": [Role.ENGINEER],
        "password_mode": mode, **extra})
    assert response.status_code in (200, 302)
    return User.objects.get(email="new.person@example.com"), response


def test_a_generated_password_must_be_changed_at_first_sign_in(client, admin_user):
    user, response = _admin_creates(client, admin_user)
    generated = response.context["one_time_password"]
    assert user.must_change_password
    person = signed_in(user.email, generated)
    # every page sends them to the change page, returning to where they were going afterwards
    for path in (reverse("dashboard:home"), reverse("inventory:list"), reverse("accounts:profile"),
                 reverse("api-docs")):
        response = person.get(path)
        assert response.status_code == 302, path
        assert response.url == f"{CHANGE}?next={quote(path, safe='')}", path
    assert person.post(reverse("inventory:create"), {}).url == CHANGE  # writes too, without a next
    page = person.get(CHANGE)
    assert page.status_code == 200 and "An administrator set your password" in page.content.decode()
    response = person.post(CHANGE, {"old_password": generated, "new_password1": NEW, "new_password2": NEW,
                                    "next": reverse("inventory:list")})
    assert response.status_code == 302 and response.url == reverse("inventory:list")
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password(NEW)
    assert person.get(reverse("inventory:list")).status_code == 200
    assert AuditEvent.objects.get(action="user.password_change").after["was_required"] is True


def test_a_password_typed_by_an_admin_must_be_changed_too(client, admin_user):
    typed = "Harbour-peony-31-cobalt"
    user, _ = _admin_creates(client, admin_user, mode="set", password1=typed, password2=typed)
    assert user.must_change_password
    assert AuditEvent.objects.get(action="user.create").after["must_change_password"] is True
    assert signed_in(user.email, typed).get(reverse("risks:list")).url.startswith(CHANGE)


def test_the_step_leaves_sign_out_static_files_and_open_pages_alone(engineer):
    engineer.must_change_password = True
    engineer.save()
    person = signed_in(engineer.email)
    assert person.get(CHANGE).status_code == 200
    assert person.get(reverse("healthz")).status_code in (200, 503)
    assert person.get("/static/css/rampart.css").status_code in (200, 404)  # never a redirect to the change page
    assert person.get(reverse("accounts:login")).url.startswith(CHANGE)
    response = person.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response.url == LOGIN
    assert person.get(reverse("inventory:list")).url.startswith(LOGIN)


def test_htmx_requests_are_sent_to_the_change_page_whole(engineer):
    engineer.must_change_password = True
    engineer.save()
    response = signed_in(engineer.email).get(reverse("findings:queue"), headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Redirect"] == CHANGE


def test_api_tokens_are_unaffected_but_the_session_api_says_why(engineer):
    engineer.must_change_password = True
    engineer.save()
    _, token = api_token_create(user=engineer, name="ci")
    assert Client().get(reverse("api-system-list"), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = signed_in(engineer.email).get(reverse("api-system-list"))
    assert response.status_code == 403 and "Change your password first" in response.json()["detail"]


def test_an_admin_requires_a_change_keeping_the_password(client, admin_user, engineer):
    person = signed_in(engineer.email)
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user-password", args=[engineer.pk]), {"password_mode": "require"})
    assert response.status_code == 302
    engineer.refresh_from_db()
    assert engineer.must_change_password and engineer.check_password(PASSWORD)
    event = AuditEvent.objects.get(action="user.password_change_required")
    assert event.actor_id == admin_user.pk and event.object_id == str(engineer.pk)
    # their open session is not ended, but it can do nothing but change the password
    assert person.get(reverse("inventory:list")).url.startswith(CHANGE)
    page = client.get(reverse("accounts:user-edit", args=[engineer.pk])).content.decode()
    assert "must be changed" in page
    assert "must change password" in client.get(reverse("accounts:users")).content.decode()


def test_an_admin_reset_flags_the_person_but_not_an_admin_resetting_their_own(client, admin_user, engineer):
    client.force_login(admin_user)
    client.post(reverse("accounts:user-password", args=[engineer.pk]), {"password_mode": "generate"})
    engineer.refresh_from_db()
    assert engineer.must_change_password
    assert AuditEvent.objects.filter(action="user.password_reset").last().after["must_change_password"] is True
    typed = "Harbour-peony-31-cobalt"
    client.post(reverse("accounts:user-password", args=[admin_user.pk]),
                {"password_mode": "set", "password1": typed, "password2": typed})
    admin_user.refresh_from_db()
    assert not admin_user.must_change_password
    assert client.get(reverse("inventory:list")).status_code == 200


def test_the_step_costs_no_query(client, engineer, django_assert_max_num_queries):
    """The flag is on the user row the session loads anyway."""
    client.force_login(engineer)
    client.get(reverse("accounts:profile"))
    with django_assert_max_num_queries(6):
        assert client.get(reverse("accounts:password-change")).status_code == 200
