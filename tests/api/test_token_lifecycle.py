"""API token lifetime: expiry chosen at creation, rotation with a grace period, last use (time and address) recorded
at most once a minute and shown on My account, a warning e-mail once before the end, and the migration of the tokens
that existed before."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.accounts import services
from governance.accounts.models import ApiToken, Scope
from governance.accounts.services import api_token_create, api_token_revoke, api_token_rotate
from governance.audit.models import AuditEvent
from worker.tasks import api_tokens_warn_expiring

SYSTEMS = "/api/v1/systems/"
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
TOKEN_RE = re.compile(r"rmp_[A-Za-z0-9_\-]{20,}")


def call(plain: str, *, ip: str = "127.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client.get(SYSTEMS)


def at(moment):
    return time_machine.travel(moment, tick=False)


# --- expiry --------------------------------------------------------------------------------------------------------

def test_default_lifetime_is_90_days(owner):
    with at(T0):
        token, _ = api_token_create(user=owner, name="ci", scopes=[Scope.READ])
    assert token.expires_at == T0 + timedelta(days=90) and token.lifetime_days == 90


def test_expired_token_is_401_with_the_reason(owner):
    with at(T0):
        token, plain = api_token_create(user=owner, name="ci", scopes=[Scope.READ], days=30)
    with at(token.expires_at - timedelta(seconds=1)):
        assert call(plain).status_code == 200
    for moment in (token.expires_at, token.expires_at + timedelta(days=400)):
        with at(moment):
            response = call(plain)
        assert response.status_code == 401
        assert response.json()["detail"] == "This API token expired on 2027-03-31 09:00 UTC."
        assert response["WWW-Authenticate"] == ('Bearer realm="api", error="invalid_token", '
                                                'error_description="This API token expired on 2027-03-31 09:00 UTC."')


def test_lifetime_limits(owner, settings):
    settings.RAMPART_API_TOKEN_MAX_DAYS = 30
    for days in (0, 31):
        with pytest.raises(ValidationError, match="between 1 and 30 days"):
            api_token_create(user=owner, name=f"d{days}", scopes=[Scope.READ], days=days)
    with pytest.raises(ValidationError, match="Unknown scope admin"):
        api_token_create(user=owner, name="bad", scopes=["admin"])
    with pytest.raises(ValidationError, match="at least one scope"):
        api_token_create(user=owner, name="none", scopes=[])
    assert not ApiToken.objects.exists()


# --- rotation ------------------------------------------------------------------------------------------------------

def test_rotated_token_works_during_the_grace_period_only(owner):
    with at(T0):
        old, old_plain = api_token_create(user=owner, name="ci", scopes=[Scope.GATE, Scope.READ], days=60)
    rotated_at = T0 + timedelta(days=50)
    with at(rotated_at):
        new, new_plain = api_token_rotate(token=old, actor=owner, grace_hours=6)
        assert call(old_plain).status_code == 200 and call(new_plain).status_code == 200
    old.refresh_from_db()
    assert (new.name, new.scopes, new.lifetime_days) == ("ci", ["read", "gate"], 60)
    assert new.expires_at == rotated_at + timedelta(days=60)
    assert old.rotated_at == rotated_at and old.expires_at == rotated_at + timedelta(hours=6)
    with at(rotated_at + timedelta(hours=6) - timedelta(seconds=1)):
        assert call(old_plain).status_code == 200
    with at(rotated_at + timedelta(hours=6)):
        response = call(old_plain)
        assert response.status_code == 401
        assert "after it was rotated; use its replacement" in response.json()["detail"]
        assert call(new_plain).status_code == 200
    event = AuditEvent.objects.get(action="api_token.rotate")
    assert event.actor_id == owner.pk and event.after["successor"]["prefix"] == new.prefix
    assert old_plain not in str(event.__dict__) and new_plain not in str(event.__dict__)


def test_grace_never_extends_the_old_tokens_life(owner):
    with at(T0):
        old, _ = api_token_create(user=owner, name="ci", scopes=[Scope.READ], days=1)
        api_token_rotate(token=old, actor=owner, grace_hours=48)
    old.refresh_from_db()
    assert old.expires_at == T0 + timedelta(days=1)


def test_an_expired_token_can_be_rotated_to_renew_it(owner):
    with at(T0):
        old, _ = api_token_create(user=owner, name="ci", scopes=[Scope.IMPORT], days=10)
    with at(T0 + timedelta(days=20)):
        new, plain = api_token_rotate(token=old, actor=owner)
        assert call(plain).status_code == 403  # works, within its scopes: import only
    assert new.name == "ci" and new.expires_at == T0 + timedelta(days=30)


def test_revoked_or_already_rotated_tokens_are_not_rotated(owner):
    token, _ = api_token_create(user=owner, name="ci", scopes=[Scope.READ])
    successor, _ = api_token_rotate(token=token, actor=owner)
    with pytest.raises(ValidationError, match="rotated already"):
        api_token_rotate(token=token, actor=owner)
    for hours in (0, 169):
        with pytest.raises(ValidationError, match="between 1 and 168 hours"):
            api_token_rotate(token=successor, actor=owner, grace_hours=hours)
    api_token_revoke(token=successor, actor=owner)
    with pytest.raises(ValidationError, match="revoked token cannot be rotated"):
        api_token_rotate(token=successor, actor=owner)
    assert ApiToken.objects.count() == 2


def test_ui_rotates_own_token_and_shows_the_new_one_once(client, owner):
    token, old_plain = api_token_create(user=owner, name="laptop", scopes=[Scope.READ])
    client.force_login(owner)
    response = client.post(reverse("accounts:token-rotate", args=[token.pk]), {"grace_hours": 2})
    assert response.status_code == 200
    page = response.content.decode()
    shown = set(TOKEN_RE.findall(page))
    assert len(shown) == 1 and old_plain not in shown
    new_plain = shown.pop()
    assert "no-store" in response["Cache-Control"]
    assert "rotated — works until" in page and "switch your scripts to the new one" in page
    assert call(new_plain).status_code == 200 and call(old_plain).status_code == 200
    assert new_plain not in client.get(reverse("accounts:profile")).content.decode()


def test_ui_refuses_a_grace_out_of_range_and_rotating_twice(client, owner):
    token, _ = api_token_create(user=owner, name="laptop", scopes=[Scope.READ])
    client.force_login(owner)
    response = client.post(reverse("accounts:token-rotate", args=[token.pk]), {"grace_hours": 500}, follow=True)
    assert "not rotated" in response.content.decode() and ApiToken.objects.count() == 1
    client.post(reverse("accounts:token-rotate", args=[token.pk]), {"grace_hours": 24})
    response = client.post(reverse("accounts:token-rotate", args=[token.pk]), {"grace_hours": 24}, follow=True)
    assert "rotated already" in response.content.decode() and ApiToken.objects.count() == 2


def test_user_cannot_rotate_another_users_token(client, owner, other_owner):
    token, _ = api_token_create(user=other_owner, name="theirs", scopes=[Scope.READ])
    client.force_login(owner)
    assert client.post(reverse("accounts:token-rotate", args=[token.pk]), {"grace_hours": 24}).status_code == 404
    assert client.get(reverse("accounts:token-rotate", args=[token.pk])).status_code == 405
    assert ApiToken.objects.count() == 1


# --- last use ------------------------------------------------------------------------------------------------------

def test_last_use_is_recorded_at_most_once_a_minute(owner):
    token, plain = api_token_create(user=owner, name="ci", scopes=[Scope.READ])
    with at(T0):
        call(plain, ip="203.0.113.7")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (T0, "203.0.113.7")
    with at(T0 + timedelta(seconds=59)):
        with CaptureQueriesContext(connection) as queries:
            assert call(plain, ip="198.51.100.1").status_code == 200
        assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "accounts_apitoken"')]
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (T0, "203.0.113.7")
    with at(T0 + timedelta(seconds=60)):
        call(plain, ip="2001:db8::1")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (T0 + timedelta(seconds=60), "2001:db8::1")


def test_refused_requests_record_no_use(owner):
    token, plain = api_token_create(user=owner, name="ci", scopes=[Scope.GATE])
    assert call(plain).status_code == 403
    token.refresh_from_db()
    assert token.last_used_at is None


def test_my_account_shows_scopes_expiry_and_last_use(client, owner):
    with at(T0):
        api_token_create(user=owner, name="gate-check", scopes=[Scope.GATE], days=30)
        token, plain = api_token_create(user=owner, name="importer", scopes=[Scope.IMPORT, Scope.READ], days=90)
        call(plain, ip="203.0.113.9")
    with at(T0 + timedelta(days=1)):
        client.force_login(owner)
        page = client.get(reverse("accounts:profile")).content.decode()
    assert "2027-03-01 09:00" in page  # created, and last used
    assert "2027-03-31 09:00" in page and "2027-05-30 09:00" in page  # expiries
    assert "from 203.0.113.9" in page and "never" in page
    assert ">gate<" in page and ">import<" in page and ">read<" in page
    with at(T0 + timedelta(days=31)):
        client.force_login(owner)
        page = client.get(reverse("accounts:profile")).content.decode()
    assert "expired" in page


def test_ui_creates_token_with_scopes_and_lifetime(client, owner, settings):
    with at(T0):
        client.force_login(owner)
        client.post(reverse("accounts:profile"), {"name": "gate", "scopes": ["gate"], "days": 14})
    client.force_login(owner)
    token = ApiToken.objects.get(name="gate")
    assert token.scopes == ["gate"] and token.expires_at == T0 + timedelta(days=14)
    settings.RAMPART_API_TOKEN_MAX_DAYS = 30
    page = client.post(reverse("accounts:profile"), {"name": "long", "scopes": ["read"], "days": 31}).content.decode()
    assert "less than or equal to 30" in page
    page = client.post(reverse("accounts:profile"), {"name": "none", "days": 5}).content.decode()
    assert "Choose at least one scope." in page
    assert ApiToken.objects.count() == 1


# --- the management command ----------------------------------------------------------------------------------------

def test_command_takes_scopes_and_days(owner):
    out, err = StringIO(), StringIO()
    with at(T0):
        call_command("create_api_token", "--user", owner.email, "--name", "ci", "--scopes", "gate", "--days", "30",
                     stdout=out, stderr=err)
    token = ApiToken.objects.get()
    assert token.scopes == ["gate"] and token.expires_at == T0 + timedelta(days=30)
    assert "Scopes: gate; expires 2027-03-31 09:00 UTC" in err.getvalue()
    assert call(out.getvalue().strip()).status_code == 403


@pytest.mark.parametrize("args, message", [
    (["--scopes", "gate,admin"], "Unknown scope admin"),
    (["--scopes", "read", "--days", "0"], "between 1 and 365 days"),
    (["--scopes", ","], "at least one scope"),
])
def test_command_refuses_bad_scopes_and_days(owner, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", "--user", owner.email, "--name", "ci", *args, stdout=StringIO())
    assert not ApiToken.objects.exists()


# --- the warning e-mail --------------------------------------------------------------------------------------------

def test_owner_is_warned_once_before_the_token_expires(owner, mailoutbox, settings):
    settings.BASE_URL = "https://rampart.example.com"
    with at(T0):
        token, _ = api_token_create(user=owner, name="ci", scopes=[Scope.GATE], days=30)
    with at(T0 + timedelta(days=22)):  # 8 days left
        assert api_tokens_warn_expiring() == 0
    with at(T0 + timedelta(days=23)):  # 7 days left
        assert api_tokens_warn_expiring() == 1
        assert api_tokens_warn_expiring() == 0
    with at(T0 + timedelta(days=29)):
        assert api_tokens_warn_expiring() == 0
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [owner.email] and "“ci” expires 2027-03-31 09:00 UTC" in mail.subject
    assert token.prefix in mail.body and "https://rampart.example.com/accounts/me/" in mail.body


def test_two_runs_at_once_send_one_warning(owner, mailoutbox, monkeypatch):
    """A second run starting while the first is sending finds the token claimed."""
    api_token_create(user=owner, name="ci", scopes=[Scope.READ], days=30)
    later, inner = timezone.now() + timedelta(days=15), []
    real_send = services.send_mail

    def send_while_another_run_starts(*args, **kwargs):
        inner.append(services.api_tokens_warn_expiring(now=later, days=20))
        return real_send(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", send_while_another_run_starts)
    assert services.api_tokens_warn_expiring(now=later, days=20) == 1
    assert inner == [0] and len(mailoutbox) == 1


def test_a_failed_send_is_retried_by_the_next_run(owner, mailoutbox, monkeypatch):
    api_token_create(user=owner, name="ci", scopes=[Scope.READ], days=5)  # lives no longer than the window: no mail
    token, _ = api_token_create(user=owner, name="ci-long", scopes=[Scope.READ], days=30)
    real_send = services.send_mail
    monkeypatch.setattr(services, "send_mail", lambda *a, **kw: (_ for _ in ()).throw(OSError("SMTP down")))
    later = timezone.now() + timedelta(days=15)
    assert services.api_tokens_warn_expiring(now=later, days=20) == 0
    token.refresh_from_db()
    assert token.expiry_warned_at is None
    monkeypatch.setattr(services, "send_mail", real_send)
    assert services.api_tokens_warn_expiring(now=later, days=20) == 1
    assert [m.subject for m in mailoutbox] == ["[Rampart] API token “ci-long” expires " +
                                               timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M %Z")]


def test_rotated_revoked_and_inactive_users_tokens_are_not_warned(owner, other_owner, mailoutbox):
    rotated, _ = api_token_create(user=owner, name="rotated", scopes=[Scope.READ], days=30)
    successor, _ = api_token_rotate(token=rotated, actor=owner)
    revoked, _ = api_token_create(user=owner, name="revoked", scopes=[Scope.READ], days=30)
    api_token_revoke(token=revoked, actor=owner)
    api_token_create(user=other_owner, name="gone", scopes=[Scope.READ], days=30)
    other_owner.is_active = False
    other_owner.save()
    assert services.api_tokens_warn_expiring(days=20) == 0  # none ends within 20 days yet
    assert services.api_tokens_warn_expiring(now=timezone.now() + timedelta(days=15), days=20) == 1  # the successor
    assert len(mailoutbox) == 1 and "“rotated”" in mailoutbox[0].subject and successor.prefix in mailoutbox[0].body


# --- the migration -------------------------------------------------------------------------------------------------

def test_migration_gives_existing_tokens_every_scope_and_90_days(owner):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events before ALTER TABLE
    before, after = [("accounts", "0001_initial")], [("accounts", "0002_api_token_scopes_expiry")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    legacy = executor.loader.project_state(before).apps.get_model("accounts", "ApiToken")
    legacy.objects.create(user_id=owner.pk, name="legacy", prefix="rmp_legacy", token_hash="0" * 64)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with at(T0):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    token = ApiToken.objects.get(name="legacy")
    assert token.scopes == Scope.values and token.lifetime_days == 90
    assert token.expires_at == T0 + timedelta(days=90)
    assert token.last_used_ip is None and token.rotated_at is None and token.expiry_warned_at is None
