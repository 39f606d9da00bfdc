"""The go/no-go release gate of a system (NIST AI RMF MANAGE 1.1): every reason, with what to do.

A fixed number of queries whatever the number of risks or findings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db.models import Prefetch
from django.utils import timezone

from governance.findings.models import OPEN_STATES, Finding
from governance.risks.matrix import gate_policy, get_matrix
from governance.risks.models import Decision, Risk, RiskStatus
from governance.rmf.models import AssessmentStatus, RmfAssessment


@dataclass
class Reason:
    code: str
    message: str
    action: str
    refs: list[str] = field(default_factory=list)


@dataclass
class GateResult:
    system: str
    tier: str
    decision: str  # "go" | "no-go"
    reasons: list[Reason]
    evaluated_at: str

    def as_dict(self) -> dict:
        return {**asdict(self), "go": self.decision == "go"}


def _finding_reasons(system, policy, today) -> list[Reason]:
    late = (
        Finding.objects.filter(system=system, state__in=OPEN_STATES, severity__in=policy.blocking_finding_severities,
                               sla_due__lt=today)
        .order_by("-severity_rank", "sla_due").values_list("id", "severity", "title", "sla_due")[:20]
    )
    reasons = []
    late_ids = set()
    for fid, severity, title, due in late:
        late_ids.add(fid)
        reasons.append(Reason(
            code=f"FINDING_{severity.upper()}_PAST_SLA",
            message=f"Open {severity} finding #{fid} “{title[:100]}” was due {due:%Y-%m-%d}.",
            action="Fix it, or triage it (false positive / risk accepted with a reason) in the findings queue.",
            refs=[f"finding:{fid}"],
        ))
    if policy.blocking_open_severities:
        still_open = (
            Finding.objects.filter(system=system, state__in=OPEN_STATES, severity__in=policy.blocking_open_severities)
            .exclude(pk__in=late_ids).order_by("-severity_rank", "id").values_list("id", "severity", "title")[:20]
        )
        for fid, severity, title in still_open:
            reasons.append(Reason(
                code=f"FINDING_{severity.upper()}_OPEN",
                message=f"Open {severity} finding #{fid} “{title[:100]}” blocks releases of {system.get_risk_tier_display().lower()}-tier systems.",
                action="Fix it, or triage it (false positive / risk accepted with a reason) in the findings queue.",
                refs=[f"finding:{fid}"],
            ))
    return reasons


def _risk_reasons(system, policy, matrix) -> list[Reason]:
    limit = matrix.rank(policy.max_unaccepted_level) if policy.max_unaccepted_level else 0
    now = timezone.now()
    risks = Risk.objects.filter(system=system).exclude(status=RiskStatus.CLOSED).prefetch_related(
        Prefetch("decisions", queryset=Decision.objects.filter(
            status__in=(Decision.Status.ACCEPTED, Decision.Status.EXPIRED)).order_by("-decided_at"), to_attr="acceptances")
    )
    reasons = []
    for risk in risks:
        latest = risk.acceptances[0] if risk.acceptances else None
        valid = latest is not None and latest.status == Decision.Status.ACCEPTED and (latest.expires_at is None or latest.expires_at > now)
        if latest is not None and not valid and risk.residual_rank > limit:
            reasons.append(Reason(
                code="ACCEPTANCE_EXPIRED",
                message=f"{risk.ref} “{risk.title}”: its acceptance expired on {latest.expires_at:%Y-%m-%d}.",
                action=f"Ask {system.business_owner} to review and accept it again, or reduce the residual risk.",
                refs=[risk.ref],
            ))
        elif risk.residual_rank > limit and not valid:
            level = matrix.level(risk.residual_level) or {"label": risk.residual_level}
            reasons.append(Reason(
                code="RISK_RESIDUAL_UNACCEPTED",
                message=f"{risk.ref} “{risk.title}” has a {level['label'].lower()} residual risk without a valid acceptance.",
                action=f"Request sign-off from {system.business_owner}, or mitigate until the residual level is "
                       f"{policy.max_unaccepted_level or 'acceptable'} or lower.",
                refs=[risk.ref],
            ))
        if policy.block_unrated_risks and not risk.residual_level:
            reasons.append(Reason(
                code="RISK_NOT_RATED", message=f"{risk.ref} “{risk.title}” has no residual likelihood × impact rating.",
                action="Rate its residual likelihood and impact in the register.", refs=[risk.ref],
            ))
    return reasons


def _rmf_reasons(system, policy) -> list[Reason]:
    if not policy.required_subcategories:
        return []
    missing = list(
        RmfAssessment.objects.filter(system=system, subcategory__ident__in=policy.required_subcategories,
                                     status=AssessmentStatus.NOT_ASSESSED)
        .order_by("subcategory__position").values_list("subcategory__ident", flat=True)
    )
    if not missing:
        return []
    return [Reason(
        code="RMF_REQUIRED_NOT_ASSESSED",
        message=f"Required NIST AI RMF subcategories not assessed: {', '.join(missing)}.",
        action="Assess them in the system's RMF profile (status, owner, evidence).",
        refs=[f"rmf:{m}" for m in missing],
    )]


def evaluate(system) -> GateResult:
    policy, matrix = gate_policy(system.risk_tier), get_matrix()
    today = timezone.localdate()
    reasons = [*_finding_reasons(system, policy, today), *_risk_reasons(system, policy, matrix), *_rmf_reasons(system, policy)]
    if system.is_archived:
        reasons.insert(0, Reason(code="SYSTEM_ARCHIVED", message=f"{system.name} is archived.",
                                 action="Restore the system in the inventory before releasing it."))
    return GateResult(system=system.slug, tier=system.risk_tier, decision="no-go" if reasons else "go",
                      reasons=reasons, evaluated_at=timezone.now().isoformat())
