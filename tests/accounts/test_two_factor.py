"""Two-factor sign-in end to end with the test client: enrol (QR, confirm with a real code computed from the key),
sign in in two steps, recovery codes, wrong codes, throttling, turning it off, an admin removing it, roles that
require it. Codes are computed with django_otp.oath.totp from the device's key, as an authenticator app does."""
from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.accounts import twofactor
from governance.accounts.services import api_token_create
from governance.audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
CODE = reverse("accounts:login-code")
TWO_FACTOR = reverse("accounts:two-factor")
DISABLE = reverse("accounts:two-factor-disable")
RECOVERY = reverse("accounts:two-factor-recovery")
HOME = reverse("dashboard:home")


def code_for(device) -> str:
    """The code an authenticator app shows now, for a time step the device has not accepted yet (a code works once)."""
    device.refresh_from_db()
    now_t = int(time.time()) // device.step
    step = max(now_t + device.drift, device.last_t + 1)
    return f"{totp(device.bin_key, step=device.step, drift=step - now_t):06d}"


def wrong_code(device) -> str:
    return "000000" if code_for(device) != "000000" else "111111"


def enrol(client) -> tuple[TOTPDevice, list[str]]:
    """Through the page: read the key shown for typing by hand, answer with the app's code."""
    page = client.get(TWO_FACTOR)
    assert page.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page.content.decode()).group(1)
    key = b32decode(secret.replace(" ", ""))
    response = client.post(TWO_FACTOR, {"code": f"{totp(key):06d}"})
    assert response.status_code == 200, response.content.decode()[:2000]
    return TOTPDevice.objects.get(user=response.wsgi_request.user), response.context["recovery_codes"]


@pytest.fixture
def enrolled(engineer):
    """The engineer with an authenticator and recovery codes (set up through the page)."""
    client = Client()
    client.force_login(engineer)
    device, codes = enrol(client)
    return device, codes


def password_step(client, email, password=PASSWORD, next_url=None):
    data = {"username": email, "password": password} | ({"next": next_url} if next_url else {})
    return client.post(LOGIN + (f"?next={next_url}" if next_url else ""), data)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- enrolling ---------------------------------------------------------------------------------------------------

def test_enrolling_shows_a_qr_code_then_recovery_codes_once(client, engineer):
    client.force_login(engineer)
    assert "Set up two-factor sign-in" in client.get(reverse("accounts:profile")).content.decode()
    page = client.get(TWO_FACTOR)
    body = page.content.decode()
    assert "<svg" in body and "<script" not in body.split("<main", 1)[1]  # the QR code is drawn inline, no script
    assert "no-store" in page["Cache-Control"]  # the key is on this page
    assert client.get(TWO_FACTOR).context["secret"] == page.context["secret"]  # same key until confirmed
    assert not TOTPDevice.objects.exists()  # nothing saved before a code confirms the key

    assert client.post(TWO_FACTOR, {"code": "123456"}).status_code == 400
    assert client.post(TWO_FACTOR, {"code": "not-a-code"}).status_code == 400
    assert not TOTPDevice.objects.exists()

    device, codes = enrol(client)
    assert device.confirmed and device.user == engineer and device.name == "Authenticator app"
    assert len(codes) == twofactor.RECOVERY_CODES == len(set(codes))
    assert set(StaticToken.objects.filter(device__user=engineer).values_list("token", flat=True)) == set(codes)
    event = AuditEvent.objects.get(action="two_factor.enable")
    assert event.actor_id == engineer.pk and device.key not in str(event.after)
    assert not any(code in str(event.after) for code in codes)
    # this session proved the device; the page now shows the state, never the codes again
    again = client.get(TWO_FACTOR)
    assert again.context["device"] == device and again.context["recovery_codes"] is None
    assert not any(code in again.content.decode() for code in codes)
    assert "recovery codes left" in again.content.decode().lower()
    assert client.get(reverse("inventory:list")).status_code == 200


def test_the_code_that_confirmed_the_key_cannot_sign_in(enrolled, engineer):
    device, _ = enrolled
    used = f"{totp(device.bin_key, drift=device.last_t - int(time.time()) // 30):06d}"
    client = Client()
    password_step(client, engineer.email)
    assert client.post(CODE, {"code": used}).status_code == 400
    assert not signed_in(client)


# --- signing in --------------------------------------------------------------------------------------------------

def test_sign_in_takes_the_password_then_a_code(enrolled, engineer):
    device, _ = enrolled
    client = Client()
    response = password_step(client, engineer.email, next_url="/risks/")
    assert response.status_code == 302 and response.url == CODE
    assert not signed_in(client)
    assert client.get(HOME).url.startswith(LOGIN)  # the password alone opens nothing
    page = client.get(CODE)
    assert page.status_code == 200 and engineer.email in page.content.decode()
    response = client.post(CODE, {"code": code_for(device)})
    assert response.status_code == 302 and response.url == "/risks/"
    assert signed_in(client) and client.get("/risks/").status_code == 200
    engineer.refresh_from_db()
    assert engineer.last_login is not None
    device.refresh_from_db()
    assert device.last_used_at is not None


def test_a_wrong_code_is_refused_and_audited(enrolled, engineer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp's own backoff is tested below; here a typo then the code
    device, _ = enrolled
    client = Client()
    password_step(client, engineer.email)
    response = client.post(CODE, {"code": wrong_code(device)})
    assert response.status_code == 400 and "not right" in response.content.decode()
    assert not signed_in(client)
    event = AuditEvent.objects.get(action="two_factor.code_failed")
    assert event.actor_id == engineer.pk and event.after == {"where": "sign-in"}
    assert client.post(CODE, {"code": code_for(device)}).status_code == 302
    assert signed_in(client)


def test_a_code_works_once(enrolled, engineer):
    device, _ = enrolled
    first = Client()
    password_step(first, engineer.email)
    code = code_for(device)
    assert first.post(CODE, {"code": code}).status_code == 302
    second = Client()
    password_step(second, engineer.email)
    assert second.post(CODE, {"code": code}).status_code == 400
    assert not signed_in(second)


def test_a_recovery_code_signs_in_once(enrolled, engineer):
    _, codes = enrolled
    client = Client()
    password_step(client, engineer.email)
    response = client.post(CODE, {"code": f"  {codes[0].upper()} "}, follow=True)
    assert signed_in(client)
    assert f"recovery code; {len(codes) - 1} left" in response.content.decode()
    event = AuditEvent.objects.get(action="two_factor.recovery_code_used")
    assert event.after == {"where": "sign-in", "recovery_codes_left": len(codes) - 1}
    again = Client()
    password_step(again, engineer.email)
    assert again.post(CODE, {"code": codes[0]}).status_code == 400
    assert not signed_in(again)


def test_wrong_codes_are_throttled_per_person(enrolled, engineer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    settings.RAMPART_OTP_MAX_FAILURES = 3
    device, codes = enrolled
    client = Client()
    password_step(client, engineer.email)
    for wrong in ("000001", "000002", "zzzzzzzz"):
        assert client.post(CODE, {"code": wrong}).status_code == 400
    for right in (code_for(device), codes[0]):  # now even right codes are refused, from any browser
        response = client.post(CODE, {"code": right})
        assert response.status_code == 429 and "Too many wrong codes" in response.content.decode()
        other = Client()
        password_step(other, engineer.email)
        assert other.post(CODE, {"code": right}).status_code == 429
    assert not signed_in(client)
    assert AuditEvent.objects.filter(action="two_factor.code_failed").count() == 3
    assert StaticToken.objects.filter(token=codes[0]).exists()  # a refused try does not spend a recovery code


def test_the_devices_own_backoff_refuses_even_a_right_code(enrolled, engineer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # one failure locks the device for an hour
    device, _ = enrolled
    client = Client()
    password_step(client, engineer.email)
    assert client.post(CODE, {"code": wrong_code(device)}).status_code == 400
    response = client.post(CODE, {"code": code_for(device)})
    assert response.status_code == 429 and "wait a little" in response.content.decode()
    assert not signed_in(client)


def test_the_code_step_needs_a_fresh_password_step(enrolled, engineer, client):
    device, _ = enrolled
    assert client.get(CODE).url == LOGIN  # nobody passed the password step
    password_step(client, engineer.email)
    session = client.session
    session["rampart_2fa_pending"]["at"] -= 301
    session.save()
    response = client.post(CODE, {"code": code_for(device)})
    assert response.url == LOGIN and not signed_in(client)
    assert "rampart_2fa_pending" not in client.session


def test_a_wrong_password_never_reaches_the_code_step(enrolled, engineer, client):
    response = password_step(client, engineer.email, password="wrong-password")
    assert response.status_code == 200 and "rampart_2fa_pending" not in client.session
    assert client.get(CODE).url == LOGIN


def test_api_tokens_need_no_code(enrolled, engineer):
    _, token = api_token_create(user=engineer, name="ci")
    assert Client().get(reverse("api-system-list"), headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- turning it off, new recovery codes, an admin removing it ------------------------------------------------------

def test_turning_it_off_takes_a_code(enrolled, engineer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device, _ = enrolled
    client = Client()
    client.force_login(engineer)
    response = client.post(DISABLE, {"code": wrong_code(device)})
    assert response.status_code == 400 and TOTPDevice.objects.filter(user=engineer).exists()
    assert AuditEvent.objects.get(action="two_factor.code_failed").after == {"where": "turn off"}
    assert client.post(DISABLE, {"code": code_for(device)}).url == TWO_FACTOR
    assert not TOTPDevice.objects.filter(user=engineer).exists()
    assert not StaticDevice.objects.filter(user=engineer).exists()
    assert AuditEvent.objects.get(action="two_factor.disable").actor_id == engineer.pk
    fresh = Client()
    assert password_step(fresh, engineer.email).url == HOME and signed_in(fresh)  # the password alone again


def test_new_recovery_codes_replace_the_old_ones(enrolled, engineer, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0  # an old code, then a new one at once
    device, old = enrolled
    client = Client()
    client.force_login(engineer)
    response = client.post(RECOVERY, {"code": code_for(device)})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = response.context["recovery_codes"]
    assert len(new) == twofactor.RECOVERY_CODES and not set(new) & set(old)
    assert AuditEvent.objects.filter(action="two_factor.recovery_codes").count() == 1
    signing_in = Client()
    password_step(signing_in, engineer.email)
    assert signing_in.post(CODE, {"code": old[1]}).status_code == 400
    assert signing_in.post(CODE, {"code": new[1]}).status_code == 302


def test_an_admin_removes_a_lost_authenticator(enrolled, engineer, admin_user, client):
    client.force_login(admin_user)
    page = client.get(reverse("accounts:user-edit", args=[engineer.pk])).content.decode()
    assert "Remove two-factor" in page
    response = client.post(reverse("accounts:user-two-factor-reset", args=[engineer.pk]))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=engineer).exists()
    event = AuditEvent.objects.get(action="two_factor.reset")
    assert event.actor_id == admin_user.pk and event.object_id == str(engineer.pk)
    assert password_step(Client(), engineer.email).url == HOME


# --- roles that require it -----------------------------------------------------------------------------------------

@pytest.fixture
def admins_must(settings):
    settings.RAMPART_TOTP_REQUIRED_ROLES = ["admin", "CISO"]


def test_required_role_names_are_checked(settings):
    settings.RAMPART_TOTP_REQUIRED_ROLES = ["Admin", "product owner", "product_owner", " "]
    assert twofactor.required_roles() == {"Admin", "Product owner"}
    settings.RAMPART_TOTP_REQUIRED_ROLES = ["admins"]
    with pytest.raises(ImproperlyConfigured, match="unknown role 'admins'"):
        twofactor.required_roles()


def test_a_required_role_without_a_device_is_sent_to_enrol(admins_must, admin_user, engineer):
    client = Client()
    assert password_step(client, admin_user.email).url == HOME
    for path in (HOME, reverse("accounts:users"), reverse("accounts:profile")):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith(TWO_FACTOR), path
    assert client.get(reverse("api-system-list")).status_code == 403  # session use of the API too
    page = client.get(TWO_FACTOR)
    assert page.status_code == 200 and "Your role requires two-factor" in page.content.decode()
    device, _ = enrol(client)
    assert client.get(reverse("accounts:users")).status_code == 200
    # the next sign-in asks for a code
    later = Client()
    assert password_step(later, admin_user.email).url == CODE
    assert later.post(CODE, {"code": code_for(device)}).url == HOME
    assert later.get(reverse("accounts:users")).status_code == 200
    # roles not listed are not concerned
    other = Client()
    assert password_step(other, engineer.email).url == HOME and other.get(HOME).status_code == 200


def test_a_required_role_keeps_its_tokens_and_its_way_out(admins_must, admin_user):
    _, token = api_token_create(user=admin_user, name="ci")
    assert Client().get(reverse("api-system-list"), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    client = Client()
    password_step(client, admin_user.email)
    assert client.get(reverse("healthz")).status_code in (200, 503)
    assert client.post(reverse("accounts:logout")).url == LOGIN
    assert not signed_in(client)


def test_a_session_older_than_the_device_must_give_a_code(admins_must, ciso):
    """A session that began before the device (here: one signed in without the code step) is asked for one."""
    device = TOTPDevice.objects.create(user=ciso, name="Authenticator app", confirmed=True)
    client = Client()
    client.force_login(ciso)
    response = client.get(reverse("risks:list"))
    assert response.status_code == 302 and response.url.startswith(CODE)
    assert client.post(CODE, {"code": code_for(device)}).url == HOME
    assert client.get(reverse("risks:list")).status_code == 200


def test_an_admin_removing_a_required_device_sends_the_person_to_enrol_again(admins_must, ciso, admin_user):
    device = TOTPDevice.objects.create(user=ciso, name="Authenticator app", confirmed=True)
    person = Client()
    password_step(person, ciso.email)
    person.post(CODE, {"code": code_for(device)})
    assert person.get(HOME).status_code == 200
    manager = Client()
    manager.force_login(admin_user)
    TOTPDevice.objects.create(user=admin_user, name="Authenticator app", confirmed=True)  # admins must too
    admin_device = TOTPDevice.objects.get(user=admin_user)
    manager.post(CODE, {"code": code_for(admin_device)})
    manager.post(reverse("accounts:user-two-factor-reset", args=[ciso.pk]))
    assert person.get(HOME).url.startswith(TWO_FACTOR)


# --- cost --------------------------------------------------------------------------------------------------------

def test_no_query_is_added_for_people_without_two_factor(client, engineer, django_assert_max_num_queries):
    client.force_login(engineer)
    client.get(TWO_FACTOR)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("accounts:password-change")).status_code == 200


def test_the_two_factor_page_queries_are_bounded(enrolled, engineer, django_assert_max_num_queries):
    device, _ = enrolled
    client = Client()
    password_step(client, engineer.email)
    client.post(CODE, {"code": code_for(device)})
    with django_assert_max_num_queries(9):
        assert client.get(TWO_FACTOR).status_code == 200


def test_make_user_is_not_flagged():
    assert not make_user("plain@example.com", None).must_change_password


def test_the_qr_code_scales_whole_and_carries_the_key(engineer, settings):
    settings.OTP_TOTP_ISSUER = "Rampart"
    key = twofactor.new_key()
    svg = twofactor.qr_svg(engineer, key)
    assert svg.startswith("<svg") and 'viewBox="' in svg and " width=" not in svg.split(">", 1)[0]
    url = TOTPDevice(user=engineer, key=key).config_url
    assert url.startswith("otpauth://totp/Rampart%3Aengineer%40example.com?")
    assert f"secret={twofactor.secret_for_typing(key).replace(' ', '')}" in url
