"""Posture over time, read from the daily snapshots (governance/dashboard/snapshots.py): the trend charts of the
posture page and each KPI's change over a month. The board report imports `month_over_month`."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import plotly.graph_objects as go
from django.db.models import Avg, Case, Count, F, FloatField, Q, Sum, When
from django.db.models.functions import Cast
from django.utils import timezone

from governance.dashboard.models import SEVERITIES, PostureSnapshot
from governance.findings.models import Severity
from governance.rmf.selectors import Coverage, SystemCoverage, portfolio_percent

RANGES = (30, 90, 365)
DEFAULT_RANGE = 90
MONTH_DAYS = 30
MTTR_WINDOW_DAYS = 30
# Which way is good for each KPI card's figure (None: neither, e.g. the number of systems).
BETTER = {"active_systems": None, "critical_high": "down", "past_sla": "down", "high_risks": "down",
          "awaiting": "down", "expiring": "down", "coverage": "up", "never_exercised": "down"}


def _now_values(figures: dict) -> dict:
    """The KPI cards' figures, as selectors.posture computed them."""
    return {"active_systems": figures["system_count"], "critical_high": figures["critical_high_findings"],
            "past_sla": figures["breached"], "high_risks": figures["high_risks"], "awaiting": figures["awaiting"],
            "expiring": figures["expiring"], "coverage": figures["avg_coverage"],
            "never_exercised": figures["never_exercised"]}


def _snapshot_values(day: date) -> dict | None:
    """The KPI cards' figures from the snapshots of `day` (None: no snapshot that day). Summed like the page sums
    its rows: findings over systems and unassigned feeds, the rest over systems; coverage the mean of systems."""
    rows = list(PostureSnapshot.objects.filter(day=day).values_list(
        "system_id", "open_critical", "open_high", "past_sla", "high_risks", "awaiting", "expiring", "exercised",
        "rmf_implemented", "rmf_partial", "rmf_applicable"))
    if not rows:
        return None
    systems = [r for r in rows if r[0] is not None]
    coverages = [SystemCoverage([Coverage("ALL", {"implemented": r[8], "partial": r[9], "gap": r[10] - r[8] - r[9]})])
                 for r in systems]
    return {"active_systems": len(systems), "critical_high": sum(r[1] + r[2] for r in rows),
            "past_sla": sum(r[3] for r in rows), "high_risks": sum(r[4] for r in systems),
            "awaiting": sum(r[5] for r in systems), "expiring": sum(r[6] for r in systems),
            "coverage": portfolio_percent(coverages), "never_exercised": sum(1 for r in systems if not r[7])}


def month_over_month(at: datetime | None = None, figures: dict | None = None) -> dict[str, dict]:
    """Per KPI: {now, month_ago, delta, direction ('up', 'down', 'same' or None), good (True, False or None),
    since (the day compared with)}. `now` is the figure at `at` (pass selectors.posture(at) as `figures` when it is
    at hand); `month_ago` the snapshot of the day 30 days before, None when there is none (then no delta)."""
    from governance.dashboard.selectors import posture

    at = at or timezone.now()
    figures = figures if figures is not None else posture(at)
    since = timezone.localdate(at) - timedelta(days=MONTH_DAYS)
    now, ago = _now_values(figures), _snapshot_values(since)
    out = {}
    for key, value in now.items():
        before = ago[key] if ago else None
        delta = value - before if value is not None and before is not None else None
        direction = None if delta is None else "up" if delta > 0 else "down" if delta < 0 else "same"
        good = None if direction in (None, "same") or BETTER[key] is None else direction == BETTER[key]
        out[key] = {"now": value, "month_ago": before, "delta": delta, "direction": direction, "good": good,
                    "since": since}
    return out


# ---- trend charts -------------------------------------------------------------------------------------------

def _ratio():
    """A system's coverage as a fraction (None when nothing applies): averaged per day, the portfolio's figure."""
    return Case(When(rmf_applicable__gt=0, then=Cast(2 * F("rmf_implemented") + F("rmf_partial"), FloatField())
                     / Cast(2 * F("rmf_applicable"), FloatField())), default=None, output_field=FloatField())


def daily(first: date, last: date) -> dict[date, dict]:
    """{day: portfolio sums} for the days first..last that have snapshots, in one grouped query."""
    sums = [f"open_{s}" for s in SEVERITIES] + ["past_sla", "high_risks", "accepted_in_force"] + \
        [f"remediated_{s}" for s in SEVERITIES] + [f"remediated_{s}_hours" for s in SEVERITIES]
    rows = (PostureSnapshot.objects.filter(day__range=(first, last)).values("day")
            .annotate(**{name: Sum(name) for name in sums}, coverage=Avg(_ratio(), filter=Q(system__isnull=False)),
                      systems=Count("system_id")).order_by("day"))
    return {r["day"]: r for r in rows}


def series(at: datetime, days: int) -> dict:
    """The trend lines of the last `days` days up to the day of `at` (days without a snapshot are left out)."""
    last = timezone.localdate(at)
    first = last - timedelta(days=days - 1)
    by_day = daily(first - timedelta(days=MTTR_WINDOW_DAYS - 1), last)
    shown = [d for d in sorted(by_day) if d >= first]
    out: dict = {"days": shown, "open": {}, "mttr": {}}
    for sev in SEVERITIES:
        out["open"][sev] = [by_day[d][f"open_{sev}"] for d in shown]
    open_total = [sum(by_day[d][f"open_{s}"] for s in SEVERITIES) for d in shown]
    out["within_sla"] = [round(100 * (n - by_day[d]["past_sla"]) / n, 1) if n else None
                         for d, n in zip(shown, open_total)]
    for sev in SEVERITIES:
        values = []
        for d in shown:
            n = hours = 0
            for k in range(MTTR_WINDOW_DAYS):
                row = by_day.get(d - timedelta(days=k))
                if row:
                    n, hours = n + row[f"remediated_{sev}"], hours + row[f"remediated_{sev}_hours"]
            values.append(round(hours / n / 24, 1) if n else None)
        out["mttr"][sev] = values
    out["high_risks"] = [by_day[d]["high_risks"] for d in shown]
    out["accepted_in_force"] = [by_day[d]["accepted_in_force"] for d in shown]
    out["coverage"] = [None if by_day[d]["coverage"] is None else round(100 * by_day[d]["coverage"], 1)
                       for d in shown]
    return out


def _line_chart(x, lines: list[tuple[str, list, str]], *, axis: str, percent: bool = False) -> str:
    from governance.dashboard.selectors import chart_style

    fig = go.Figure()
    for name, values, colour in lines:
        fig.add_scatter(x=x, y=values, name=name, mode="lines+markers" if len(x) < 40 else "lines",
                        line=dict(color=colour, width=2), connectgaps=False,
                        hovertemplate="%{x|%Y-%m-%d}: %{y}" + ("%" if percent else "") + f" {name.lower()}<extra></extra>")
    chart_style(fig, height=260, xaxis=dict(gridcolor="#e6e9ee", type="date"),
                yaxis=dict(gridcolor="#e6e9ee", title=axis, rangemode="tozero", **({"range": [0, 100]} if percent else {})))
    return fig.to_json()


def trend_figures(at: datetime, days: int) -> dict:
    """The trend section's context: its range, whether there is anything to draw, and one figure per chart."""
    from governance.dashboard.selectors import SEV_COLOURS

    s = series(at, days)
    x = [d.isoformat() for d in s["days"]]
    labels = dict(Severity.choices)
    ctx = {"range": days, "ranges": RANGES, "points": len(x), "first_day": s["days"][0] if x else None}
    if not x:
        return ctx
    ctx["open_figure"] = _line_chart(x, [(labels[sev], s["open"][sev], SEV_COLOURS[sev]) for sev in SEVERITIES],
                                     axis="open findings")
    ctx["sla_figure"] = _line_chart(x, [("Within SLA", s["within_sla"], "#2f7d4f")], axis="% of open findings",
                                    percent=True)
    ctx["mttr_figure"] = _line_chart(x, [(labels[sev], s["mttr"][sev], SEV_COLOURS[sev])
                                         for sev in SEVERITIES if sev != "info"], axis="days to remediate")
    ctx["risk_figure"] = _line_chart(x, [("High+ not accepted", s["high_risks"], "#d64545"),
                                         ("Acceptances in force", s["accepted_in_force"], "#3b6fd4")], axis="risks")
    ctx["coverage_figure"] = _line_chart(x, [("RMF coverage", s["coverage"], "#243042")], axis="% coverage",
                                         percent=True)
    return ctx


def parse_range(value: str | None) -> int:
    try:
        days = int(value or DEFAULT_RANGE)
    except ValueError:
        return DEFAULT_RANGE
    return days if days in RANGES else DEFAULT_RANGE
