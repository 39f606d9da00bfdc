from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from governance.accounts.models import ApiToken, User, hash_token
from governance.audit.services import audit_record

TOKEN_PREFIX = "rmp_"


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; return it with its plain text, which is never stored or shown again."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=plain[:10], token_hash=hash_token(plain))
    audit_record(actor=user, action="api_token.create", obj=token, after={"name": name, "prefix": token.prefix})
    return token, plain


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_token.revoke", obj=token, after={"name": token.name})
