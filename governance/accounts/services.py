from __future__ import annotations

import secrets

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.accounts.models import ApiToken, Role, User, hash_token
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


# --- people (Admin) -----------------------------------------------------------------------------------------------
# Audit events carry who the person is and what they may do; never a password, a hash or how it was chosen beyond
# "set by an admin" / "generated".


def generate_password() -> str:
    """A one-time password an admin hands over; 20 URL-safe characters, passes the validators."""
    return secrets.token_urlsafe(15)


def _user_state(user: User) -> dict:
    return {"email": user.email, "full_name": user.full_name, "roles": sorted(user.role_names),
            "is_active": user.is_active}


def _set_roles(user: User, roles) -> None:
    user.groups.set(Group.objects.filter(name__in=roles))
    user.__dict__.pop("_role_names", None)


def active_owned_systems(user: User):
    """Systems not archived whose business owner this person is: they block a deactivation."""
    from governance.inventory.models import AISystem

    return AISystem.objects.active().filter(business_owner=user).order_by("name")


@transaction.atomic
def user_create(*, actor: User, email: str, full_name: str, roles, password: str | None) -> tuple[User, str | None]:
    """Create a person with their roles. With no password one is generated and returned (show it once)."""
    generated = generate_password() if password is None else None
    user = User.objects.create_user(email=email, password=password or generated, full_name=full_name)
    _set_roles(user, roles)
    after = _user_state(user) | {"password": "generated" if generated else "set by admin"}
    audit_record(actor=actor, action="user.create", obj=user, after=after)
    return user, generated


@transaction.atomic
def user_update(*, actor: User, user: User, full_name: str, roles, is_active: bool) -> User:
    """Change name, roles and whether the person may sign in. Deactivating revokes their API tokens.

    Refused (ValidationError by field): an admin removing their own Admin role or deactivating themselves, and
    deactivating the business owner of AI systems not archived (reassign them first).
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    before = _user_state(user)
    roles = sorted(set(roles))
    errors = {}
    if user.pk == actor.pk and Role.ADMIN in before["roles"] and Role.ADMIN not in roles:
        errors["roles"] = "You cannot remove your own Admin role; ask another admin."
    if before["is_active"] and not is_active:
        if user.pk == actor.pk:
            errors["is_active"] = "You cannot deactivate yourself; ask another admin."
        else:
            blocking = list(active_owned_systems(user).values_list("name", flat=True))
            if blocking:
                errors["is_active"] = (
                    f"{user} is the business owner of {len(blocking)} active AI system"
                    f"{'s' if len(blocking) != 1 else ''}: {', '.join(blocking)}. "
                    "Reassign their ownership before deactivating."
                )
    if errors:
        raise ValidationError(errors)
    user.full_name, user.is_active = full_name, is_active
    user.save(update_fields=["full_name", "is_active"])
    _set_roles(user, roles)
    after = _user_state(user)
    changed = {k: v for k, v in after.items() if before[k] != v}
    if changed:
        action = "user.deactivate" if before["is_active"] and not is_active else "user.update"
        audit_record(actor=actor, action=action, obj=user,
                     before={k: before[k] for k in changed}, after=changed)
    if before["is_active"] and not is_active:
        for token in user.api_tokens.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, actor=actor)
    return user


@transaction.atomic
def user_password_reset(*, actor: User, user: User, password: str | None) -> str | None:
    """Set a new password (existing sessions of that person end). With none given, generate and return one."""
    user = User.objects.select_for_update().get(pk=user.pk)
    generated = generate_password() if password is None else None
    user.set_password(password or generated)
    user.save(update_fields=["password"])
    audit_record(actor=actor, action="user.password_reset", obj=user,
                 after={"password": "generated" if generated else "set by admin"})
    return generated
