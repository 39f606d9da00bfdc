"""The go/no-go release gate of a system (NIST AI RMF MANAGE 1.1): every reason, with what to do.

Every blocking item counts: `counts` holds the number of items per reason code and `blocking_items` their sum,
whatever is listed. Findings are listed one by one up to LIST_LIMIT per code; the rest are one reason that says
how many more there are and links to the queue list that shows exactly them. A fixed number of queries whatever
the number of risks or findings. The rules read the same definitions as every screen (FindingQuerySet.past_sla,
RiskQuerySet.not_accepted, rmf.models.requirement_met).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Prefetch, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone

from governance.findings.models import SEVERITY_RANK, Finding
from governance.risks.matrix import gate_policy, get_matrix
from governance.risks.models import Decision, ReleaseSignoff, Risk
from governance.rmf.models import REQUIREMENT_MET, AssessmentStatus, RmfAssessment

LIST_LIMIT = 50


@dataclass
class Reason:
    code: str
    message: str
    action: str
    refs: list[str] = field(default_factory=list)
    count: int = 1  # blocking items this reason stands for
    url: str = ""  # the page that shows them


@dataclass
class GateResult:
    system: str
    tier: str
    decision: str  # "go" | "no-go"
    reasons: list[Reason]
    evaluated_at: str
    counts: dict = field(default_factory=dict)  # code -> blocking items

    @property
    def blocking_items(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "go": self.decision == "go", "blocking_items": self.blocking_items}


def _queue_url(system, **params) -> str:
    return f"{reverse('findings:queue')}?{urlencode({'system': system.slug, **params})}"


def _finding_reasons(system, policy, at: datetime) -> list[Reason]:
    """One query: the blocking findings, each group's first LIST_LIMIT with the group's total beside them."""
    late = Q(sla_due__lt=at, severity__in=policy.blocking_finding_severities)  # with .open(): past_sla(at)
    blocking = late | Q(severity__in=policy.blocking_open_severities or [])
    groups = [F("kind"), F("severity")]
    rows = (Finding.objects.filter(system=system).open().filter(blocking)
            .annotate(kind=Case(When(late, then=Value("PAST_SLA")), default=Value("OPEN"), output_field=CharField()))
            .annotate(total=Window(Count("id"), partition_by=groups),
                      position=Window(RowNumber(), partition_by=groups,
                                      order_by=[F("sla_due").asc(nulls_last=True), F("id").asc()]))
            .filter(position__lte=LIST_LIMIT)
            .order_by("kind", "-severity_rank", "position")  # "OPEN" < "PAST_SLA": reversed below
            .values_list("kind", "severity", "id", "title", "sla_due", "total"))
    listed: dict[tuple[str, str], list] = {}
    totals: dict[tuple[str, str], int] = {}
    for kind, severity, fid, title, due, total in rows:
        listed.setdefault((kind, severity), []).append((fid, title, due))
        totals[(kind, severity)] = total
    reasons = []
    for kind, severity in sorted(totals, key=lambda k: (k[0] != "PAST_SLA", -SEVERITY_RANK[k[1]])):
        code = f"FINDING_{severity.upper()}_{kind}"
        for fid, title, due in listed[(kind, severity)]:
            if kind == "PAST_SLA":
                message = f"Open {severity} finding #{fid} “{title[:100]}” was due {timezone.localtime(due):%Y-%m-%d %H:%M %Z}."
            else:
                message = (f"Open {severity} finding #{fid} “{title[:100]}” blocks releases of "
                           f"{system.get_risk_tier_display().lower()}-tier systems.")
            reasons.append(Reason(
                code=code, message=message, refs=[f"finding:{fid}"], url=reverse("findings:detail", args=[fid]),
                action="Fix it, or triage it (false positive / risk accepted with a reason) in the findings queue."))
        more = totals[(kind, severity)] - len(listed[(kind, severity)])
        if more > 0:
            params = {"breached": "1"} if kind == "PAST_SLA" else {}
            reasons.append(Reason(
                code=code, count=more, url=_queue_url(system, severity=severity, **params),
                message=f"…and {more} more open {severity} finding{'s' if more != 1 else ''}"
                        f"{' past their SLA' if kind == 'PAST_SLA' else ''}.",
                action="Open the list to triage them."))
    return reasons


def _risk_reasons(system, policy, matrix, at: datetime) -> list[Reason]:
    """One query (and one for the acceptances that lapsed): risks above the limit without an acceptance in force,
    and unrated risks where the policy requires ratings."""
    limit = matrix.rank(policy.max_unaccepted_level) if policy.max_unaccepted_level else 0
    wanted = Q(residual_rank__gt=limit, in_force=False)
    if policy.block_unrated_risks:
        wanted |= Q(residual_level="")
    risks = (Risk.objects.filter(system=system).open()
             .annotate(in_force=Exists(Decision.objects.in_force(at).filter(risk=OuterRef("pk"))))
             .filter(wanted).order_by("-residual_rank", "ref")
             .prefetch_related(Prefetch("decisions", to_attr="acceptances", queryset=Decision.objects.filter(
                 status__in=(Decision.Status.ACCEPTED, Decision.Status.EXPIRED)).order_by("-decided_at"))))
    reasons = []
    for risk in risks:
        if risk.residual_rank > limit and not risk.in_force:
            reasons.append(_unaccepted(risk, system, policy, matrix, at))
        if policy.block_unrated_risks and not risk.residual_level:
            reasons.append(Reason(
                code="RISK_NOT_RATED", refs=[risk.ref], url=risk.get_absolute_url(),
                message=f"{risk.ref} “{risk.title}” has no residual likelihood × impact rating.",
                action="Rate its residual likelihood and impact in the register."))
    return reasons


def _unaccepted(risk, system, policy, matrix, at: datetime) -> Reason:
    latest = risk.acceptances[0] if risk.acceptances else None
    if latest is not None and latest.expires_at is not None and latest.expires_at <= at:
        return Reason(
            code="ACCEPTANCE_EXPIRED", refs=[risk.ref], url=risk.get_absolute_url(),
            message=f"{risk.ref} “{risk.title}”: its acceptance expired on "
                    f"{timezone.localtime(latest.expires_at):%Y-%m-%d %H:%M %Z}.",
            action=f"Ask {system.business_owner} to review and accept it again, or reduce the residual risk.")
    level = matrix.level(risk.residual_level) or {"label": risk.residual_level}
    return Reason(
        code="RISK_RESIDUAL_UNACCEPTED", refs=[risk.ref], url=risk.get_absolute_url(),
        message=f"{risk.ref} “{risk.title}” has a {level['label'].lower()} residual risk without an acceptance in force.",
        action=f"Request sign-off from {system.business_owner}, or mitigate until the residual level is "
               f"{policy.max_unaccepted_level or 'acceptable'} or lower.")


RMF_CODES = {
    AssessmentStatus.NOT_ASSESSED: ("RMF_REQUIRED_NOT_ASSESSED", "not assessed"),
    AssessmentStatus.GAP: ("RMF_REQUIRED_GAP", "marked as a gap"),
    AssessmentStatus.NOT_APPLICABLE: ("RMF_REQUIRED_NOT_APPLICABLE", "marked not applicable, but the policy requires them"),
}


def required_subcategories(system, policy) -> list[tuple[str, str]]:
    """(ident, status) of each subcategory the tier's policy requires; one that has no assessment is not assessed."""
    statuses = dict(RmfAssessment.objects.filter(
        system=system, subcategory__version=system.rmf_version, subcategory__ident__in=policy.required_subcategories,
    ).values_list("subcategory__ident", "status"))
    return [(ident, statuses.get(ident, AssessmentStatus.NOT_ASSESSED)) for ident in policy.required_subcategories]


def _rmf_reasons(system, policy) -> list[Reason]:
    failing: dict[str, list[str]] = {}
    for ident, status in required_subcategories(system, policy):
        if status not in REQUIREMENT_MET:
            failing.setdefault(status, []).append(ident)
    reasons = []
    for status, (code, words) in RMF_CODES.items():
        idents = failing.get(status)
        if idents:
            reasons.append(Reason(
                code=code, count=len(idents), refs=[f"rmf:{i}" for i in idents],
                url=f"{reverse('rmf:profile', args=[system.slug])}?status={status}",
                message=f"Required NIST AI RMF subcategories {words}: {', '.join(idents)}.",
                action="A required subcategory passes when it is implemented or partially implemented: assess it in "
                       "the system's RMF profile (status, owner, evidence)."))
    return reasons


def _signoff_reasons(system, release: str) -> list[Reason]:
    """CI asks for a release by name: it also needs the product owner's go for it (ReleaseSignoff)."""
    signoff = ReleaseSignoff.latest_of(system, release)
    if signoff is None:
        return [Reason(code="SIGNOFF_MISSING", url=reverse("inventory:detail", args=[system.slug]) + "#release-signoff",
                       message=f"No release sign-off is recorded for {release}.",
                       action=f"Ask {system.business_owner} to sign {release} off on the system's page.")]
    if signoff.verdict != ReleaseSignoff.Verdict.GO:
        return [Reason(code="SIGNOFF_NO_GO", refs=[f"signoff:{signoff.pk}"], url=signoff.get_absolute_url(),
                       message=f"{signoff.signed_by or 'The product owner'} signed {release} off as no-go on "
                               f"{timezone.localtime(signoff.signed_at):%Y-%m-%d %H:%M %Z}: “{signoff.justification[:200]}”.",
                       action="Resolve what the sign-off names, then ask for a new sign-off of this release.")]
    return []


REASON_LABELS = {  # (one, several)
    "PAST_SLA": ("{severity} finding past its SLA", "{severity} findings past their SLA"),
    "OPEN": ("open {severity} finding", "open {severity} findings"),
    "RISK_RESIDUAL_UNACCEPTED": ("risk above the limit without an acceptance in force",
                                 "risks above the limit without an acceptance in force"),
    "ACCEPTANCE_EXPIRED": ("risk whose acceptance expired", "risks whose acceptance expired"),
    "RISK_NOT_RATED": ("unrated risk", "unrated risks"),
    "RMF_REQUIRED_NOT_ASSESSED": ("required RMF subcategory not assessed", "required RMF subcategories not assessed"),
    "RMF_REQUIRED_GAP": ("required RMF subcategory marked as a gap", "required RMF subcategories marked as a gap"),
    "RMF_REQUIRED_NOT_APPLICABLE": ("required RMF subcategory marked not applicable",
                                    "required RMF subcategories marked not applicable"),
    "SYSTEM_ARCHIVED": ("the system is archived",) * 2, "SIGNOFF_MISSING": ("no release sign-off",) * 2,
    "SIGNOFF_NO_GO": ("the release was signed off as no-go",) * 2,
}


def reason_label(code: str, count: int = 2) -> str:
    """A reason code in words for the pages (the API keeps the codes), for `count` items: FINDING_HIGH_PAST_SLA ->
    high findings past their SLA. An unknown code is shown as it is."""
    if code.startswith("FINDING_"):
        severity, _, kind = code.removeprefix("FINDING_").partition("_")
        forms = REASON_LABELS.get(kind)
        return forms[count != 1].format(severity=severity.lower()) if forms else code
    forms = REASON_LABELS.get(code)
    return forms[count != 1] if forms else code


def evaluate(system, at: datetime | None = None, release: str = "") -> GateResult:
    """The gate now (or at `at`). With a release name, it also needs that release's go sign-off."""
    at = at or timezone.now()
    policy, matrix = gate_policy(system.risk_tier), get_matrix()
    reasons = [*_finding_reasons(system, policy, at), *_risk_reasons(system, policy, matrix, at), *_rmf_reasons(system, policy)]
    if release:
        reasons += _signoff_reasons(system, release)
    if system.is_archived:
        reasons.insert(0, Reason(code="SYSTEM_ARCHIVED", message=f"{system.name} is archived.",
                                 action="Restore the system in the inventory before releasing it."))
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r.code] = counts.get(r.code, 0) + r.count
    return GateResult(system=system.slug, tier=system.risk_tier, decision="no-go" if reasons else "go",
                      reasons=reasons, evaluated_at=at.isoformat(), counts=counts)
