from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from governance.accounts.models import ApiToken, hash_token
from governance.accounts.scopes import require_scope

LAST_USE_EVERY = timedelta(minutes=1)  # last use (time, address) is written at most this often per token


def _refuse(request, reason: str):
    """401 with `reason` in the body and in WWW-Authenticate (RFC 6750 invalid_token)."""
    request._bearer_refusal = reason
    return exceptions.AuthenticationFailed(reason)


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _record_use(token: ApiToken, request, now) -> None:
    """Time and client address of the latest use, written at most once a LAST_USE_EVERY per token."""
    if token.last_used_at is not None and now - token.last_used_at < LAST_USE_EVERY:
        return
    ip = request.META.get("REMOTE_ADDR") or None
    ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now, last_used_ip=ip)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; the token acts with its user's roles, limited to its scopes (scopes.py).

    Every refusal says why: unknown, revoked or expired (401), or the scope this route needs (403).
    """

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise _refuse(request, "Malformed Authorization header: use 'Bearer <token>'.")
        token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(header[1])).first()
        now = timezone.now()
        if token is None:
            raise _refuse(request, "Invalid API token.")
        if token.revoked_at is not None:
            raise _refuse(request, f"This API token was revoked on {_when(token.revoked_at)}.")
        if not token.user.is_active:
            raise _refuse(request, "This API token's user is deactivated.")
        if token.expires_at <= now:
            replaced = " after it was rotated; use its replacement" if token.rotated_at else ""
            raise _refuse(request, f"This API token expired on {_when(token.expires_at)}{replaced}.")
        require_scope(request, token)
        _record_use(token, request, now)
        return token.user, token

    def authenticate_header(self, request):
        reason = getattr(request, "_bearer_refusal", None)
        if reason is None:
            return 'Bearer realm="api"'
        return f'Bearer realm="api", error="invalid_token", error_description="{reason.replace(chr(34), chr(39))}"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describe bearer tokens in the OpenAPI document (registered on import)."""

    target_class = "governance.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token from /accounts/me/ or `manage.py create_api_token`."}
