"""Redirects stay on site, sign-ins are throttled without revealing accounts, bodies are capped before they are
read, headers are set, secrets are stored hashed and never shown, and reading a page writes nothing."""
from __future__ import annotations

import io
import itertools

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from governance.accounts.models import ApiToken, hash_token
from governance.accounts.services import api_token_create, api_token_revoke
from governance.findings.models import Finding, ImportRun
from governance.risks.models import GatePolicy
from tests.conftest import PASSWORD
from tests.risks.conftest import make_finding, make_risk
from tests.security.conftest import api_client, ui_client

LOGIN = reverse("accounts:login")
OFF_SITE = ["//evil.example/", "/\\evil.example/", "https://evil.example/", "\\\\evil.example", "javascript:alert(1)"]
_serial = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"hardening-{next(_serial)}"}}


# --- redirects ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", OFF_SITE)
def test_bulk_triage_never_redirects_off_site(engineer, system, target):
    finding = make_finding(system)
    response = ui_client(engineer).post(reverse("findings:bulk"), {"ids": [finding.pk], "action": "confirm",
                                                                   "next": target})
    assert response.status_code == 302 and response["Location"] == "/findings/"


def test_bulk_triage_keeps_a_local_next(engineer, system):
    finding = make_finding(system)
    response = ui_client(engineer).post(reverse("findings:bulk"), {"ids": [finding.pk], "action": "confirm",
                                                                   "next": "/findings/?severity=critical"})
    assert response["Location"] == "/findings/?severity=critical"


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_off_never_redirects_off_site(owner, engineer, system, target):
    risk = make_risk(engineer, system)
    response = ui_client(owner).post(reverse("risks:decide", args=[risk.ref]), {
        "decision": "reject", "justification": "Not treated yet.", "kind": "residual_risk", "next": target})
    assert response.status_code == 302 and response["Location"] == risk.get_absolute_url()


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_site(owner, target):
    response = Client().post(f"{LOGIN}?next={target}", {"username": owner.email, "password": PASSWORD, "next": target})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:home")


# --- sign-in ------------------------------------------------------------------------------------------------

def _login(client, email, password):
    return client.post(LOGIN, {"username": email, "password": password})


def test_unknown_email_and_wrong_password_look_the_same(owner):
    wrong = _login(Client(), owner.email, "not-the-password")
    unknown = _login(Client(), "no-such-user@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    error = "Please enter a correct email address and password"
    assert error in wrong.content.decode() and error in unknown.content.decode()


def test_repeated_failures_lock_the_address_and_email_out(settings, owner, engineer):
    settings.RAMPART_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        assert _login(client, owner.email, "guess").status_code == 200
    locked = _login(client, owner.email, PASSWORD)  # even the right password, while locked
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed sign-ins" in locked.content.decode()
    # the same refusal for an e-mail that has no account: the lockout reveals nothing
    for _ in range(3):
        _login(client, "ghost@example.com", "guess")
    assert _login(client, "ghost@example.com", "guess").status_code == 429
    # another account from the same address still signs in
    assert _login(Client(), engineer.email, PASSWORD).status_code == 302


def test_one_address_is_capped_across_accounts(settings, owner):
    settings.RAMPART_LOGIN_MAX_FAILURES_PER_IP = 4
    for i in range(4):
        _login(Client(), f"user{i}@example.com", "guess")
    assert _login(Client(), owner.email, PASSWORD).status_code == 429
    assert _login(Client(REMOTE_ADDR="10.0.0.9"), owner.email, PASSWORD).status_code == 302


def test_a_success_clears_the_account_counter(settings, owner):
    settings.RAMPART_LOGIN_MAX_FAILURES = 3
    client = Client()
    _login(client, owner.email, "guess")
    _login(client, owner.email, "guess")
    assert _login(client, owner.email, PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    _login(client, owner.email, "guess")
    _login(client, owner.email, "guess")
    assert _login(client, owner.email, PASSWORD).status_code == 302


def test_passwords_are_validated():
    for weak in ("password123", "short", "1234567890"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct-horse-battery-staple")


# --- size caps ------------------------------------------------------------------------------------------------

def test_oversized_bodies_are_refused_before_they_are_read(settings, engineer, system):
    settings.RAMPART_MAX_REQUEST_BYTES = 10_000
    big = io.BytesIO(b"x" * 20_000)
    big.name = "report.sarif"
    response = ui_client(engineer).post(reverse("findings:upload"), {"file": big, "format": "auto",
                                                                     "system": system.slug})
    assert response.status_code == 413 and "at most" in response.content.decode()
    big.seek(0)
    response = api_client(engineer).post(reverse("api-import-list"), {"file": big, "format": "auto",
                                                                        "system": system.slug}, format="multipart")
    assert response.status_code == 413 and "at most" in response.json()["detail"]
    assert not ImportRun.objects.exists()


def test_bodies_under_the_ceiling_reach_the_per_kind_caps(settings, engineer, system):
    settings.RAMPART_MAX_REPORT_BYTES = 100
    report = io.BytesIO(b'{"version": "2.1.0", "runs": []}' + b" " * 200)
    report.name = "report.sarif"
    response = ui_client(engineer).post(reverse("findings:upload"), {"file": report, "format": "auto",
                                                                     "system": system.slug})
    assert response.status_code == 400 and "limit" in response.content.decode()


# --- headers, CSRF ------------------------------------------------------------------------------------------------

def test_security_headers(owner):
    response = ui_client(owner).get(reverse("dashboard:home"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    login = Client().get(LOGIN)
    assert login["X-Frame-Options"] == "DENY"


def test_api_with_a_session_needs_the_csrf_token_and_with_a_bearer_token_does_not(engineer, system):
    from rest_framework.test import APIClient

    session = APIClient(enforce_csrf_checks=True)
    session.force_login(engineer)
    url = reverse("api-system-detail", args=[system.slug])
    assert session.patch(url, {"purpose": "changed"}, format="json").status_code == 403
    assert api_client(engineer).patch(url, {"purpose": "changed"}, format="json").status_code == 200


# --- secrets ------------------------------------------------------------------------------------------------------

def test_api_tokens_are_stored_as_a_hash_and_revocation_is_immediate(owner, system):
    token, plain = api_token_create(user=owner, name="ci")
    row = ApiToken.objects.values().get(pk=token.pk)
    assert plain not in {str(v) for v in row.values()} and row["token_hash"] == hash_token(plain)
    client = Client(headers={"Authorization": f"Bearer {plain}"})
    assert client.get(reverse("api-system-list")).status_code == 200
    api_token_revoke(token=token, actor=owner)
    assert client.get(reverse("api-system-list")).status_code == 401
    profile = ui_client(owner).get(reverse("accounts:profile")).content.decode()
    assert plain not in profile and row["token_hash"] not in profile


def test_connector_credentials_are_never_shown_back(ciso, admin_user, settings):
    from governance.lineage import connectors
    from governance.lineage.models import Connector

    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # an operator's choice: loopback is refused otherwise
    connectors.connector_save(actor=ciso, connector=None, credential="s3cr3t-marquez-token", data={
        "kind": Connector.Kind.MARQUEZ, "name": "marquez", "base_url": "http://127.0.0.1:9/",
        "auth": Connector.Auth.BEARER, "every_minutes": 60, "enabled": True})
    connector = Connector.objects.get()
    assert "s3cr3t-marquez-token" not in connector.credential_encrypted
    for url in (reverse("lineage:overview"), reverse("lineage:connector_edit", args=[connector.pk]),
                reverse("audit:list")):
        body = ui_client(admin_user).get(url).content.decode()
        assert "s3cr3t-marquez-token" not in body and connector.credential_encrypted not in body


# --- integrity ------------------------------------------------------------------------------------------------------

def test_api_risks_gather_only_findings_of_their_own_system(owner, engineer, system, other_system):
    foreign = make_finding(other_system)
    client = api_client(engineer)
    response = client.post(reverse("api-risk-list"), {"title": "x", "system": system.slug, "findings": [foreign.pk]},
                           format="json")
    assert response.status_code == 400 and "findings" in response.json()
    risk = make_risk(engineer, system)
    response = client.patch(reverse("api-risk-detail", args=[risk.ref]), {"findings": [foreign.pk]}, format="json")
    assert response.status_code == 400 and not risk.findings.exists()
    own = make_finding(system)
    response = client.patch(reverse("api-risk-detail", args=[risk.ref]), {"findings": [own.pk]}, format="json")
    assert response.status_code == 200 and list(risk.findings.all()) == [own]
    assert Finding.objects.count() == 2


def test_reading_a_system_and_its_gate_writes_nothing(owner, system):
    before = GatePolicy.objects.count()
    assert ui_client(owner).get(reverse("inventory:detail", args=[system.slug])).status_code == 200
    assert api_client(owner).get(reverse("api-system-gate", args=[system.slug])).status_code in (200, 409)
    assert GatePolicy.objects.count() == before
