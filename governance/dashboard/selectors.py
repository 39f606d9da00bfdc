"""The CISO's posture: a fixed number of queries across the whole portfolio."""
from __future__ import annotations

from dataclasses import dataclass, field

import plotly.graph_objects as go
from django.db.models import Count, Max, Q
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.findings.models import OPEN_STATES, Finding, Severity
from governance.inventory.models import AISystem, RiskTier
from governance.risks.charts import heatmap_json
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision, Risk, RiskStatus
from governance.risks.selectors import heat_counts
from governance.rmf.charts import portfolio_heatmap_json
from governance.rmf.selectors import function_codes, portfolio_coverage

SEV_COLOURS = {"critical": "#7a1010", "high": "#d64545", "medium": "#f2b134", "low": "#8fb3f5", "info": "#c5cbd3"}
EXPIRY_WINDOW_DAYS = 30


@dataclass
class SystemRow:
    system: AISystem
    findings: dict = field(default_factory=dict)  # severity -> open count
    breached: int = 0
    high_risks: int = 0
    awaiting: int = 0
    expiring: int = 0
    coverage: int = 0
    last_exercised: object = None

    @property
    def attention(self) -> int:
        """A sort key: what a CISO should look at first."""
        return (self.breached * 100 + self.findings.get("critical", 0) * 20 + self.high_risks * 10
                + self.expiring * 5 + self.findings.get("high", 0))


def _findings_by_system(today):
    rows = (Finding.objects.filter(state__in=OPEN_STATES, system__isnull=False)
            .values("system_id", "severity")
            .annotate(n=Count("id"), late=Count("id", filter=Q(sla_due__lt=today))))
    return rows


def _risks_by_system(matrix):
    high_rank = matrix.rank("high") or 3
    return (Risk.objects.exclude(status=RiskStatus.CLOSED).values("system_id")
            .annotate(high=Count("id", filter=Q(residual_rank__gte=high_rank) & ~Q(status=RiskStatus.ACCEPTED)),
                      awaiting=Count("id", filter=Q(status=RiskStatus.AWAITING_DECISION))))


def _last_exercised() -> dict[int, object]:
    try:
        from governance.tabletop.models import Exercise
    except ImportError:  # the tabletop app is optional for the posture page
        return {}
    rows = Exercise.objects.filter(completed_at__isnull=False).values("systems").annotate(last=Max("completed_at"))
    return {r["systems"]: r["last"] for r in rows if r["systems"]}


def posture() -> dict:
    today, now = timezone.localdate(), timezone.now()
    matrix = get_matrix()
    systems = list(AISystem.objects.filter(archived_at__isnull=True).select_related("business_owner").order_by("name"))
    rows = {s.pk: SystemRow(s) for s in systems}
    for r in _findings_by_system(today):
        if r["system_id"] in rows:
            rows[r["system_id"]].findings[r["severity"]] = r["n"]
            rows[r["system_id"]].breached += r["late"]
    for r in _risks_by_system(matrix):
        if r["system_id"] in rows:
            rows[r["system_id"]].high_risks, rows[r["system_id"]].awaiting = r["high"], r["awaiting"]
    expiring = (Decision.objects.filter(status=Decision.Status.ACCEPTED, expires_at__gt=now,
                                        expires_at__lte=now + timezone.timedelta(days=EXPIRY_WINDOW_DAYS))
                .values("risk__system_id").annotate(n=Count("id")))
    for r in expiring:
        if r["risk__system_id"] in rows:
            rows[r["risk__system_id"]].expiring = r["n"]
    coverage_map = portfolio_coverage(systems)
    for s in systems:
        percents = [c.percent for c in coverage_map.get(s.pk, {}).values()]
        rows[s.pk].coverage = round(sum(percents) / len(percents)) if percents else 0
    for system_id, when in _last_exercised().items():
        if system_id in rows:
            rows[system_id].last_exercised = when
    table = sorted(rows.values(), key=lambda r: (-r.attention, r.system.name))
    open_risks = list(Risk.objects.exclude(status=RiskStatus.CLOSED).only(
        "ref", "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact"))
    tiers = {t: sum(1 for s in systems if s.risk_tier == t) for t in RiskTier.values}
    return {
        "system_count": len(systems),
        "tier_counts": [(label, tiers.get(value, 0), value) for value, label in reversed(RiskTier.choices)],
        "critical_high_findings": sum(r.findings.get("critical", 0) + r.findings.get("high", 0) for r in table),
        "breached": sum(r.breached for r in table),
        "high_risks": sum(r.high_risks for r in table),
        "awaiting": sum(r.awaiting for r in table),
        "expiring": sum(r.expiring for r in table),
        "avg_coverage": round(sum(r.coverage for r in table) / len(table)) if table else 0,
        "never_exercised": sum(1 for r in table if r.last_exercised is None),
        "rows": table,
        "findings_figure": findings_figure_json(table) if table else None,
        "coverage_figure": portfolio_heatmap_json(systems, coverage_map, function_codes()) if systems else None,
        "risk_figure": heatmap_json(matrix, heat_counts(open_risks)) if open_risks else None,
        "recent": AuditEvent.objects.order_by("-seq")[:8],
        "expiry_window": EXPIRY_WINDOW_DAYS,
    }


def findings_figure_json(table: list[SystemRow]) -> str:
    names = [r.system.name for r in table]
    fig = go.Figure()
    for sev, label in Severity.choices:
        fig.add_bar(y=names, x=[r.findings.get(sev, 0) for r in table], name=label, orientation="h",
                    marker_color=SEV_COLOURS[sev], hovertemplate="%{y}: %{x} open " + label.lower() + "<extra></extra>")
    fig.update_layout(barmode="stack", height=max(220, 34 * len(table) + 80), margin=dict(l=10, r=10, t=10, b=30),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", legend=dict(orientation="h", y=-0.12),
                      font=dict(family="Inter, system-ui, sans-serif", size=12, color="#243042"),
                      xaxis=dict(gridcolor="#e6e9ee"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig.to_json()
