"""The keyed part of the audit chain: the MAC key, each event's digest and the head's seal.

Version 1 events (written before the keyed chain) carry SHA-256(prev_hash + payload): anyone who can write
the database can recompute them. Version 2 events carry HMAC-SHA256 over every column (models.AuditEvent.
payload), keyed with a key the database does not hold: RAMPART_AUDIT_KEY, or one derived from SECRET_KEY
when it is unset. The head (AuditHead) is sealed with the same key over (seq, last_hash, legacy_seq), so the
boundary below which version 1 is accepted cannot be moved by someone without the key.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

LEGACY, KEYED = 1, 2
_EVENT_DOMAIN = b"rampart-audit-event/v2\n"
_HEAD_DOMAIN = b"rampart-audit-head/v1\n"


@lru_cache(maxsize=16)
def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rampart-audit-mac/v1",
                info=b"audit.chain").derive(secret.encode())


def _secrets() -> list[str]:
    if settings.RAMPART_AUDIT_KEY:
        return [settings.RAMPART_AUDIT_KEY, *settings.RAMPART_AUDIT_KEY_FALLBACKS]
    return [settings.SECRET_KEY, *settings.RAMPART_AUDIT_KEY_FALLBACKS, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def signing_key() -> bytes:
    """The key new events and the head are sealed with."""
    return _derive(_secrets()[0])


def verification_keys() -> list[bytes]:
    """The signing key first, then the fallbacks (earlier keys) that older events may carry."""
    return [_derive(secret) for secret in _secrets()]


def _mac(key: bytes, domain: bytes, text: str) -> str:
    return hmac.new(key, domain + text.encode(), hashlib.sha256).hexdigest()


def event_digest(event, key: bytes | None = None) -> str:
    """What event.hash must be: a keyed MAC for version 2, plain SHA-256 for legacy version 1."""
    if event.hash_version == LEGACY:
        return hashlib.sha256((event.prev_hash + event.payload()).encode()).hexdigest()
    return _mac(key or signing_key(), _EVENT_DOMAIN, event.payload())


def event_authentic(event, keys: list[bytes]) -> bool:
    if event.hash_version == LEGACY:
        return hmac.compare_digest(event_digest(event), event.hash)
    text = event.payload()
    return any(hmac.compare_digest(_mac(key, _EVENT_DOMAIN, text), event.hash) for key in keys)


def _head_text(head) -> str:
    return f"{head.seq}|{head.last_hash}|{head.legacy_seq}"


def head_seal(head, key: bytes | None = None) -> str:
    return _mac(key or signing_key(), _HEAD_DOMAIN, _head_text(head))


def head_sealed(head, keys: list[bytes]) -> bool:
    text = _head_text(head)
    return any(hmac.compare_digest(_mac(key, _HEAD_DOMAIN, text), head.seal) for key in keys)
