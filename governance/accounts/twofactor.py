"""Two-factor sign-in: a TOTP authenticator app (django-otp's TOTPDevice) with single-use recovery codes (its
StaticDevice). Reads and checks live here; writes (enrol, turn off, new codes) are in services.py.

Who must have it: the roles named in RAMPART_TOTP_REQUIRED_ROLES (e.g. "admin,ciso"); anyone may turn it on.
Codes are throttled twice: django-otp's per-device backoff (1, 2, 4 … s after each failure, in the database) and
throttle.py's count per person (RAMPART_OTP_MAX_FAILURES within RAMPART_LOGIN_LOCKOUT_SECONDS).
"""
from __future__ import annotations

import re
from base64 import b32encode
from binascii import unhexlify

import segno
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.safestring import mark_safe
from django_otp import verify_token
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from governance.accounts.models import Role, User

RECOVERY_CODES = 10
TOTP_SHAPE = re.compile(r"^\d{6}$")


def required_roles() -> set[str]:
    """RAMPART_TOTP_REQUIRED_ROLES as Role values; names in any case, 'product owner' or 'product_owner'."""
    by_name = {r.value.lower().replace(" ", "_"): r.value for r in Role}
    wanted = set()
    for name in settings.RAMPART_TOTP_REQUIRED_ROLES:
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key and key not in by_name:
            raise ImproperlyConfigured(f"RAMPART_TOTP_REQUIRED_ROLES: unknown role {name!r}; "
                                       f"choose from {', '.join(sorted(by_name))}.")
        if key:
            wanted.add(by_name[key])
    return wanted


def is_required(user: User) -> bool:
    roles = required_roles()
    return bool(roles) and user.has_role(*roles)


def authenticator(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def recovery_device(user: User) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).first()


def new_key() -> str:
    """A fresh secret (hex, 20 bytes as django-otp makes them), kept in the session until the person confirms it."""
    return random_hex(20)


def secret_for_typing(key: str) -> str:
    """The base32 form authenticator apps accept when the QR code cannot be scanned, in groups of four."""
    text = b32encode(unhexlify(key)).decode()
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def qr_svg(user: User, key: str) -> str:
    """The otpauth:// address of this key as an inline SVG QR code: drawn here, nothing leaves the server."""
    url = TOTPDevice(user=user, key=key).config_url
    # no fixed size, a viewBox: the page's CSS scales the whole code (a fixed size cut off its corners)
    svg = segno.make(url, error="m").svg_inline(scale=4, border=4, omitsize=True,
                                                title="QR code for your authenticator app")
    return mark_safe(svg)


def _normalise(code: str) -> str:
    """A code as typed ("123 456", "abcd-efgh") as the devices compare it."""
    return code.strip().replace(" ", "").replace("-", "").lower()


def check_new_key(key: str, code: str) -> int | None:
    """The time step `code` matches for a key not yet saved (one step either side), or None."""
    code = _normalise(code)
    if not TOTP_SHAPE.match(code):
        return None
    totp = TOTP(unhexlify(key))
    return totp.t() if totp.verify(int(code), tolerance=1) else None


def device_for(user: User, code: str):
    """The device a code is meant for: six digits are from the app, anything else is a recovery code."""
    return authenticator(user) if TOTP_SHAPE.match(code) else recovery_device(user)


def verify(user: User, code: str) -> tuple[object | None, str | None]:
    """(device, None) when `code` is right; (None, why) otherwise, why being 'wrong' or 'wait' (the device's backoff
    after earlier failures, when even a right code is refused)."""
    code = _normalise(code)
    device = device_for(user, code)
    if device is None:
        return None, "wrong"
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return None, "wait"
    verified = verify_token(user, device.persistent_id, code)
    return (verified, None) if verified else (None, "wrong")


def recovery_codes_left(user: User) -> int:
    device = recovery_device(user)
    return device.token_set.count() if device else 0
