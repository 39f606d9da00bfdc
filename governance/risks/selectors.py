"""Reads for the register screens: a fixed number of queries whatever the number of risks."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from governance.findings.models import OPEN_STATES
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision, ReleaseSignoff, Risk, RiskStatus


@dataclass
class RiskFilters:
    system: str = ""
    level: str = ""  # exactly this residual level, or "unrated"
    min_level: str = ""  # this residual level or higher
    status: str = ""  # "" = all but closed, "all", or a RiskStatus (as shown: current_status)
    owner: int | None = None
    overdue: bool = False
    awaiting: bool = False
    unaccepted: bool = False  # no acceptance in force
    expiring: int | None = None  # with an acceptance in force that ends within this many days
    archived: bool = False  # also risks of archived systems (always, when `system` names one)
    q: str = ""
    cell: tuple[str, int, int] | None = None  # ("inherent" or "residual", likelihood, impact): one matrix cell
    at: datetime | None = None  # the moment the register is read at (default: now)


def register_queryset(f: RiskFilters, matrix=None) -> QuerySet[Risk]:
    at = f.at or timezone.now()
    qs = Risk.objects.with_standing(at).select_related("system", "owner").annotate(
        open_findings=Count("findings", filter=Q(findings__state__in=OPEN_STATES), distinct=True),
        action_count=Count("actions", distinct=True),
    )
    if f.system:
        qs = qs.filter(system__slug=f.system)
    elif not f.archived:
        qs = qs.of_active_systems()
    if f.level:
        qs = qs.filter(residual_level=f.level) if f.level != "unrated" else qs.filter(residual_level="")
    if f.min_level:
        qs = qs.at_least((matrix or get_matrix()).rank(f.min_level) or 10**6)
    if f.status == "all":
        pass
    elif f.status:
        qs = qs.filter(current_status=f.status)
    else:
        qs = qs.open()
    if f.owner:
        qs = qs.filter(owner_id=f.owner)
    if f.overdue:
        qs = qs.overdue(at)
    if f.awaiting:
        qs = qs.awaiting_decision()
    if f.unaccepted:
        qs = qs.not_accepted(at)
    if f.expiring:
        qs = qs.filter(Exists(Decision.objects.expiring(at, f.expiring).filter(risk=OuterRef("pk"))))
    if f.q:
        qs = qs.filter(Q(title__icontains=f.q) | Q(ref__iexact=f.q) | Q(description__icontains=f.q))
    if f.cell:
        side, likelihood, impact = f.cell
        qs = qs.filter(**{f"{side}_likelihood": likelihood, f"{side}_impact": impact})
    return qs.order_by("-residual_rank", "ref")


def heat_counts(risks) -> dict[str, dict[tuple[int, int], list[str]]]:
    """{"inherent": {(likelihood, impact): [refs]}, "residual": {…}} for the risks given (already loaded)."""
    cells = {"inherent": {}, "residual": {}}
    for r in risks:
        if r.inherent_likelihood and r.inherent_impact:
            cells["inherent"].setdefault((r.inherent_likelihood, r.inherent_impact), []).append(r.ref)
        if r.residual_likelihood and r.residual_impact:
            cells["residual"].setdefault((r.residual_likelihood, r.residual_impact), []).append(r.ref)
    return cells


def inbox(user) -> QuerySet[Decision]:
    """Pending sign-offs the user may decide, of risks still open on active systems: their own systems', or every
    one for a CISO."""
    qs = Decision.objects.pending().of_active_systems().select_related("risk__system", "requested_by")
    if not user.has_perm("risks.decide_any"):
        qs = qs.filter(risk__system__business_owner=user)
    return qs.order_by("requested_at", "id")


def inbox_count(user) -> int:
    """The badge on "My sign-offs": inbox(user) counted, one query; 0 without a query for those who decide nothing."""
    if not (user.has_perm("risks.decide_any") or user.has_perm("risks.decide_own")):
        return 0
    return inbox(user).count()


EXPIRY_WINDOW_DAYS = 30


def expiring(user, at: datetime | None = None, days: int = EXPIRY_WINDOW_DAYS) -> QuerySet[Decision]:
    """Acceptances in force that end within `days` days, on active systems (a CISO sees every one)."""
    qs = Decision.objects.expiring(at or timezone.now(), days).of_active_systems().select_related("risk__system")
    if user is not None and not user.has_perm("risks.decide_any"):
        qs = qs.filter(risk__system__business_owner=user)
    return qs.order_by("expires_at", "id")


def risk_detail(ref: str, at: datetime | None = None) -> Risk:
    return (Risk.objects.with_standing(at or timezone.now()).select_related("system__business_owner", "owner", "created_by")
            .prefetch_related("rmf_subcategories", "references", "actions__owner", "findings__system")
            .get(ref=ref))


def risk_history(risk: Risk):
    from governance.audit.models import AuditEvent

    decision_ids = [str(i) for i in risk.decisions.values_list("id", flat=True)]
    action_ids = [str(i) for i in risk.actions.values_list("id", flat=True)]
    return (AuditEvent.objects.filter(
        Q(object_type="risks.risk", object_id=str(risk.pk))
        | Q(object_type="risks.decision", object_id__in=decision_ids)
        | Q(object_type="risks.mitigationaction", object_id__in=action_ids))
        .order_by("-seq")[:100])


# --- screens --------------------------------------------------------------------------------------

SNAPSHOT_IGNORED = {"status", "updated_at"}  # a decision itself moves the status


def snapshot_changes(signed: dict | None, current: dict) -> list[str]:
    """Which parts of the risk differ from what was signed (status and timestamps aside)."""
    if not signed:
        return []
    keys = (set(signed) | set(current)) - SNAPSHOT_IGNORED
    return sorted(k for k in keys if signed.get(k) != current.get(k))


@dataclass
class RiskPage:
    risk: Risk
    decisions: list
    open_findings: int
    history: list
    lapsed: str = ""  # why the last acceptance is no longer in force, when it is not


def risk_page(ref: str, at: datetime | None = None) -> RiskPage:
    """Everything the risk page shows at the moment `at`, in a fixed number of queries."""
    from governance.risks.services import decision_snapshot

    at = at or timezone.now()
    risk = risk_detail(ref, at)
    decisions = list(risk.decisions.select_related("requested_by", "decided_by"))
    current = decision_snapshot(risk) if any(d.snapshot for d in decisions) else {}
    for d in decisions:
        d.changed_since = snapshot_changes(d.snapshot, current) if d.snapshot else []
        d.in_force = d.is_in_force(at)
    open_findings = sum(1 for f in risk.findings.all() if f.state in OPEN_STATES)
    return RiskPage(risk=risk, decisions=decisions, open_findings=open_findings,
                    history=list(risk_history(risk).select_related("actor")), lapsed=_lapsed(risk, decisions, at))


def _lapsed(risk: Risk, decisions: list, at: datetime) -> str:
    last = next((d for d in decisions if d.status in (Decision.Status.ACCEPTED, Decision.Status.EXPIRED)), None)
    if last is None or last.in_force or risk.status == RiskStatus.CLOSED:
        return ""
    if last.expires_at is not None and last.expires_at <= at:
        return f"the acceptance expired on {timezone.localtime(last.expires_at):%Y-%m-%d %H:%M}."
    if last.accepted_rank is not None and last.accepted_rank < risk.residual_rank:
        return "the residual rating was raised above what was accepted."
    return ""


def system_risk_summary(system, at: datetime | None = None) -> dict:
    """Open risks of one system by residual level, plus awaiting sign-off and overdue: one query."""
    at = at or timezone.now()
    rows = (Risk.objects.filter(system=system).open().with_standing(at).order_by()
            .values("residual_level").annotate(
                n=Count("id"), awaiting=Count("id", filter=Q(current_status=RiskStatus.AWAITING_DECISION)),
                overdue=Count("id", filter=Q(due_date__lt=timezone.localdate(at)))))
    summary = {"open": 0, "awaiting": 0, "overdue": 0, "by_level": {}}
    for row in rows:
        summary["open"] += row["n"]
        summary["awaiting"] += row["awaiting"]
        summary["overdue"] += row["overdue"]
        summary["by_level"][row["residual_level"]] = row["n"]
    return summary


def decisions_verify() -> list[str]:
    """Decisions whose frozen snapshot no longer matches its hash, or whose hash differs from the audited one.

    The audit chain (verify_audit) proves the audited hashes were not altered; this proves the snapshots kept
    in the decision rows still hash to them. Two queries whatever the number of decisions.
    """
    import hashlib
    import json

    from governance.audit.models import AuditEvent

    audited = {}
    for object_id, after in (AuditEvent.objects.filter(object_type="risks.decision",
                                                       action__in=("decision.accept", "decision.reject"))
                             .order_by("seq").values_list("object_id", "after").iterator()):
        audited[object_id] = (after or {}).get("snapshot_sha256")
    problems = []
    for pk, ref, status, snap, sha in (Decision.objects.exclude(snapshot__isnull=True).order_by("pk")
                                       .values_list("pk", "risk__ref", "status", "snapshot", "snapshot_sha256").iterator()):
        actual = hashlib.sha256(json.dumps(snap, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if actual != sha:
            problems.append(f"decision {pk} of {ref}: its snapshot no longer matches its hash")
        elif audited.get(str(pk)) != sha:
            problems.append(f"decision {pk} of {ref}: its hash differs from the audited one")
    return problems


def release_signoffs(system, release: str = ""):
    """A system's release sign-offs, newest first (of one release when named)."""
    return ReleaseSignoff.of(system, release)
