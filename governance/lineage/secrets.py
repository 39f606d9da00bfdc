"""Encrypt connector credentials at rest (Fernet). The key comes from RAMPART_FIELD_KEY if set, else SECRET_KEY.

Either way the Fernet key is derived with HKDF-SHA256, so any sufficiently random string works as
RAMPART_FIELD_KEY. Set it separately from SECRET_KEY when you want to rotate one without the other:
changing the key makes stored credentials unreadable (the connector then reports it, and an admin
re-enters the credential).
"""
from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialError(Exception):
    pass


def _fernet() -> Fernet:
    secret = (settings.RAMPART_FIELD_KEY or settings.SECRET_KEY).encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rampart-field-encryption/v1",
               info=b"lineage.connector.credential").derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError("The stored credential cannot be decrypted (was RAMPART_FIELD_KEY or SECRET_KEY changed?); "
                              "enter it again.") from exc


def env_name_error(name: str) -> str | None:
    """Why a credential may not reference this variable of the worker's environment, or None. Only names that start
    with RAMPART_CREDENTIAL_ENV_PREFIX may be read: the operator puts connector secrets there, and nothing else of
    the environment (SECRET_KEY, DATABASE_URL, RAMPART_FIELD_KEY …) can be sent to a connector's URL."""
    prefix = settings.RAMPART_CREDENTIAL_ENV_PREFIX
    if not name or not name.replace("_", "").isalnum() or not name.isascii():
        return "After env: write the name of an environment variable (letters, digits, _)."
    if not prefix or not name.startswith(prefix) or name == prefix:
        return (f"Only environment variables whose names start with {prefix or '(no prefix is allowed)'} may be used "
                f"(RAMPART_CREDENTIAL_ENV_PREFIX): ask an operator to set {prefix or 'RAMPART_CONNECTOR_'}… on the worker.")
    return None


def resolve(*, encrypted: str, env_name: str) -> str:
    """The plain credential, for the outgoing request only. Never logged, never rendered."""
    if env_name:
        if refused := env_name_error(env_name):
            raise CredentialError(refused)
        value = os.environ.get(env_name)
        if value is None:
            raise CredentialError(f"Environment variable {env_name} is not set on the worker.")
        return value
    return decrypt(encrypted) if encrypted else ""
