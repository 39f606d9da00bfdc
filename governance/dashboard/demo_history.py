"""A past for the demo portfolio, so `make run` shows posture over time: the demo's systems, findings and risks are
dated back over the last weeks (a finding first seen N days ago, some of them fixed since, with their transitions), and
the daily snapshots are then replayed from that history by the same backfill an installation runs
(`snapshots_backfill`). Only for the demo: it rewrites dates that the real product records as they happen."""
from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from governance.dashboard.models import PostureSnapshot
from governance.dashboard.snapshots import snapshot_take, snapshots_backfill
from governance.findings.models import Finding, FindingState, FindingTransition, ImportRun
from governance.findings.sla import sla_due
from governance.inventory.models import AISystem
from governance.risks.models import Decision, Risk

HISTORY_DAYS = 120
FIXED_SHARE = 0.35  # of the demo's findings, fixed some days after they were first seen


@transaction.atomic
def seed_history(days: int = HISTORY_DAYS) -> int:
    """Date the demo back and replay its snapshots (idempotent: nothing happens once snapshots exist)."""
    if PostureSnapshot.objects.exists():
        return 0
    rng, now = random.Random(42), timezone.now()
    AISystem.objects.update(created_at=now - timedelta(days=days + 1))
    for risk in Risk.objects.annotate(promoted=Min("improvement_items__promoted_at")):
        created = risk.promoted or now - timedelta(days=rng.randint(10, days - 5))  # from an exercise: when promoted
        Risk.objects.filter(pk=risk.pk).update(created_at=created)
        _date_decisions(risk.pk, created, now, rng)
    transitions = []
    findings = list(Finding.objects.filter(state__in=(FindingState.NEW, FindingState.CONFIRMED)).order_by("pk"))
    for finding in findings:
        finding.first_seen = now - timedelta(days=rng.randint(2, days - 2), hours=rng.randint(0, 23))
        finding.sla_due = sla_due(finding.severity, finding.first_seen)
        if rng.random() < FIXED_SHARE:
            fixed_at = finding.first_seen + (now - finding.first_seen) * rng.uniform(0.1, 0.9)
            transitions.append(FindingTransition(finding=finding, from_state=finding.state,
                                                 to_state=FindingState.FIXED, at=fixed_at,
                                                 reason="Fixed in the demo's history."))
            finding.state, finding.state_changed_at = FindingState.FIXED, fixed_at
        else:
            finding.state_changed_at = finding.first_seen
    Finding.objects.bulk_update(findings, ["first_seen", "sla_due", "state", "state_changed_at"], batch_size=500)
    FindingTransition.objects.bulk_create(transitions)
    _date_imports()
    today = timezone.localdate()
    written = snapshots_backfill(first=today - timedelta(days=days), last=today - timedelta(days=1))
    return written + snapshot_take(at=now)


def _date_decisions(risk_id: int, created, now, rng: random.Random) -> None:
    """A risk's sign-offs requested a few days after it was raised and decided a few days later, in its order. An
    acceptance keeps its expiry (still in the future, or already passed for the expired one); the audit events stay
    as they were recorded."""
    at = created
    for decision in Decision.objects.filter(risk_id=risk_id).order_by("requested_at", "id"):
        at = min(at + timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 8)), now - timedelta(days=2))
        requested, decided = at, None
        if decision.decided_at is not None:
            at = decided = min(at + timedelta(days=rng.randint(1, 4), hours=rng.randint(1, 6)), now - timedelta(days=1))
            if decision.expires_at is not None:
                decided = min(decided, decision.expires_at - timedelta(hours=1))
        Decision.objects.filter(pk=decision.pk).update(requested_at=requested, decided_at=decided)


def _date_imports() -> None:
    """Each import run dated to the first time its findings were seen (the earliest, as the demo dates them apart)."""
    first = dict(Finding.objects.filter(last_import__isnull=False).values("last_import")
                 .annotate(first=Min("first_seen")).values_list("last_import", "first"))
    for run in ImportRun.objects.filter(pk__in=list(first)):
        took = (run.finished_at - run.started_at) if run.finished_at and run.started_at else timedelta(seconds=2)
        created = first[run.pk] - timedelta(minutes=1)
        started = created + timedelta(seconds=3)
        ImportRun.objects.filter(pk=run.pk).update(created_at=created, started_at=started, finished_at=started + took)
