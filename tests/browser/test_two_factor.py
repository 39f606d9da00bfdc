"""Two-factor sign-in in a real browser: set it up from My account (the QR code drawn inline under our CSP, the key
typed into a 'phone', recovery codes shown once), sign out, sign in with the password and then a code."""
from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from governance.accounts.models import Role
from tests.browser.conftest import login
from tests.browser.test_csp import WATCH
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser


def test_enrol_then_sign_in_with_a_code(page, shot, transactional_db, live_server):
    make_user("ciso@example.com", Role.CISO)
    page.add_init_script(WATCH)
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/accounts/me/")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box["width"] >= 200 and box["width"] == box["height"]  # whole and square, at a size a phone can scan
    assert qr.get_attribute("viewBox")  # scaled, not cut off
    shot(page, "enrol")

    secret = page.locator("code.secret").inner_text()
    key = b32decode(secret.replace(" ", ""))  # what the phone's app stores
    page.get_by_label("Code from the app").fill("000000" if f"{totp(key):06d}" != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor").click()
    expect(page.locator(".field .error")).to_contain_text("does not match")
    page.get_by_label("Code from the app").fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Turn on two-factor").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    shot(page, "recovery-codes")
    assert page.evaluate("window.__violations") == [] and page.js_errors == []

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill("ciso@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    shot(page, "code-step")

    device = TOTPDevice.objects.get(user__email="ciso@example.com")
    now_t = int(time.time()) // 30
    step = max(now_t, device.last_t + 1)  # the enrolment's code works once: the app's next one
    page.get_by_label("Code").fill(f"{totp(key, drift=step - now_t):06d}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("ciso@example.com")
    page.goto("/accounts/me/two-factor/")
    expect(page.get_by_text("Recovery codes left")).to_be_visible()
    shot(page, "state")
    assert page.evaluate("window.__violations") == [] and page.js_errors == []
