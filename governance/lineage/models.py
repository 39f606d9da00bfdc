"""Lineage: events as received, and the provenance graph built from them and from the inventory."""
from __future__ import annotations

from django.db import models


class LineageEvent(models.Model):
    """An event stored as received (idempotent on its content hash); the worker turns it into graph rows."""

    class Origin(models.TextChoices):
        PUSH = "push", "OpenLineage push"
        MARQUEZ = "marquez", "Marquez pull"
        MLFLOW = "mlflow", "MLflow pull"

    content_sha256 = models.CharField(max_length=64, unique=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.PUSH)
    event_type = models.CharField(max_length=20)
    event_time = models.DateTimeField()
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["processed_at", "id"], name="lineage_unprocessed_idx")]
        permissions = [("send_lineage", "Send OpenLineage events"), ("manage_connectors", "Configure lineage connectors")]


class NodeKind(models.TextChoices):
    DATASET = "dataset", "Dataset"
    JOB = "job", "Job / run"
    MODEL_VERSION = "model_version", "Model version"
    SYSTEM = "system", "AI system"


class LineageNode(models.Model):
    key = models.CharField(max_length=600, unique=True)  # "dataset:ns/name", "job:ns/name", "model:name@v", "system:slug"
    kind = models.CharField(max_length=20, choices=NodeKind.choices)
    namespace = models.CharField(max_length=300, blank=True)
    name = models.CharField(max_length=500)
    attributes = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["kind", "name"])]

    def __str__(self) -> str:
        return self.key


class LineageEdge(models.Model):
    class Kind(models.TextChoices):
        INPUT = "input", "read by"
        OUTPUT = "output", "produced"
        DEPLOYED_IN = "deployed_in", "deployed in"

    src = models.ForeignKey(LineageNode, on_delete=models.CASCADE, related_name="out_edges")
    dst = models.ForeignKey(LineageNode, on_delete=models.CASCADE, related_name="in_edges")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["src", "dst", "kind"], name="lineage_edge_unique")]
        indexes = [models.Index(fields=["dst"], name="lineage_edge_dst_idx")]


class Connector(models.Model):
    """A scheduled pull from a lineage store. The credential is write-only: encrypted here, or an env var name."""

    class Kind(models.TextChoices):
        MARQUEZ = "marquez", "Marquez"
        MLFLOW = "mlflow", "MLflow"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token (Authorization: Bearer …)"
        BASIC = "basic", "Basic (user:password)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100, unique=True)
    base_url = models.CharField(max_length=500)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    credential_encrypted = models.TextField(blank=True)  # Fernet token (see governance/lineage/secrets.py)
    credential_env = models.CharField(max_length=100, blank=True)  # or the name of an environment variable
    every_minutes = models.PositiveIntegerField(default=60)
    system_mapping = models.JSONField(default=list, blank=True)  # MLflow: [[glob, system slug], …], first match wins
    enabled = models.BooleanField(default=True)
    state = models.JSONField(default=dict, blank=True)  # cursor for incremental reads
    running_since = models.DateTimeField(null=True, blank=True)  # claim, so one connector never runs twice at once
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_summary = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_encrypted or self.credential_env)

    def is_due(self, now) -> bool:
        from datetime import timedelta

        return self.enabled and (self.last_run_at is None or self.last_run_at <= now - timedelta(minutes=self.every_minutes))
