from __future__ import annotations

import json
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

GENESIS_HASH = "0" * 64

# What the audit page filters by: the part of an action before its first dot ("decision" covers decision.accept,
# decision.reject, decision.request ...). tests/audit/test_audit_page.py checks every action written has a kind here.
EVENT_KINDS = [
    ("decision", "Sign-off decisions"), ("release", "Release sign-offs"), ("risk", "Risks"),
    ("mitigation", "Mitigation actions"), ("risk_matrix", "Risk matrix"),
    ("gate_policy", "Release gate policy"), ("finding", "Findings triage"),
    ("mapping_rule", "Mapping rules"), ("import", "Imports"), ("pull_source", "Scheduled pulls"),
    ("system", "AI systems"), ("model", "Models"), ("dataset", "Datasets"), ("rmf", "RMF assessments"),
    ("exercise", "Exercises"), ("scenario", "Scenarios"), ("lineage", "Lineage connectors"), ("user", "People"),
    ("two_factor", "Two-factor sign-in"),
    ("api_token", "API tokens"), ("saved_view", "Saved views"), ("audit", "Audit trail checks"),
]

# Not a decision or change a person made, even when a person started it: data arriving (imports, pulls and connector
# runs started now) and checks of the trail itself.
NOT_BY_PEOPLE = ("import.", "pull_source.pull_now", "lineage.connector.run_now", "audit.")


class AuditEventQuerySet(models.QuerySet):
    def of_kind(self, kind: str) -> AuditEventQuerySet:
        return self.filter(action__startswith=kind + ".")

    def by_people(self) -> AuditEventQuerySet:
        """Decisions and changes people made: written with a user as actor (not the worker or a scheduled job),
        and not of the kinds in NOT_BY_PEOPLE. Posture's latest changes and the audit page's "people only"."""
        noise = Q()
        for prefix in NOT_BY_PEOPLE:
            noise |= Q(action__startswith=prefix)
        return self.exclude(actor_key="").exclude(noise)


class AuditHead(models.Model):
    """One row: the end of the chain. Locked while appending so the chain stays linear."""

    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    legacy_seq = models.BigIntegerField(default=0, help_text="Events up to here may be legacy (version 1).")
    seal = models.CharField(max_length=64, blank=True, help_text="Keyed MAC of seq, last_hash and legacy_seq.")


class AuditEvent(models.Model):
    """Append-only, hash-chained record of every write made through a service."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_key = models.CharField(max_length=64, blank=True, help_text="User id when written, hashed.")
    actor_label = models.CharField(max_length=254, help_text="Email or 'system' when written.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    system = models.ForeignKey(
        "inventory.AISystem", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    system_key = models.CharField(max_length=64, blank=True, help_text="System id when written, hashed.")
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    hash_version = models.PositiveSmallIntegerField(default=2, help_text="1: SHA-256 (legacy); 2: keyed MAC.")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["system", "-seq"]), models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def payload(self) -> str:
        """The canonical text that the hash covers (what it covers depends on the event's hash version)."""
        if self.hash_version == 1:
            body = {
                "seq": self.seq,
                "at": self.at.isoformat(),
                "actor": self.actor_label,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "object_repr": self.object_repr,
                "system": self.system_key,
                "before": self.before,
                "after": self.after,
            }
            return json.dumps(body, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
        # Every column but the row id; actor_id and system_id are checked against actor_key and system_key
        # (the keys stay when a deleted user or system nulls the foreign key).
        body = {
            "v": self.hash_version,
            "seq": self.seq,
            "at": self.at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor_key": self.actor_key,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "system_key": self.system_key,
            "before": _canonical_numbers(self.before),
            "after": _canonical_numbers(self.after),
            "prev_hash": self.prev_hash,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _canonical_numbers(value):
    """Integral floats as the integers PostgreSQL's jsonb gives back (1.0 -> 1, 1e16 -> 10000000000000000)."""
    if isinstance(value, float):
        return int(Decimal(repr(value))) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _canonical_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(v) for v in value]
    return value
