"""People management (Admin only): list, create, edit, deactivate, reset password; every change audited."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from governance.accounts.models import ApiToken, Role, User
from governance.accounts.services import api_token_create
from governance.audit.models import AuditEvent
from governance.inventory import services as inventory_services
from tests.conftest import PASSWORD, make_user, system_data

pytestmark = pytest.mark.django_db

USERS = reverse("accounts:users")
CREATE = reverse("accounts:user-create")
STRONG = "Lantern-ostrich-97-gravel"


def edit_url(user):
    return reverse("accounts:user-edit", args=[user.pk])


def password_url(user):
    return reverse("accounts:user-password", args=[user.pk])


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def _create(client, **overrides):
    data = {"email": "new.person@example.com", "full_name": "New Person", "roles": [Role.ENGINEER],
            "password_mode": "set", "password1": STRONG, "password2": STRONG}
    data.update(overrides)
    return client.post(CREATE, data)


def _edit(client, user, **overrides):
    data = {"full_name": user.full_name, "roles": sorted(user.role_names), "is_active": "on" if user.is_active else ""}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v != ""}
    return client.post(edit_url(user), data)


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _no_secrets(event, *secrets):
    text = json.dumps([event.before, event.after])
    for secret in secrets:
        assert secret not in text
    assert "pbkdf2" not in text and "md5$" not in text and "argon2" not in text


# --- who may -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.CISO, Role.PRODUCT_OWNER, Role.ENGINEER, Role.FACILITATOR, None])
def test_only_admins_manage_people(client, admin_user, role):
    user = make_user("someone@example.com", role)
    client.force_login(user)
    for url in (USERS, CREATE, edit_url(admin_user)):
        assert client.get(url).status_code == 403, url
    assert _create(client).status_code == 403
    assert client.post(edit_url(admin_user), {"full_name": "x", "roles": [Role.ENGINEER]}).status_code == 403
    assert client.post(password_url(admin_user), {"password_mode": "generate"}).status_code == 403
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert "People" not in client.get(reverse("dashboard:home")).content.decode()


def test_admin_gets_the_pages_and_the_nav_link(as_admin, owner):
    for url in (USERS, CREATE, edit_url(owner)):
        assert as_admin.get(url).status_code == 200, url
    assert f'href="{USERS}"' in as_admin.get(reverse("dashboard:home")).content.decode()


def test_anonymous_is_sent_to_login(client, owner):
    for url in (USERS, CREATE, edit_url(owner), password_url(owner)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login")), url


# --- list ----------------------------------------------------------------------------------------------------------

def test_list_shows_roles_status_and_owned_systems(as_admin, owner, engineer, system, other_system):
    archived = inventory_services.system_create(actor=owner, data=system_data(owner, name="Archived", slug="archived"))
    inventory_services.system_archive(actor=owner, system=archived)
    page = as_admin.get(USERS).context["page"]
    rows = {u.email: u for u in page}
    assert rows["owner@example.com"].owned_count == 1  # the archived system does not count
    assert rows["engineer@example.com"].owned_count == 0
    html = as_admin.get(USERS).content.decode()
    assert "owner@example.com" in html and "Product owner" in html and "Active" in html


def test_list_filters_by_role_and_searches(as_admin, owner, engineer, ciso):
    emails = lambda r: [u.email for u in r.context["page"]]  # noqa: E731
    assert emails(as_admin.get(USERS, {"role": Role.ENGINEER})) == ["engineer@example.com"]
    assert emails(as_admin.get(USERS, {"q": "OWNER"})) == ["owner@example.com"]
    engineer.full_name = "Grace Hopper"
    engineer.save()
    assert emails(as_admin.get(USERS, {"q": "hopper"})) == ["engineer@example.com"]
    assert emails(as_admin.get(USERS, {"role": "bogus"})) == sorted(User.objects.values_list("email", flat=True))
    partial = as_admin.get(USERS, {"role": Role.CISO}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    assert "ciso@example.com" in partial.content.decode()


def _many_users(n, prefix, actor):
    """n people, each with two roles; every third one owns a system."""
    groups = list(Group.objects.order_by("name"))
    for i in range(n):
        user = make_user(f"{prefix}{i:03}@example.com", groups[i % len(groups)].name)
        user.groups.add(groups[(i + 1) % len(groups)])
        if i % 3 == 0:
            inventory_services.system_create(actor=actor, data=system_data(user, name=f"{prefix} {i}", slug=f"{prefix}-{i}"))


def test_list_query_count_does_not_grow_with_users(as_admin, admin_user, django_assert_max_num_queries):
    _many_users(3, "few", admin_user)
    with django_assert_max_num_queries(8) as small:  # session, user, roles, 2× permissions, count, page, groups
        assert len(as_admin.get(USERS).context["page"]) == 4
    _many_users(40, "many", admin_user)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(as_admin.get(USERS).context["page"]) == 44


# --- create --------------------------------------------------------------------------------------------------------

def test_create_with_a_typed_password(as_admin, admin_user):
    response = _create(as_admin, email="New.Person@Example.COM", roles=[Role.ENGINEER, Role.FACILITATOR])
    user = User.objects.get(email="new.person@example.com")
    assert response.status_code == 302 and response.url == edit_url(user)
    assert user.full_name == "New Person" and user.is_active
    assert user.role_names == {Role.ENGINEER, Role.FACILITATOR}
    assert Client().login(username="NEW.person@example.com", password=STRONG)
    [event] = _events("user.create")
    assert event.actor == admin_user and event.object_id == str(user.pk)
    assert event.after["roles"] == [Role.ENGINEER, Role.FACILITATOR] and event.after["password"] == "set by admin"
    _no_secrets(event, STRONG, user.password)


def test_create_with_a_generated_password_shows_it_once(as_admin):
    response = _create(as_admin, password_mode="generate", password1="", password2="")
    assert response.status_code == 200
    plain = response.context["one_time_password"]
    assert plain and plain in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    user = User.objects.get(email="new.person@example.com")
    assert Client().login(username=user.email, password=plain)
    assert plain not in as_admin.get(edit_url(user)).content.decode()  # not shown again
    [event] = _events("user.create")
    assert event.after["password"] == "generated"
    _no_secrets(event, plain, user.password)


@pytest.mark.parametrize("overrides, field", [
    ({"email": "OWNER@example.com"}, "email"),  # taken, in another case
    ({"email": "not-an-address"}, "email"),
    ({"roles": []}, "roles"),
    ({"full_name": ""}, "full_name"),
    ({"password1": "password123", "password2": "password123"}, "password1"),  # common
    ({"password1": "Xy-7", "password2": "Xy-7"}, "password1"),  # short
    ({"password1": "newperson-example", "password2": "newperson-example"}, "password1"),  # like the email
    ({"password2": "something-else-42"}, "password2"),
    ({"password1": "", "password2": ""}, "password1"),
])
def test_create_validation_errors_save_nothing(as_admin, owner, overrides, field):
    users, events = User.objects.count(), AuditEvent.objects.count()
    response = _create(as_admin, **overrides)
    assert response.status_code == 400
    assert field in response.context["form"].errors, response.context["form"].errors
    assert "nothing was saved" in response.content.decode()
    assert User.objects.count() == users and AuditEvent.objects.count() == events


def test_duplicate_email_message(as_admin, owner):
    response = _create(as_admin, email="Owner@Example.com")
    assert response.context["form"].errors["email"] == ["Someone already signs in with this address."]


# --- edit ----------------------------------------------------------------------------------------------------------

def test_edit_name_and_roles(as_admin, admin_user, engineer):
    response = _edit(as_admin, engineer, full_name="Grace Hopper", roles=[Role.CISO])
    assert response.status_code == 302
    engineer = User.objects.get(pk=engineer.pk)
    assert engineer.full_name == "Grace Hopper" and engineer.role_names == {Role.CISO}
    [event] = _events("user.update")
    assert event.actor == admin_user
    assert event.before == {"full_name": "Engineer", "roles": [Role.ENGINEER]}
    assert event.after == {"full_name": "Grace Hopper", "roles": [Role.CISO]}


def test_edit_without_role_is_refused(as_admin, engineer):
    response = _edit(as_admin, engineer, roles=[], full_name="Changed")
    assert response.status_code == 400 and "roles" in response.context["form"].errors
    engineer.refresh_from_db()
    assert engineer.full_name == "Engineer" and User.objects.get(pk=engineer.pk).role_names == {Role.ENGINEER}
    assert not _events("user.update")


def test_saving_without_changes_records_nothing(as_admin, engineer):
    assert _edit(as_admin, engineer).status_code == 302
    assert not _events("user.update")


def test_deactivate_revokes_tokens_and_ends_sign_in(as_admin, admin_user, engineer):
    token, plain = api_token_create(user=engineer, name="ci")
    api_token_create(user=engineer, name="laptop")
    engineer_client = Client()
    engineer_client.force_login(engineer)
    response = _edit(as_admin, engineer, is_active="")
    assert response.status_code == 302
    engineer.refresh_from_db()
    assert not engineer.is_active
    assert not ApiToken.objects.filter(user=engineer, revoked_at__isnull=True).exists()
    [event] = _events("user.deactivate")
    assert event.actor == admin_user and event.before == {"is_active": True} and event.after == {"is_active": False}
    assert len(_events("api_token.revoke")) == 2
    assert not Client().login(username=engineer.email, password=PASSWORD)
    assert engineer_client.get(reverse("dashboard:home")).status_code == 302  # the open session is over
    api = Client().get(reverse("api-system-list"), headers={"Authorization": f"Bearer {plain}"})
    assert api.status_code == 401


def test_reactivate_is_an_update(as_admin, engineer):
    engineer.is_active = False
    engineer.save()
    assert _edit(as_admin, engineer, is_active="on").status_code == 302
    engineer.refresh_from_db()
    assert engineer.is_active
    [event] = _events("user.update")
    assert event.after == {"is_active": True}


def test_owner_of_active_systems_cannot_be_deactivated(as_admin, owner, system, ciso):
    second = inventory_services.system_create(actor=ciso, data=system_data(owner, name="Claims Triage", slug="claims"))
    archived = inventory_services.system_create(actor=ciso, data=system_data(owner, name="Old Bot", slug="old-bot"))
    inventory_services.system_archive(actor=ciso, system=archived)
    api_token_create(user=owner, name="ci")
    response = _edit(as_admin, owner, is_active="")
    assert response.status_code == 400
    [message] = response.context["form"].errors["is_active"]
    assert "Support Copilot" in message and "Claims Triage" in message and "Old Bot" not in message
    assert "Reassign" in message
    html = response.content.decode()
    assert second.get_absolute_url() in html and reverse("inventory:edit", args=["claims"]) in html
    owner.refresh_from_db()
    assert owner.is_active and ApiToken.objects.filter(user=owner, revoked_at__isnull=True).count() == 1
    assert not _events("user.deactivate")
    # once the systems have another owner, the deactivation goes through
    for s in (system, second):
        inventory_services.system_update(actor=ciso, system=s, data={"business_owner": ciso})
    assert _edit(as_admin, owner, is_active="").status_code == 302
    owner.refresh_from_db()
    assert not owner.is_active


def test_admin_cannot_lock_themselves_out(as_admin, admin_user):
    response = _edit(as_admin, admin_user, is_active="")
    assert response.status_code == 400
    assert response.context["form"].errors["is_active"] == ["You cannot deactivate yourself; ask another admin."]
    response = _edit(as_admin, admin_user, roles=[Role.CISO])
    assert response.status_code == 400
    assert "your own Admin role" in response.context["form"].errors["roles"][0]
    admin_user = User.objects.get(pk=admin_user.pk)
    assert admin_user.is_active and admin_user.role_names == {Role.ADMIN}
    assert not _events("user.update") and not _events("user.deactivate")
    # adding a role to oneself, or another admin's Admin role, is fine
    assert _edit(as_admin, admin_user, roles=[Role.ADMIN, Role.CISO]).status_code == 302
    other = make_user("admin2@example.com", Role.ADMIN)
    assert _edit(as_admin, other, roles=[Role.ENGINEER]).status_code == 302
    assert User.objects.get(pk=other.pk).role_names == {Role.ENGINEER}


def test_unknown_user_is_404(as_admin):
    assert as_admin.get(reverse("accounts:user-edit", args=[999999])).status_code == 404


# --- password reset ------------------------------------------------------------------------------------------------

def test_reset_with_a_typed_password(as_admin, admin_user, engineer):
    other_session = Client()
    other_session.force_login(engineer)
    response = as_admin.post(password_url(engineer), {"password_mode": "set", "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    assert Client().login(username=engineer.email, password=STRONG)
    assert not Client().login(username=engineer.email, password=PASSWORD)
    assert other_session.get(reverse("dashboard:home")).status_code == 302
    [event] = _events("user.password_reset")
    assert event.actor == admin_user and event.after == {"password": "set by admin", "must_change_password": True}
    engineer.refresh_from_db()
    _no_secrets(event, STRONG, engineer.password)


def test_reset_with_a_generated_password(as_admin, engineer):
    response = as_admin.post(password_url(engineer), {"password_mode": "generate"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    plain = response.context["one_time_password"]
    assert plain in response.content.decode()
    assert Client().login(username=engineer.email, password=plain)
    [event] = _events("user.password_reset")
    engineer.refresh_from_db()
    _no_secrets(event, plain, engineer.password)


def test_weak_reset_password_changes_nothing(as_admin, engineer):
    response = as_admin.post(password_url(engineer), {"password_mode": "set", "password1": "engineer1",
                                                      "password2": "engineer1"})
    assert response.status_code == 400
    assert response.context["password_form"].errors["password1"]
    assert "the password was not changed" in response.content.decode()
    assert Client().login(username=engineer.email, password=PASSWORD)
    assert not _events("user.password_reset")


def test_reset_own_password_keeps_the_admin_signed_in(as_admin, admin_user):
    assert as_admin.post(password_url(admin_user), {"password_mode": "set", "password1": STRONG,
                                                    "password2": STRONG}).status_code == 302
    assert as_admin.get(USERS).status_code == 200


def test_password_reset_refuses_get(as_admin, engineer):
    assert as_admin.get(password_url(engineer)).status_code == 405


def test_an_empty_post_is_a_validation_error(as_admin, engineer):
    assert as_admin.post(CREATE, {}).status_code == 400
    assert as_admin.post(edit_url(engineer), {}).status_code == 400
    assert User.objects.get(pk=engineer.pk).role_names == {Role.ENGINEER}
