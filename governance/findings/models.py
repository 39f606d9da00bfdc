"""Scanner findings, the import runs that bring them, and the rules that route them to systems."""
from __future__ import annotations

import fnmatch
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from governance.findings.fields import JSONTextField, SearchTermsField


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


SEVERITY_RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1}


class FindingState(models.TextChoices):
    NEW = "new", "New"
    CONFIRMED = "confirmed", "Confirmed"
    FALSE_POSITIVE = "false_positive", "False positive"
    RISK_ACCEPTED = "risk_accepted", "Risk accepted"
    FIXED = "fixed", "Fixed"
    CLOSED = "closed", "Closed"


OPEN_STATES = (FindingState.NEW, FindingState.CONFIRMED)
HUMAN_DECISIONS = (FindingState.FALSE_POSITIVE, FindingState.RISK_ACCEPTED)  # a person says why (a reason)
# The states a person may move a finding to, each from which states (imports move the others: closed, reopened).
MOVES_BY_HAND = {
    FindingState.CONFIRMED: {FindingState.NEW, FindingState.FALSE_POSITIVE, FindingState.RISK_ACCEPTED},
    FindingState.FALSE_POSITIVE: {FindingState.NEW, FindingState.CONFIRMED},
    FindingState.RISK_ACCEPTED: {FindingState.NEW, FindingState.CONFIRMED},
    FindingState.FIXED: {FindingState.NEW, FindingState.CONFIRMED, FindingState.RISK_ACCEPTED},
    FindingState.NEW: {FindingState.FALSE_POSITIVE, FindingState.RISK_ACCEPTED, FindingState.FIXED,
                       FindingState.CONFIRMED},
}


class FindingQuerySet(models.QuerySet):
    """The definitions every screen, list, export, API answer and the gate count with."""

    def open(self):
        """Still to be dealt with: new or confirmed (not fixed, closed, false positive or accepted)."""
        return self.filter(state__in=OPEN_STATES)

    def past_sla(self, at: datetime):
        """Open and due before the moment `at` (a finding due exactly at `at` is not yet late)."""
        return self.open().filter(sla_due__lt=at)

    def in_portfolio(self):
        """Of an active (not archived) system, or of no system yet (an unassigned feed): what posture counts."""
        from governance.inventory.models import AISystem

        return self.exclude(system_id__in=AISystem.objects.archived().values("id"))


def report_path(instance, filename: str) -> str:
    return f"imports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class ImportRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Via(models.TextChoices):
        UPLOAD = "upload", "Upload"
        API = "api", "API"
        CLI = "cli", "Command line"
        PULL = "pull", "Scheduled pull"
        LINEAGE = "lineage", "Lineage rules"

    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.SET_NULL, related_name="import_runs")
    source = models.CharField(max_length=100, help_text="Names the scope with the system: reimports of a source replace it.")
    format = models.CharField(max_length=20)
    detected_format = models.CharField(max_length=20, blank=True)
    repository = models.CharField(max_length=300, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.UPLOAD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    incomplete = models.TextField(blank=True, help_text="Why the report did not examine everything it covers; its "
                                  "findings it did not list were then left open (counts.held_open).")
    report = models.FileField(upload_to=report_path, blank=True, max_length=300)
    filename = models.CharField(max_length=255, blank=True)
    report_discarded = models.BooleanField(default=False, help_text="The file held secrets and was deleted after import.")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When its message last reached the broker (empty: never; resent then).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pull_source = models.ForeignKey("findings.PullSource", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["system", "-created_at"]), models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.source} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("findings:import-detail", args=[self.pk])

    @staticmethod
    def lease_from(moment: datetime) -> datetime:
        """Until when a worker owns a running import without renewing it (renewed after every batch)."""
        return moment + timedelta(seconds=settings.RAMPART_IMPORT_LEASE_SECONDS)

    @property
    def scope_label(self) -> str:
        source = self.source or "source named after the detected format"  # set by the worker (imports._named_source)
        return f"{self.system.name if self.system else 'routed by rules'} · {source}"


class Finding(models.Model):
    scope_key = models.CharField(max_length=140, help_text="'<system id or unassigned>:<source>'")
    # No index of its own: finding_sys_state_idx starts with system (one index less to write per imported row).
    # No database FK check either: it cost 0.5 s at the commit of a 100k import (one deferred check per row).
    # Django still cascades deletes; systems are archived, never deleted, by the product.
    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="findings", db_index=False, db_constraint=False)
    source = models.CharField(max_length=100)
    tool = models.CharField(max_length=60)
    fingerprint = models.CharField(max_length=64)
    fingerprint_version = models.CharField(max_length=30)
    content_hash = models.CharField(max_length=32)
    title = models.CharField(max_length=500)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    severity_rank = models.PositiveSmallIntegerField()
    tool_severity = models.CharField(max_length=60, blank=True)
    rule_id = models.CharField(max_length=300, blank=True)
    location = models.CharField(max_length=1000, blank=True)
    artifact = models.CharField(max_length=1000, blank=True)
    package = models.CharField(max_length=300, blank=True)
    line = models.IntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    remediation = models.TextField(blank=True)
    raw = JSONTextField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=FindingState.choices, default=FindingState.NEW)
    first_seen = models.DateTimeField()
    # When an import last wrote this row; for a finding that is still reported, its scope's latest import saw it
    # later than that (see reported_at): an unchanged finding is not rewritten by every reimport.
    last_seen = models.DateTimeField()
    gone = models.BooleanField(default=False, help_text="Not in the latest report of its scope (system + source).")
    state_changed_at = models.DateTimeField()
    sla_due = models.DateTimeField(null=True, blank=True, help_text="first seen + the SLA days of its severity")
    # The import that last wrote this row: no index and no database FK check (Django still applies SET_NULL
    # when a run is deleted, by a scan: runs are not deleted in the product).
    last_import = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False, db_constraint=False)
    terms = SearchTermsField(default=list, blank=True, editable=False)  # word hashes for the text search
    # indexed by finding_assignee_idx, only where set (new findings have no assignee: nothing to write)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_findings", db_index=False)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-severity_rank", "-id"]
        permissions = [("triage_findings", "Triage scanner findings")]
        constraints = [models.UniqueConstraint(fields=["scope_key", "fingerprint"], name="finding_unique_in_scope")]
        indexes = [
            models.Index(fields=["-severity_rank", "-id"], name="finding_sev_idx"),
            # triaged states only: an import writes nothing to it (new findings are in finding_sev_idx)
            models.Index(fields=["state", "-severity_rank", "-id"], name="finding_triaged_sev_idx",
                         condition=~Q(state="new")),
            models.Index(fields=["system", "state", "-severity_rank", "-id"], name="finding_sys_state_idx"),
            models.Index(fields=["sla_due", "id"], name="finding_sla_idx"),
            # "newest first" with a scanner picked (selectors.queue_page orders by -id for it) or a triaged state:
            # an index of their own, or PostgreSQL walks the primary key past every newer finding that does not match
            models.Index(F("tool"), F("id") * -1, name="finding_tool_newest_idx"),
            models.Index(fields=["state", "-id"], name="finding_state_newest_idx", condition=~Q(state="new")),
            models.Index(fields=["assignee", "-severity_rank", "-id"], name="finding_assignee_idx",
                         condition=Q(assignee__isnull=False)),
            models.Index(fields=["tool", "-severity_rank", "-id"], name="finding_tool_idx"),
            # PostgreSQL also has finding_terms_gin (migration 0006): a GIN index on terms for the text search
            # (governance.findings.search).
        ]

    def __str__(self) -> str:
        return self.title[:80]

    def get_absolute_url(self) -> str:
        return reverse("findings:detail", args=[self.pk])

    @property
    def reported_at(self):
        """When a scanner last reported it: the latest import of its scope, unless it has gone from that report.
        Needs `scope_seen`, which selectors.with_reported_at annotates (no hidden query per row)."""
        if self.gone:
            return self.last_seen
        if not hasattr(self, "scope_seen"):
            raise AttributeError("Finding.reported_at needs the scope_seen annotation: read it through "
                                 "governance.findings.selectors.with_reported_at().")
        return max(self.last_seen, self.scope_seen) if self.scope_seen else self.last_seen

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def is_past_sla(self, at: datetime | None = None) -> bool:
        """The one-row form of FindingQuerySet.past_sla."""
        return self.is_open and self.sla_due is not None and self.sla_due < (at or timezone.now())


class FindingScope(models.Model):
    """A system + source (or the unassigned queue + source): what a reimport reconciles. Its findings that are
    not gone were in the report of its latest import."""

    key = models.CharField(max_length=140, unique=True, help_text="'<system id or unassigned>:<source>'")
    last_import = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def key_of(system_id: int | None, source: str) -> str:
        """The scope's key, as findings and scopes store it."""
        return f"{system_id or 'unassigned'}:{source}"

    @staticmethod
    def system_of(key: str) -> int | None:
        system = key.split(":", 1)[0]
        return None if system == "unassigned" else int(system)


class FindingTerm(models.Model):
    """A word of some finding's title, location or rule id, once (governance.findings.search)."""

    hash = models.BigIntegerField(primary_key=True)
    word = models.TextField()

    def __str__(self) -> str:
        return self.word


class FindingTransition(models.Model):
    """One change of a finding's state: who, when, why."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=20, choices=FindingState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=FindingState.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True, max_length=2000)
    import_run = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["at", "id"]


class MappingRule(models.Model):
    """Routes findings imported without a system to the system whose rule matches."""

    class Kind(models.TextChoices):
        ARTIFACT_GLOB = "artifact_glob", "Artifact path glob"
        MODEL_NAME = "model_name", "Model name"
        REPOSITORY = "repository", "Repository"

    system = models.ForeignKey("inventory.AISystem", on_delete=models.CASCADE, related_name="mapping_rules")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    pattern = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["system", "kind", "pattern"]
        constraints = [models.UniqueConstraint(fields=["system", "kind", "pattern"], name="mapping_rule_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.pattern}"

    def matches(self, place: str, repository: str = "") -> bool:
        """Does a finding at `place` (its artifact, else its location), in a report of `repository`, belong to
        this rule's system? Globs and repositories are matched case-sensitively, model names in any case."""
        if self.kind == self.Kind.ARTIFACT_GLOB:
            return fnmatch.fnmatchcase(place, self.pattern)
        if self.kind == self.Kind.MODEL_NAME:
            return self.pattern.lower() in place.lower()
        return bool(repository) and fnmatch.fnmatchcase(repository, self.pattern)


class PullSource(models.Model):
    """A report fetched on a schedule: an HTTP(S) URL or a drop folder."""

    class Kind(models.TextChoices):
        URL = "url", "HTTP(S) URL"
        FOLDER = "folder", "Drop folder"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    location = models.CharField(max_length=500)
    format = models.CharField(max_length=20, default="auto")
    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.CASCADE, related_name="pull_sources")
    every_minutes = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SavedView(models.Model):
    """A person's named queue filter, listed above the queue for them alone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_finding_views")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=1000, blank=True, help_text="The filter as the queue's URL writes it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("findings:queue") + (f"?{self.query}" if self.query else "")


COMMENT_MAX = 4000


class FindingComment(models.Model):
    """A note on a finding; @mentions e-mail the people they name."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField(max_length=COMMENT_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on #{self.finding_id}"


class FindingBulkAction(models.Model):
    """One triage action applied to every finding a queue filter matched: what the audit event of it points at."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20)
    filter = models.CharField(max_length=1000, blank=True, help_text="The queue filter, as its URL writes it.")
    matched = models.PositiveIntegerField(help_text="Findings the filter matched (the count the person confirmed).")
    changed = models.PositiveIntegerField(help_text="Findings the action changed (others were already so).")
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} on {self.matched} findings matching “{self.filter or 'everything'}”"
