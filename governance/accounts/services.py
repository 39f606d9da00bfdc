from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.accounts import twofactor
from governance.accounts.models import (GRACE_DEFAULT_HOURS, GRACE_MAX_HOURS, TOKEN_DEFAULT_DAYS, ApiToken, Role, Scope,
                                       User, hash_token)
from governance.audit.services import audit_record

TOKEN_PREFIX = "rmp_"
log = logging.getLogger(__name__)


def _check_token_choices(*, scopes, days: int) -> list[str]:
    """The scopes in their canonical order; ValidationError (by field) for unknown scopes or a lifetime out of range."""
    errors = {}
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        errors["scopes"] = (f"Unknown scope {', '.join(unknown)}; choose from {', '.join(Scope.values)}." if unknown
                            else "Choose at least one scope.")
    if not 1 <= days <= settings.RAMPART_API_TOKEN_MAX_DAYS:
        errors["days"] = f"A token lives between 1 and {settings.RAMPART_API_TOKEN_MAX_DAYS} days."
    if errors:
        raise ValidationError(errors)
    return [s for s in Scope.values if s in scopes]


def _token_state(token: ApiToken) -> dict:
    return {"name": token.name, "prefix": token.prefix, "scopes": token.scopes, "expires_at": token.expires_at}


def _new_token(*, user: User, name: str, scopes: list[str], days: int, now) -> tuple[ApiToken, str]:
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=plain[:10], token_hash=hash_token(plain),
                                    scopes=scopes, lifetime_days=days, expires_at=now + timedelta(days=days))
    return token, plain


@transaction.atomic
def api_token_create(*, user: User, name: str, scopes=tuple(Scope.values),
                     days: int = TOKEN_DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """Create a token; return it with its plain text, which is never stored or shown again.

    The screens and the command always pass the scopes the person chose; the default (every scope) serves code and
    tests that act as a user.
    """
    scopes = _check_token_choices(scopes=scopes, days=days)
    token, plain = _new_token(user=user, name=name, scopes=scopes, days=days, now=timezone.now())
    audit_record(actor=user, action="api_token.create", obj=token, after=_token_state(token))
    return token, plain


@transaction.atomic
def api_token_rotate(*, token: ApiToken, actor: User,
                     grace_hours: int = GRACE_DEFAULT_HOURS) -> tuple[ApiToken, str]:
    """A successor with the same name, scopes and lifetime; the old token keeps working for `grace_hours` (or until
    its own expiry, if sooner), so scripts can switch without downtime. Returns the successor and its plain text.

    Refused (ValidationError): a revoked token, one already rotated, a grace outside 1..GRACE_MAX_HOURS.
    """
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError("A revoked token cannot be rotated; create a new one.")
    if token.rotated_at is not None:
        raise ValidationError("This token was rotated already; rotate its replacement instead.")
    if not 1 <= grace_hours <= GRACE_MAX_HOURS:
        raise ValidationError({"grace_hours": f"The grace period is between 1 and {GRACE_MAX_HOURS} hours."})
    now = timezone.now()
    before = _token_state(token)
    token.rotated_at = now
    token.expires_at = min(token.expires_at, now + timedelta(hours=grace_hours))
    token.save(update_fields=["rotated_at", "expires_at"])
    successor, plain = _new_token(user=token.user, name=token.name, scopes=token.scopes, days=token.lifetime_days,
                                  now=now)
    audit_record(actor=actor, action="api_token.rotate", obj=token, before=before,
                 after={"expires_at": token.expires_at, "grace_hours": grace_hours,
                        "successor": _token_state(successor)})
    return successor, plain


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_token.revoke", obj=token, after={"name": token.name})


def api_tokens_warn_expiring(*, now=None, days: int | None = None) -> int:
    """E-mail the owner of each token that expires within `days` (RAMPART_API_TOKEN_WARN_DAYS), once per token.

    Each token is claimed with a conditional UPDATE before its mail goes out, so two runs at once never send twice;
    when sending fails the claim is released and the next run tries again.
    """
    now = now or timezone.now()
    days = settings.RAMPART_API_TOKEN_WARN_DAYS if days is None else days
    sent = 0
    soon = ApiToken.objects.expiring(at=now, days=days).filter(expiry_warned_at__isnull=True, user__is_active=True)
    for token in soon.select_related("user"):
        if not ApiToken.objects.filter(pk=token.pk, expiry_warned_at__isnull=True).update(expiry_warned_at=now):
            continue
        try:
            send_mail(*_expiry_mail(token), settings.DEFAULT_FROM_EMAIL, [token.user.email], fail_silently=False)
        except Exception as exc:  # the next run tries again; the page shows the expiry meanwhile
            ApiToken.objects.filter(pk=token.pk, expiry_warned_at=now).update(expiry_warned_at=None)
            log.warning("Could not warn %s that API token %s expires: %s", token.user.email, token.prefix, exc)
        else:
            sent += 1
    return sent


def _expiry_mail(token: ApiToken) -> tuple[str, str]:
    when = timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    link = f"{settings.BASE_URL.rstrip('/')}{reverse('accounts:profile')}"
    return (f"[Rampart] API token “{token.name}” expires {when}",
            f"Your API token “{token.name}” ({token.prefix}…, scopes: {', '.join(token.scopes)}) stops working on "
            f"{when}.\n\nRotate it on My account to get a replacement with the same name and scopes; the old token "
            f"keeps working for the grace period you choose, so your scripts can switch without downtime.\n\n{link}\n")


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
    """Create a person with their roles. With no password one is generated and returned (show it once). Either way
    an admin knows it: the person must choose their own at first sign-in."""
    generated = generate_password() if password is None else None
    user = User.objects.create_user(email=email, password=password or generated, full_name=full_name,
                                    must_change_password=True)
    _set_roles(user, roles)
    after = _user_state(user) | {"password": "generated" if generated else "set by admin", "must_change_password": True}
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
    """Set a new password (existing sessions of that person end). With none given, generate and return one.

    Someone else's password an admin knows: they must change it at their next sign-in (not so for an admin's own)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    generated = generate_password() if password is None else None
    user.set_password(password or generated)
    user.must_change_password = user.pk != actor.pk
    user.save(update_fields=["password", "must_change_password"])
    audit_record(actor=actor, action="user.password_reset", obj=user,
                 after={"password": "generated" if generated else "set by admin",
                        "must_change_password": user.must_change_password})
    return generated


@transaction.atomic
def user_password_change_require(*, actor: User, user: User) -> User:
    """Keep the password but make the person choose a new one: from their next page on (every session of theirs),
    nothing but the change page, sign-out and API tokens works until they have."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.must_change_password:
        user.must_change_password = True
        user.save(update_fields=["must_change_password"])
        audit_record(actor=actor, action="user.password_change_required", obj=user,
                     after={"must_change_password": True})
    return user


@transaction.atomic
def password_change(*, user: User, password: str) -> User:
    """A person sets their own password (validated by the form). Their other sessions end (Django ties a session to
    the password hash; the view keeps the current one); a password change an admin asked for is done."""
    user = User.objects.select_for_update().get(pk=user.pk)
    required = user.must_change_password
    user.set_password(password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    audit_record(actor=user, action="user.password_change", obj=user,
                 after={"password": "changed by its owner", "was_required": required})
    return user


# --- two-factor sign-in (twofactor.py reads and checks) -------------------------------------------------------------
# Events name the device kind and counts; never a key or a code.

def _new_recovery_codes(user: User):
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(twofactor.RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def two_factor_enable(*, user: User, key: str, step: int):
    """Save the authenticator the person confirmed (key from the enrolment, `step` the time step of the code that
    confirmed it: that code cannot be used again) with fresh recovery codes. Returns (device, recovery codes)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", key=key, confirmed=True, last_t=step)
    codes = _new_recovery_codes(user)
    audit_record(actor=user, action="two_factor.enable", obj=user,
                 after={"device": "totp", "recovery_codes": len(codes)})
    return device, codes


@transaction.atomic
def two_factor_disable(*, actor: User, user: User) -> None:
    """Remove the authenticator and the recovery codes: by the person (after a code) or by an admin (a lost phone).
    Where the role requires two-factor, the person's next page is the enrolment (middleware.py)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    removed = TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
    if removed:
        audit_record(actor=actor, action="two_factor.disable" if actor.pk == user.pk else "two_factor.reset",
                     obj=user, after={"required_for_role": twofactor.is_required(user)})


@transaction.atomic
def recovery_codes_renew(*, user: User) -> list[str]:
    """Replace every recovery code (the old ones stop working); returns the new ones, shown once."""
    user = User.objects.select_for_update().get(pk=user.pk)
    codes = _new_recovery_codes(user)
    audit_record(actor=user, action="two_factor.recovery_codes", obj=user, after={"recovery_codes": len(codes)})
    return codes


@transaction.atomic
def two_factor_code_failed(*, user: User, where: str) -> None:
    audit_record(actor=user, action="two_factor.code_failed", obj=user, after={"where": where})


@transaction.atomic
def two_factor_recovery_code_used(*, user: User, where: str) -> int:
    """Record a recovery code spent; returns how many are left."""
    left = twofactor.recovery_codes_left(user)
    audit_record(actor=user, action="two_factor.recovery_code_used", obj=user,
                 after={"where": where, "recovery_codes_left": left})
    return left
