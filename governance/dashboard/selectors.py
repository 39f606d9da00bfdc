"""The CISO's posture: a fixed number of queries across the whole portfolio."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlencode

from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.findings.models import Finding, Severity
from governance.inventory.models import AISystem, RiskTier
from governance.plotting import figure_json
from governance.risks.charts import heatmap_json
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision, Risk
from governance.risks.selectors import EXPIRY_WINDOW_DAYS, heat_counts
from governance.rmf.charts import portfolio_heatmap_json
from governance.rmf.models import RmfAssessment
from governance.rmf.selectors import Coverage, SystemCoverage, portfolio_coverage, portfolio_percent

SEV_COLOURS = {"critical": "#7a1010", "high": "#d64545", "medium": "#f2b134", "low": "#8fb3f5", "info": "#c5cbd3"}


class Placed(NamedTuple):
    """A risk's place on the matrix: all the heat map needs (no model instance per risk)."""

    ref: str
    inherent_likelihood: int | None
    inherent_impact: int | None
    residual_likelihood: int | None
    residual_impact: int | None


@dataclass
class SystemRow:
    system: AISystem | None  # None: the findings of feeds not assigned to any system yet
    findings: dict = field(default_factory=dict)  # severity -> open count
    breached: int = 0
    high_risks: int = 0
    awaiting: int = 0
    expiring: int = 0
    coverage: int | None = None
    last_exercised: object = None

    @property
    def name(self) -> str:
        return self.system.name if self.system else "Unassigned feeds"

    @property
    def queue_system(self) -> str:
        """The queue's system filter that lists this row's findings."""
        return self.system.slug if self.system else "unassigned"

    @property
    def attention(self) -> int:
        """A sort key: what a CISO should look at first."""
        return (self.breached * 100 + self.findings.get("critical", 0) * 20 + self.high_risks * 10
                + self.expiring * 5 + self.findings.get("high", 0))


def _findings_by_system(at):
    """Open findings of the portfolio by system and severity, and how many are past their SLA at `at`. Counted with
    columns of the index alone: on PostgreSQL an index-only scan of finding_open_posture_idx (dashboard migration
    0003), which holds exactly these columns for open findings."""
    return (Finding.objects.in_portfolio().open().values("system_id", "severity")
            .annotate(n=Count("*"), late=Count("sla_due", filter=Q(sla_due__lt=at))))


def high_rank(matrix) -> int:
    return matrix.rank("high") or 3


def _risks_by_system(matrix, at):
    # IN (the decisions' risk ids) rather than a correlated EXISTS per risk: the same sets, but PostgreSQL's
    # estimate for EXISTS over 5,000 risks crossed jit_above_cost and JIT compiling cost 30 ms of a 40 ms query
    in_force = Decision.objects.in_force(at).values("risk_id")
    pending = Decision.objects.pending().values("risk_id")
    return (Risk.objects.open().of_active_systems().values("system_id")
            .annotate(high=Count("id", filter=Q(residual_rank__gte=high_rank(matrix)) & ~Q(pk__in=in_force)),
                      awaiting=Count("id", filter=Q(pk__in=pending))))


def _expiring_by_system(at):
    """Acceptances in force that end within the expiry window, per active system."""
    return (Decision.objects.expiring(at, EXPIRY_WINDOW_DAYS).of_active_systems()
            .values("risk__system_id").annotate(n=Count("id")))


def pooled_coverage(systems) -> dict[int, SystemCoverage]:
    """{system id: its coverage pooled over all its subcategories}, as rmf.selectors.portfolio_coverage pools it,
    without the split by function (one grouped query: the page needs the split for the chart's systems only)."""
    counts = {s.pk: {} for s in systems}
    for r in (RmfAssessment.objects.filter(system__in=[s.pk for s in systems]).values("system_id", "status")
              .annotate(n=Count("*"))):
        counts[r["system_id"]][r["status"]] = r["n"]
    return {pk: SystemCoverage([Coverage("ALL", c)]) for pk, c in counts.items()}


def _last_exercised() -> dict[int, object]:
    from governance.tabletop.models import Exercise

    rows = Exercise.objects.filter(completed_at__isnull=False).values("systems").annotate(last=Max("completed_at"))
    return {r["systems"]: r["last"] for r in rows if r["systems"]}


TOP_SYSTEMS = 25  # systems the page's table and charts show (all with ?all=1); every figure counts them all


def posture(at: datetime | None = None, *, show_all: bool = False) -> dict:
    """Every figure of the posture page at the moment `at`, from the definitions in the models' querysets. `rows`
    holds every active system in attention order; `top_rows`, what the table and the charts show: the first
    TOP_SYSTEMS of them (every one with `show_all`)."""
    at = at or timezone.now()
    matrix = get_matrix()
    systems = list(AISystem.objects.active().select_related("business_owner").order_by("name", "id"))
    rows = {s.pk: SystemRow(s) for s in systems}
    unassigned = SystemRow(None)
    for r in _findings_by_system(at):
        row = rows.get(r["system_id"]) if r["system_id"] else unassigned
        if row is not None:
            row.findings[r["severity"]] = r["n"]
            row.breached += r["late"]
    for r in _risks_by_system(matrix, at):
        if r["system_id"] in rows:
            rows[r["system_id"]].high_risks, rows[r["system_id"]].awaiting = r["high"], r["awaiting"]
    for r in _expiring_by_system(at):
        if r["risk__system_id"] in rows:
            rows[r["risk__system_id"]].expiring = r["n"]
    pooled = pooled_coverage(systems)
    for s in systems:
        rows[s.pk].coverage = pooled[s.pk].percent
    for system_id, when in _last_exercised().items():
        if system_id in rows:
            rows[system_id].last_exercised = when
    table = sorted(rows.values(), key=lambda r: (-r.attention, r.system.name, r.system.pk))
    everything = table + ([unassigned] if unassigned.findings else [])
    top = table if show_all else table[:TOP_SYSTEMS]
    charted = top + ([unassigned] if unassigned.findings else [])
    open_risks = [Placed(*r) for r in Risk.objects.open().of_active_systems().values_list(*Placed._fields)]
    tiers = {t: sum(1 for s in systems if s.risk_tier == t) for t in RiskTier.values}
    coverage_map = portfolio_coverage([r.system for r in top])  # per function: the chart's systems only
    codes = next(iter(coverage_map.values())).functions if coverage_map else []
    return {
        "at": at,
        "system_count": len(systems),
        "tier_counts": [(label, tiers.get(value, 0), value) for value, label in reversed(RiskTier.choices)],
        "critical_high_findings": sum(r.findings.get("critical", 0) + r.findings.get("high", 0) for r in everything),
        "breached": sum(r.breached for r in everything),
        "high_risks": sum(r.high_risks for r in table),
        "awaiting": sum(r.awaiting for r in table),
        "expiring": sum(r.expiring for r in table),
        "avg_coverage": portfolio_percent(pooled.values()),
        "never_exercised": sum(1 for r in table if r.last_exercised is None),
        "rows": table,
        "top_rows": top,
        "hidden_systems": len(table) - len(top),
        "unassigned": unassigned if unassigned.findings else None,
        "findings_figure": findings_figure_json(charted) if charted else None,
        "coverage_figure": (portfolio_heatmap_json([r.system for r in top], coverage_map, [c.function for c in codes],
                                                   link=profile_link) if systems else None),
        "risk_cells": (cells := heat_counts(open_risks)),
        "risk_figure": heatmap_json(matrix, cells, link=matrix_link) if open_risks else None,
        "recent": AuditEvent.objects.by_people().order_by("-seq")[:8],  # what people decided and changed
        "expiry_window": EXPIRY_WINDOW_DAYS,
        "high_level": matrix.level_for_rank(high_rank(matrix)),
    }


def queue_link(base: str | None = None, **filters) -> str:
    """The findings queue showing what a figure counts (a chart's click opens it: static/js/chart-links.js)."""
    return f"{base or reverse('findings:queue')}?{urlencode(filters)}"


def matrix_link(side: str, likelihood: int, impact: int) -> str:
    """The risk register filtered to one matrix cell: the risks the posture page's matrix counts there."""
    return f"{reverse('risks:list')}?{urlencode({'cell': f'{side}-{likelihood}-{impact}'})}"


def profile_link(system, function: str | None) -> str:
    """A system's RMF profile, at the function's section: the assessments a coverage cell is computed from."""
    return reverse("rmf:profile", args=[system.slug]) + (f"#fn-{function.lower()}" if function else "#coverage-card")


def unique_labels(rows) -> list[str]:
    """Chart categories: the system's name, with its slug when two systems share a name (Plotly merges categories
    with the same text)."""
    names = [r.name for r in rows]
    return [f"{r.name} ({r.system.slug})" if r.system and names.count(r.name) > 1 else r.name for r in rows]


def findings_figure_json(table: list[SystemRow]) -> str:
    names = unique_labels(table)
    queue = reverse("findings:queue")
    bars = [{"type": "bar", "orientation": "h", "y": names, "x": [r.findings.get(sev, 0) for r in table], "name": label,
             "marker": {"color": SEV_COLOURS[sev]},
             "hovertemplate": "%{y}: %{x} open " + label.lower() + "<extra></extra>",
             "customdata": [queue_link(system=r.queue_system, severity=sev, base=queue) for r in table]}
            for sev, label in Severity.choices]
    return figure_json(bars, chart_layout(height=max(240, 34 * len(table) + 110), barmode="stack",
                                          xaxis={"gridcolor": "#e6e9ee", "title": {"text": "open findings"}},
                                          yaxis={"autorange": "reversed", "automargin": True}))


def chart_layout(*, height: int, **layout) -> dict:
    """The posture page's chart look: transparent, the page's font, the legend below."""
    return {"height": height, "margin": {"l": 10, "r": 10, "t": 10, "b": 60},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "legend": {"orientation": "h", "y": 0, "yref": "container", "yanchor": "bottom"},
            "font": {"family": "Inter, system-ui, sans-serif", "size": 12, "color": "#243042"}, **layout}
