"""API tokens: created once by command or UI, stored as a hash, sent as a bearer token, revocable; they expire, can be
rotated with a grace period, record their last use and warn their owner by e-mail before they end."""
from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from governance.accounts.models import ApiToken
from governance.accounts.services import api_token_create, api_token_revoke
from governance.audit.models import AuditEvent
from tests.conftest import system_data

SYSTEMS = "/api/v1/systems/"
TOKEN_RE = re.compile(r"rmp_[A-Za-z0-9_\-]{20,}")


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _create_by_command(email: str, name: str, *extra: str, scopes: str = "read") -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "--user", email, "--name", name, "--scopes", scopes, *extra, stdout=out,
                 stderr=err)
    return out.getvalue().strip(), err.getvalue()


def _row_values(token: ApiToken) -> list[str]:
    return [str(v) for v in ApiToken.objects.filter(pk=token.pk).values().get().values()]


# --- the management command -------------------------------------------------------------------

def test_command_prints_token_once_and_stores_only_its_sha256(owner):
    plain, err = _create_by_command(owner.email, "ci-pipeline")

    assert TOKEN_RE.fullmatch(plain), plain
    assert "cannot be shown again" in err
    token = ApiToken.objects.get(user=owner, name="ci-pipeline")
    assert token.token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert all(plain not in value for value in _row_values(token))
    assert plain.startswith(token.prefix) and len(token.prefix) < len(plain) // 2
    assert AuditEvent.objects.filter(action="api_token.create").count() == 1
    audit = AuditEvent.objects.get(action="api_token.create")
    assert plain not in str(audit.__dict__)


def test_command_token_authenticates_as_its_user(owner):
    plain, _ = _create_by_command(owner.email.upper(), "ci")
    response = _bearer(plain).get(SYSTEMS)
    assert response.status_code == 200


def test_command_rejects_unknown_user_and_duplicate_name(owner):
    with pytest.raises(CommandError, match="No user"):
        _create_by_command("ghost@example.com", "ci")
    _create_by_command(owner.email, "ci")
    with pytest.raises(CommandError, match="already has a token"):
        _create_by_command(owner.email, "ci")
    assert ApiToken.objects.count() == 1


def test_each_token_is_different(owner):
    a, _ = _create_by_command(owner.email, "a")
    b, _ = _create_by_command(owner.email, "b")
    assert a != b


# --- authentication with a bearer token -------------------------------------------------------

def test_bearer_token_acts_with_its_users_role(owner, facilitator, ciso):
    _, owner_plain = api_token_create(user=owner, name="owner")
    _, facilitator_plain = api_token_create(user=facilitator, name="fac")
    payload = {**system_data(owner, slug="via-token"), "business_owner": owner.email}

    assert _bearer(facilitator_plain).post(SYSTEMS, payload, format="json").status_code == 403
    response = _bearer(owner_plain).post(SYSTEMS, payload, format="json")
    assert response.status_code == 201, response.json()
    event = AuditEvent.objects.get(action="system.create")
    assert event.actor_id == owner.pk


def test_bearer_token_records_last_use(owner):
    token, plain = api_token_create(user=owner, name="ci")
    assert token.last_used_at is None
    _bearer(plain).get(SYSTEMS)
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize(
    "header, message",
    [
        ("Bearer rmp_not-a-real-token-at-all-000000000", "Invalid API token."),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer two parts", "Malformed Authorization header"),
    ],
)
def test_unknown_or_malformed_token_is_401_with_clear_message(db, header, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(SYSTEMS)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"].lower().startswith("bearer")


def test_revoked_token_is_401(owner):
    token, plain = api_token_create(user=owner, name="ci")
    assert _bearer(plain).get(SYSTEMS).status_code == 200
    api_token_revoke(token=token, actor=owner)
    response = _bearer(plain).get(SYSTEMS)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("This API token was revoked on ")
    assert 'error="invalid_token"' in response["WWW-Authenticate"] and "revoked" in response["WWW-Authenticate"]


def test_token_of_deactivated_user_is_401(owner):
    _, plain = api_token_create(user=owner, name="ci")
    owner.is_active = False
    owner.save()
    assert _bearer(plain).get(SYSTEMS).status_code == 401


def test_no_credentials_is_401(db):
    response = APIClient().get(SYSTEMS)
    assert response.status_code == 401
    assert "credentials were not provided" in response.json()["detail"]


# --- the UI: /accounts/me/ ----------------------------------------------------------------------

def test_ui_creates_token_and_shows_it_once(client, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:profile"), {"name": "laptop", "scopes": ["read"], "days": 90})
    assert response.status_code == 200
    shown = TOKEN_RE.findall(response.content.decode())
    assert len(set(shown)) == 1
    plain = shown[0]
    token = ApiToken.objects.get(user=owner, name="laptop")
    assert all(plain not in value for value in _row_values(token))
    assert _bearer(plain).get(SYSTEMS).status_code == 200

    again = client.get(reverse("accounts:profile")).content.decode()
    assert plain not in again
    assert "laptop" in again and token.prefix in again


def test_ui_rejects_duplicate_token_name(client, owner):
    api_token_create(user=owner, name="laptop")
    client.force_login(owner)
    response = client.post(reverse("accounts:profile"), {"name": "laptop", "scopes": ["read"], "days": 90})
    assert "already have a token with this name" in response.content.decode()
    assert not TOKEN_RE.search(response.content.decode())
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_ui_revokes_own_token(client, owner):
    token, plain = api_token_create(user=owner, name="laptop")
    client.force_login(owner)
    response = client.post(reverse("accounts:token-revoke", args=[token.pk]), follow=True)
    assert response.status_code == 200
    assert "revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoke", actor=owner).count() == 1
    assert _bearer(plain).get(SYSTEMS).status_code == 401


def test_ui_revoke_needs_post(client, owner):
    token, _ = api_token_create(user=owner, name="laptop")
    client.force_login(owner)
    assert client.get(reverse("accounts:token-revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_user_cannot_revoke_another_users_token(client, owner, other_owner, ciso):
    token, plain = api_token_create(user=other_owner, name="theirs")
    for user in (owner, ciso):
        client.force_login(user)
        response = client.post(reverse("accounts:token-revoke", args=[token.pk]))
        assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert _bearer(plain).get(SYSTEMS).status_code == 200


def test_profile_lists_only_own_tokens(client, owner, other_owner):
    api_token_create(user=other_owner, name="their-secret-pipeline")
    client.force_login(owner)
    assert "their-secret-pipeline" not in client.get(reverse("accounts:profile")).content.decode()


def test_profile_requires_login(client, db):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
