from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models


class Role(models.TextChoices):
    CISO = "CISO", "CISO"
    PRODUCT_OWNER = "Product owner", "Product owner"
    ENGINEER = "Engineer", "Engineer"
    FACILITATOR = "Facilitator", "Facilitator"
    ADMIN = "Admin", "Admin"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, email):
        """Log-in looks the address up case-insensitively (addresses are stored lower-cased)."""
        return self.get(email__iexact=email)

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """People log in with their email address; roles are Django groups."""

    username = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    must_change_password = models.BooleanField(
        default=False, help_text="Set when an admin chose the password (or asked for a new one): until the person "
                                 "changes it, every page sends them to do so (accounts/middleware.py).")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["email"]
        permissions = [("manage_users", "Manage users and their roles")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def role_names(self) -> set[str]:
        if not hasattr(self, "_role_names"):
            self._role_names = set(self.groups.values_list("name", flat=True))
        return self._role_names

    def has_role(self, *roles: str) -> bool:
        return self.is_superuser or bool(self.role_names.intersection(roles))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Scope(models.TextChoices):
    """What an API token may do (within its user's role, never beyond it). Routes map to scopes in scopes.py."""

    READ = "read", "read — GET anything your role may read"
    IMPORT = "import", "import — upload scanner reports, read import runs"
    LINEAGE = "lineage", "lineage — send OpenLineage events"
    GATE = "gate", "gate — read a system's release gate, nothing else"
    WRITE = "write", "write — other changes: systems, risks, decisions"


TOKEN_DEFAULT_DAYS = 90
GRACE_DEFAULT_HOURS = 24
GRACE_MAX_HOURS = 7 * 24


class ApiTokenQuerySet(models.QuerySet):
    def holding_name(self):
        """Neither rotated nor revoked: the one token per user that holds its name (token_name_unique_per_user)."""
        return self.filter(rotated_at__isnull=True, revoked_at__isnull=True)

    def live(self, *, at):
        """Tokens that authenticate at `at`: not revoked, not expired (a rotated token works until its grace ends)."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=at)

    def expiring(self, *, at, days: int):
        """Live tokens ending within `days` of `at` that nobody replaced yet and that lived longer than `days`."""
        return self.live(at=at).filter(rotated_at__isnull=True, expires_at__lte=at + timedelta(days=days),
                                       lifetime_days__gt=days)


class ApiToken(models.Model):
    """A bearer token for scripts and CI. Only its sha256 is stored.

    It acts with its user's role, limited to its scopes, until `expires_at`. Rotating it makes a successor with the
    same name, scopes and lifetime and moves this one's expiry to the end of a grace period (`rotated_at` set).
    """

    class State(models.TextChoices):
        ACTIVE = "active", "active"
        GRACE = "grace", "rotated, works until it expires"
        EXPIRED = "expired", "expired"
        REVOKED = "revoked", "revoked"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise the token.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(help_text="Scope values (see Scope); a route needs one of the scopes it lists.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    lifetime_days = models.PositiveIntegerField(help_text="Chosen at creation; a rotation's successor gets it too.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A rotated token keeps its name beside its successor; a revoked one frees the name.
            models.UniqueConstraint(fields=["user", "name"], name="token_name_unique_per_user",
                                    condition=models.Q(rotated_at__isnull=True, revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, *, at) -> str:
        if self.revoked_at is not None:
            return self.State.REVOKED
        if self.expires_at <= at:
            return self.State.EXPIRED
        return self.State.GRACE if self.rotated_at is not None else self.State.ACTIVE

    def has_any_scope(self, scopes) -> bool:
        return bool(set(self.scopes).intersection(scopes))
