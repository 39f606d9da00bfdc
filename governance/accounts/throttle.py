"""Failed sign-ins are counted per client address and per address + e-mail in Django's cache; past the limit the
login form refuses before checking the password. The message is the same whether the account exists or not.

The default cache is per process: with several web processes the effective limit is multiplied by their number
(see README, "Security"). Settings: RAMPART_LOGIN_MAX_FAILURES (per address + e-mail), RAMPART_LOGIN_MAX_FAILURES_PER_IP,
RAMPART_LOGIN_LOCKOUT_SECONDS.

Two-factor codes are counted per person, wherever they come from (whoever tries them knows the password already):
past RAMPART_OTP_MAX_FAILURES every code is refused until the lockout ends, on top of django-otp's own backoff.
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def _keys(request, email: str) -> list[tuple[str, int]]:
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    pair = hashlib.sha256(f"{ip}|{email.strip().lower()}".encode()).hexdigest()
    return [(f"login-fail:ip:{ip}", settings.RAMPART_LOGIN_MAX_FAILURES_PER_IP),
            (f"login-fail:pair:{pair}", settings.RAMPART_LOGIN_MAX_FAILURES)]


def blocked(request, email: str) -> bool:
    return any(cache.get(key, 0) >= limit for key, limit in _keys(request, email))


def _count(key: str) -> None:
    if not cache.add(key, 1, timeout=settings.RAMPART_LOGIN_LOCKOUT_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.RAMPART_LOGIN_LOCKOUT_SECONDS)


def failed(request, email: str) -> None:
    for key, _ in _keys(request, email):
        _count(key)


def succeeded(request, email: str) -> None:
    cache.delete(_keys(request, email)[1][0])  # the address keeps its count: it may be trying many accounts


def _code_key(user) -> str:
    return f"otp-fail:user:{user.pk}"


def code_blocked(user) -> bool:
    return cache.get(_code_key(user), 0) >= settings.RAMPART_OTP_MAX_FAILURES


def code_failed(user) -> None:
    _count(_code_key(user))


def code_succeeded(user) -> None:
    cache.delete(_code_key(user))
