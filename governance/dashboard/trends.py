"""Posture over time, read from the daily snapshots (governance/dashboard/snapshots.py): the trend charts of the
posture page and each KPI's change over a month. The board report imports `month_over_month`."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from django.utils import timezone

from governance.dashboard.models import SEVERITIES, PortfolioDay
from governance.findings.models import Severity

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
    """The KPI cards' figures from the snapshot of `day` (its PortfolioDay row; None: no snapshot that day)."""
    p = PortfolioDay.objects.filter(day=day).first()
    if p is None:
        return None
    return {"active_systems": p.systems, "critical_high": p.open_critical + p.open_high, "past_sla": p.past_sla,
            "high_risks": p.high_risks, "awaiting": p.awaiting, "expiring": p.expiring, "coverage": p.coverage,
            "never_exercised": p.never_exercised}


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

def daily(first: date, last: date) -> dict[date, PortfolioDay]:
    """{day: the portfolio's totals} for the days first..last that have snapshots (one row a day)."""
    return {p.day: p for p in PortfolioDay.objects.filter(day__range=(first, last))}


def series(at: datetime, days: int) -> dict:
    """The trend lines of the last `days` days up to the day of `at` (days without a snapshot are left out)."""
    last = timezone.localdate(at)
    first = last - timedelta(days=days - 1)
    by_day = daily(first - timedelta(days=MTTR_WINDOW_DAYS - 1), last)
    shown = [d for d in sorted(by_day) if d >= first]
    out: dict = {"days": shown, "open": {}, "mttr": {}}
    for sev in SEVERITIES:
        out["open"][sev] = [getattr(by_day[d], f"open_{sev}") for d in shown]
    open_total = [sum(getattr(by_day[d], f"open_{s}") for s in SEVERITIES) for d in shown]
    out["within_sla"] = [round(100 * (n - by_day[d].past_sla) / n, 1) if n else None
                         for d, n in zip(shown, open_total)]
    start = last - timedelta(days=days - 1 + MTTR_WINDOW_DAYS)
    calendar = [start + timedelta(days=k) for k in range((last - start).days + 1)]
    position = {d: k for k, d in enumerate(calendar)}
    for sev in SEVERITIES:  # sums over the window from running totals over every calendar day
        n_total, h_total = [0], [0.0]
        for d in calendar:
            row = by_day.get(d)
            n_total.append(n_total[-1] + (getattr(row, f"remediated_{sev}") if row else 0))
            h_total.append(h_total[-1] + (getattr(row, f"remediated_{sev}_hours") if row else 0.0))
        values = []
        for d in shown:
            end = position[d] + 1
            n = n_total[end] - n_total[end - MTTR_WINDOW_DAYS]
            hours = h_total[end] - h_total[end - MTTR_WINDOW_DAYS]
            values.append(round(hours / n / 24, 1) if n else None)
        out["mttr"][sev] = values
    out["high_risks"] = [by_day[d].high_risks for d in shown]
    out["accepted_in_force"] = [by_day[d].accepted_in_force for d in shown]
    out["coverage"] = [None if by_day[d].coverage_exact is None else round(by_day[d].coverage_exact, 1)
                       for d in shown]
    return out


def _line_chart(x, lines: list[tuple[str, list, str]], *, axis: str, percent: bool = False) -> str:
    from governance.dashboard.selectors import chart_layout
    from governance.plotting import figure_json

    unit = "%" if percent else ""
    mode = "lines+markers" if len(x) < 40 else "lines"
    traces = [{"type": "scatter", "x": x, "y": values, "name": name, "mode": mode,
               "line": {"color": colour, "width": 2}, "connectgaps": False,
               "hovertemplate": "%{x|%Y-%m-%d}: %{y}" + unit + f" {name.lower()}<extra></extra>"}
              for name, values, colour in lines]
    yaxis = {"gridcolor": "#e6e9ee", "title": {"text": axis}, "rangemode": "tozero"}
    return figure_json(traces, chart_layout(height=260, xaxis={"gridcolor": "#e6e9ee", "type": "date"},
                                            yaxis=yaxis | ({"range": [0, 100]} if percent else {})))


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
