"""Email + password login on every page, POST-only logout, CSRF enforced."""
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import PASSWORD
from tests.inventory.conftest import Counts, form_data

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
OPEN = {"accounts/login/", "accounts/login/code/", "healthz"}  # answer anonymous users themselves
API_PREFIXES = ("api/",)  # token or session auth; answer 401/403 instead of redirecting


def _paths(patterns=None, prefix=""):
    """Every route of the URL conf as a concrete path (converters filled with a plausible value)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _paths(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield re.sub(r"<(?:(\w+):)?\w+>", lambda m: "1" if m.group(1) == "int" else "x", route)


ALL_PATHS = sorted(set(_paths()))
PROTECTED = [p for p in ALL_PATHS if p not in OPEN and not p.startswith(API_PREFIXES)]


def test_the_walk_found_the_screens():
    for expected in ("", "systems/", "systems/x/edit/", "rmf/assessments/1/edit/", "rmf/portfolio/",
                     "accounts/logout/", "audit/"):
        assert expected in PROTECTED


@pytest.mark.parametrize("path", PROTECTED)
def test_every_page_redirects_anonymous_users_to_login(client, path):
    for method in (client.get, client.post):
        response = method("/" + path)
        assert response.status_code == 302, (method, path)
        assert response.url.startswith(LOGIN + "?next="), (method, path)


def test_api_answers_anonymous_users_without_a_redirect(client):
    response = client.get(reverse("api-system-list"))
    assert response.status_code in (401, 403)


def test_login_page_and_healthz_are_open(client):
    assert client.get(LOGIN).status_code == 200
    assert client.get("/healthz").status_code in (200, 503)


def test_email_login(client, owner):
    response = client.post(LOGIN, {"username": "owner@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("dashboard:home")
    assert client.get(reverse("inventory:list")).status_code == 200


def test_email_is_case_insensitive(client, owner):
    response = client.post(LOGIN, {"username": "  Owner@EXAMPLE.com ", "password": PASSWORD})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == owner.pk


def test_wrong_password_shows_an_error(client, owner):
    response = client.post(LOGIN, {"username": "owner@example.com", "password": "wrong-password"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'role="alert"' in body and "Please enter a correct email address and password" in body
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("inventory:list")).status_code == 302


def test_unknown_email_and_inactive_user_are_refused(client, owner):
    response = client.post(LOGIN, {"username": "nobody-here@example.com", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    owner.is_active = False
    owner.save()
    response = client.post(LOGIN, {"username": "owner@example.com", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_login_returns_to_next_but_never_off_site(client, owner):
    response = client.post(LOGIN + "?next=/systems/", {"username": "owner@example.com", "password": PASSWORD,
                                                       "next": "/systems/"})
    assert response.url == "/systems/"
    client.logout()
    response = client.post(LOGIN, {"username": "owner@example.com", "password": PASSWORD,
                                   "next": "https://evil.example.com/"})
    assert response.url == reverse("dashboard:home")


def test_logout_is_post_only(client, owner):
    client.force_login(owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.get(reverse("inventory:list")).status_code == 200  # still logged in
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response.url == LOGIN
    assert client.get(reverse("inventory:list")).status_code == 302


def test_csrf_is_enforced_on_writes(owner, ciso, system):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ciso)
    before = Counts()
    assert strict.post(reverse("inventory:create"), form_data(business_owner=owner.pk)).status_code == 403
    assert strict.post(reverse("inventory:archive", args=[system.slug])).status_code == 403
    assert strict.post(reverse("accounts:logout")).status_code == 403
    assert before.unchanged()
    # with the token from the form, the same post goes through
    strict.get(reverse("inventory:create"))
    token = strict.cookies["csrftoken"].value
    response = strict.post(reverse("inventory:create"), {**form_data(business_owner=owner.pk),
                                                         "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_csrf_is_enforced_on_login(owner):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(LOGIN, {"username": "owner@example.com", "password": PASSWORD})
    assert response.status_code == 403 and "_auth_user_id" not in strict.session


def test_htmx_posts_carry_the_token_in_a_header(owner, system):
    """base.html puts the token in hx-headers; a header-only token is accepted."""
    from governance.rmf.models import RmfAssessment

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    body = strict.get(reverse("rmf:profile", args=[system.slug])).content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', body).group(1)
    a = RmfAssessment.objects.filter(system=system).first()
    url = reverse("rmf:assessment-edit", args=[a.pk])
    assert strict.post(url, {"status": "gap"}, headers={"HX-Request": "true"}).status_code == 403
    assert strict.post(url, {"status": "gap"}, headers={"HX-Request": "true", "X-CSRFToken": token}).status_code == 200
