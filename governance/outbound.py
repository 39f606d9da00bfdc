"""The settings side of worker/outbound.py: the address policy built from RAMPART_OUTBOUND_ALLOWED_HOSTS.

Findings pulls and lineage connectors check URLs with `check_url` (forms and services, so they can say why) and
make every request through a `client(...)`, which checks again when the socket connects and on every redirect.
"""
from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from worker.outbound import ALLOW_SETTING, Client, OutboundError, Policy


@lru_cache(maxsize=16)
def _policy(allowed: tuple[str, ...]) -> Policy:
    try:
        return Policy(allowed)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{ALLOW_SETTING}: {exc}") from exc


def policy() -> Policy:
    """Names, addresses and networks (CIDR) allowed although private, loopback, link-local …; read on every call."""
    return _policy(tuple(settings.RAMPART_OUTBOUND_ALLOWED_HOSTS))


def check_url(url: str, *, raise_as: type[Exception] | None = None) -> None:
    """Raises worker.outbound.Refused (scheme, address) or Unresolved (the name does not resolve); with `raise_as`,
    that exception instead, with the same message (a findings pull's PullError, a connector's ConnectorError)."""
    try:
        policy().check_url(url)
    except OutboundError as exc:
        if raise_as is None:
            raise
        raise raise_as(str(exc)) from exc


def client(**options) -> Client:
    """A worker.outbound.Client under the configured policy (timeout, retries, backoff, max_bytes, headers …)."""
    return Client(policy=policy(), **options)
