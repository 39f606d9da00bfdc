"""Risk registers: risks rated on a configurable matrix, their treatment, and product-owner decisions."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, Subquery, Value, When
from django.urls import reverse
from django.utils import timezone


class RiskMatrix(models.Model):
    """The likelihood × impact matrix. One row (pk=1) is in force; changing it recomputes every risk's level."""

    likelihood_labels = models.JSONField()  # ["Rare", …] index 0 = likelihood 1
    impact_labels = models.JSONField()
    levels = models.JSONField()  # [{"key": "low", "label": "Low", "colour": "#…", "rank": 1}, …]
    cells = models.JSONField()  # cells[likelihood-1][impact-1] = level key
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def size(self) -> tuple[int, int]:
        return len(self.likelihood_labels), len(self.impact_labels)

    def level_for(self, likelihood: int | None, impact: int | None) -> str:
        """The level key of a cell; '' when the risk is not rated."""
        if not likelihood or not impact:
            return ""
        return self.cells[likelihood - 1][impact - 1]

    def level(self, key: str) -> dict | None:
        return next((lv for lv in self.levels if lv["key"] == key), None)

    def rank(self, key: str) -> int:
        lv = self.level(key)
        return lv["rank"] if lv else 0

    def level_for_rank(self, rank: int | None) -> str:
        """The label of the level of this rank ("not rated" for 0)."""
        return next((lv["label"] for lv in self.levels if lv["rank"] == rank), "not rated" if not rank else f"rank {rank}")


class RiskSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    FINDINGS = "findings", "Findings"
    LINEAGE = "lineage", "Lineage rule"
    TABLETOP = "tabletop", "Tabletop exercise"


class Treatment(models.TextChoices):
    MITIGATE = "mitigate", "Mitigate"
    ACCEPT = "accept", "Accept"
    TRANSFER = "transfer", "Transfer"
    AVOID = "avoid", "Avoid"


class RiskStatus(models.TextChoices):
    OPEN = "open", "Open"
    AWAITING_DECISION = "awaiting_decision", "Awaiting sign-off"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected — rework"
    CLOSED = "closed", "Closed"


class RiskQuerySet(models.QuerySet):
    """The definitions every screen, list, inbox, export, API answer and the gate use for risks."""

    def open(self):
        """Not closed."""
        return self.exclude(status=RiskStatus.CLOSED)

    def of_active_systems(self):
        return self.filter(system__archived_at__isnull=True)

    def accepted_in_force(self, at: datetime):
        return self.filter(Exists(Decision.objects.in_force(at).filter(risk=OuterRef("pk"))))

    def not_accepted(self, at: datetime):
        return self.exclude(Exists(Decision.objects.in_force(at).filter(risk=OuterRef("pk"))))

    def awaiting_decision(self):
        """With a sign-off request nobody has answered yet."""
        return self.filter(Exists(Decision.objects.pending().filter(risk=OuterRef("pk"))))

    def overdue(self, at: datetime):
        """Not closed, and its due date has ended in the organisation's time zone (settings.TIME_ZONE)."""
        return self.open().filter(due_date__lt=timezone.localdate(at))

    def at_least(self, rank: int):
        """Residual level of this rank or higher on the matrix in force (unrated risks have rank 0)."""
        return self.filter(residual_rank__gte=rank)

    def with_standing(self, at: datetime):
        """Annotate what is true at `at`: `current_status` (what every screen shows as the status), `accepted_until`
        (expiry of the acceptance in force, else None) and `in_force` (an acceptance is in force)."""
        in_force = Decision.objects.in_force(at).filter(risk=OuterRef("pk"))
        pending = Decision.objects.pending().filter(risk=OuterRef("pk"))
        return self.annotate(
            in_force=Exists(in_force),
            accepted_until=Subquery(in_force.order_by("-decided_at").values("expires_at")[:1]),
            current_status=Case(
                When(status=RiskStatus.CLOSED, then=Value(RiskStatus.CLOSED)),
                When(Exists(pending), then=Value(RiskStatus.AWAITING_DECISION)),
                When(Exists(in_force), then=Value(RiskStatus.ACCEPTED)),
                When(status=RiskStatus.REJECTED, then=Value(RiskStatus.REJECTED)),
                default=Value(RiskStatus.OPEN), output_field=CharField(),
            ),
        )


class Risk(models.Model):
    ref = models.CharField(max_length=20, unique=True)  # RISK-0001
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, max_length=10000)
    system = models.ForeignKey("inventory.AISystem", on_delete=models.PROTECT, related_name="risks")
    rmf_subcategories = models.ManyToManyField("rmf.RmfSubcategory", blank=True, related_name="risks")
    references = models.ManyToManyField("rmf.ReferenceItem", blank=True, related_name="risks",
                                        help_text="Trustworthiness, AI 600-1, MITRE ATLAS and OWASP LLM items.")
    source = models.CharField(max_length=20, choices=RiskSource.choices, default=RiskSource.MANUAL)
    source_ref = models.CharField(max_length=100, blank=True, help_text="e.g. the exercise or rule that raised it")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_risks")
    due_date = models.DateField(null=True, blank=True)
    inherent_likelihood = models.PositiveSmallIntegerField(null=True, blank=True)
    inherent_impact = models.PositiveSmallIntegerField(null=True, blank=True)
    residual_likelihood = models.PositiveSmallIntegerField(null=True, blank=True)
    residual_impact = models.PositiveSmallIntegerField(null=True, blank=True)
    inherent_level = models.CharField(max_length=20, blank=True)  # computed from the matrix on the server
    residual_level = models.CharField(max_length=20, blank=True)
    residual_rank = models.PositiveSmallIntegerField(default=0)
    treatment = models.CharField(max_length=10, choices=Treatment.choices, blank=True)
    treatment_plan = models.TextField(blank=True, max_length=10000)
    status = models.CharField(max_length=20, choices=RiskStatus.choices, default=RiskStatus.OPEN)
    findings = models.ManyToManyField("findings.Finding", blank=True, related_name="risks")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RiskQuerySet.as_manager()

    class Meta:
        ordering = ["-residual_rank", "ref"]
        permissions = [
            ("decide_any", "Decide on risks of any system"),
            ("decide_own", "Decide on risks of systems they own"),
            ("manage_any_risks", "Create and edit risks of any system"),
            ("manage_own_risks", "Create and edit risks of systems they own"),
        ]
        indexes = [
            models.Index(fields=["system", "status"]), models.Index(fields=["status", "-residual_rank"]),
            models.Index(fields=["owner", "status"]), models.Index(fields=["due_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("risks:detail", args=[self.ref])

    @property
    def is_overdue(self) -> bool:
        """The one-row form of RiskQuerySet.overdue, at the moment of reading."""
        return self.status != RiskStatus.CLOSED and self.due_date is not None and self.due_date < timezone.localdate()

    @property
    def status_now(self) -> str:
        """The status every screen shows: `current_status` when the selector annotated it (with_standing), else
        the same definition read now (one query)."""
        if not hasattr(self, "current_status"):
            self.current_status = Risk.objects.with_standing(timezone.now()).values_list(
                "current_status", flat=True).get(pk=self.pk)
        return self.current_status

    @property
    def status_label(self) -> str:
        return RiskStatus(self.status_now).label


class MitigationAction(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    risk = models.ForeignKey(Risk, on_delete=models.CASCADE, related_name="actions")
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    source_ref = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "due_date", "id"]

    def __str__(self) -> str:
        return self.title


class DecisionQuerySet(models.QuerySet):
    def in_force(self, at: datetime):
        """Acceptances in force at `at`: accepted, expiring after `at`, covering the risk's current residual rating
        (a rating raised above what was signed is not covered), of a risk that is not closed."""
        return (self.filter(status=Decision.Status.ACCEPTED, accepted_rank__gte=F("risk__residual_rank"))
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
                .exclude(risk__status=RiskStatus.CLOSED))

    def expiring(self, at: datetime, days: int):
        """In force at `at` and ending within `days` days of it."""
        return self.in_force(at).filter(expires_at__lte=at + timedelta(days=days))

    def pending(self):
        """Sign-off requests nobody has answered, of risks that are not closed."""
        return self.filter(status=Decision.Status.PENDING).exclude(risk__status=RiskStatus.CLOSED)

    def of_active_systems(self):
        return self.filter(risk__system__archived_at__isnull=True)


class Decision(models.Model):
    """A sign-off: requested by an engineer or the risk owner, decided by the system's product owner or a CISO."""

    class Kind(models.TextChoices):
        TREATMENT_PLAN = "treatment_plan", "Accept the treatment plan"
        RESIDUAL_RISK = "residual_risk", "Accept the residual risk"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting decision"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"

    risk = models.ForeignKey(Risk, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    request_note = models.TextField(blank=True, max_length=4000)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    justification = models.TextField(blank=True, max_length=4000)
    expires_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(null=True, blank=True, help_text="The risk as it was decided.")
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    # The residual rank the decision covers: an acceptance stays in force only while the risk is rated at or below it
    accepted_rank = models.PositiveSmallIntegerField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"]), models.Index(fields=["risk", "-requested_at"])]

    def __str__(self) -> str:
        return f"{self.risk.ref} {self.get_kind_display()} ({self.status})"

    def is_in_force(self, at: datetime | None = None) -> bool:
        """The one-row form of DecisionQuerySet.in_force (reads the risk)."""
        at = at or timezone.now()
        return (self.status == self.Status.ACCEPTED and self.accepted_rank is not None
                and self.accepted_rank >= self.risk.residual_rank and self.risk.status != RiskStatus.CLOSED
                and (self.expires_at is None or self.expires_at > at))


# The severities a gate policy may block on (info never blocks), most severe first.
BLOCKING_SEVERITIES = ["critical", "high", "medium", "low"]


class GatePolicy(models.Model):
    """What blocks a release, per risk tier (NIST AI RMF MANAGE 1.1)."""

    tier = models.CharField(max_length=10, unique=True)
    blocking_finding_severities = models.JSONField(default=list, help_text="Open findings past SLA of these severities block.")
    blocking_open_severities = models.JSONField(default=list, blank=True,
                                                help_text="Open findings of these severities block even within their SLA.")
    max_unaccepted_level = models.CharField(max_length=20, blank=True,
                                            help_text="Residual levels above this need a valid acceptance.")
    required_subcategories = models.JSONField(default=list, help_text="RMF subcategories that must be assessed.")
    block_unrated_risks = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"gate policy for {self.tier} tier"

    def as_dict(self) -> dict:
        return {"tier": self.tier, "blocking_finding_severities": list(self.blocking_finding_severities),
                "blocking_open_severities": list(self.blocking_open_severities or []),
                "max_unaccepted_level": self.max_unaccepted_level,
                "required_subcategories": list(self.required_subcategories),
                "block_unrated_risks": self.block_unrated_risks}


class ReleaseSignoff(models.Model):
    """The product owner's go / no-go for a named release of their system, with the release gate as it stood at
    that moment (reasons, counts, policy) frozen and hashed into the audit chain. A "go" is only recorded while the
    gate says go; a "no-go" always can be. The latest sign-off of a release is the one in force."""

    class Verdict(models.TextChoices):
        GO = "go", "Go"
        NO_GO = "no-go", "No-go"

    system = models.ForeignKey("inventory.AISystem", on_delete=models.PROTECT, related_name="release_signoffs")
    release = models.CharField(max_length=100, help_text="The release's name, e.g. a version tag: v2.3.0")
    verdict = models.CharField(max_length=5, choices=Verdict.choices)
    justification = models.TextField(max_length=4000)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)
    gate = models.JSONField(help_text="The gate's answer and the policy it applied, when this was signed.")
    gate_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["system", "release", "-signed_at"])]

    def __str__(self) -> str:
        return f"{self.system.slug} {self.release}: {self.verdict}"

    def get_absolute_url(self) -> str:
        return reverse("risks:signoff", args=[self.pk])

    @property
    def gate_decision(self) -> str:
        return self.gate["result"]["decision"]

    @classmethod
    def of(cls, system, release: str = ""):
        """A system's sign-offs, newest first (of one release when named)."""
        qs = cls.objects.filter(system=system).select_related("system", "signed_by").order_by("-signed_at", "-id")
        return qs.filter(release=release.strip()) if release.strip() else qs

    @classmethod
    def latest_of(cls, system, release: str = "") -> "ReleaseSignoff | None":
        """The sign-off in force: the latest of that release (of any release when none is named)."""
        return cls.of(system, release).first()
