"""Plotly figures for RMF coverage, built on the server and sent as JSON."""
from __future__ import annotations

import plotly.graph_objects as go

from governance.plotting import figure_json
from governance.rmf.models import AssessmentStatus as S

STATUS_COLOURS = {
    S.IMPLEMENTED: "#1f9d55",
    S.PARTIAL: "#f2b134",
    S.GAP: "#d64545",
    S.NOT_ASSESSED: "#c5cbd3",
    S.NOT_APPLICABLE: "#8e99a8",
}
LAYOUT = dict(
    margin=dict(l=80, r=20, t=10, b=30), height=240, barmode="stack",
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    font=dict(family="Inter, system-ui, sans-serif", size=12, color="#243042"),
    legend=dict(orientation="h", y=-0.15), xaxis=dict(gridcolor="#e6e9ee"),
)


def coverage_figure_json(coverage) -> str:
    functions = [c.function for c in coverage]
    fig = go.Figure()
    for status, label in S.choices:
        fig.add_bar(
            y=functions, x=[c.counts.get(status, 0) for c in coverage], name=label, orientation="h",
            marker_color=STATUS_COLOURS[status],
            hovertemplate="%{y}: %{x} " + label.lower() + "<extra></extra>",
        )
    fig.update_layout(**{**LAYOUT, "height": 270, "margin": dict(l=80, r=20, t=10, b=40),
                         "legend": dict(orientation="h", y=-0.32)})
    fig.update_xaxes(title=dict(text="subcategories", standoff=4))
    fig.update_yaxes(autorange="reversed", ticksuffix="  ", tickvals=functions,
                     ticktext=[f"{c.function} · {_pct(c.percent)}" for c in coverage])
    return fig.to_json()


def _pct(value) -> str:
    return "n/a" if value is None else f"{value}%"


def _labels(systems) -> list[str]:
    """Row names: the system's name, with its slug when two share a name (Plotly would merge their rows)."""
    names = [s.name for s in systems]
    return [f"{s.name} ({s.slug})" if names.count(s.name) > 1 else s.name for s in systems]


def portfolio_heatmap_json(systems, coverage_map, functions, link=None) -> str:
    """Systems × functions, and the system's pooled figure in the last column ("n/a" cells stay blank).
    `link(system, function code or None for the pooled column)`, when given, is each cell's customdata: the list
    behind it (static/js/chart-links.js opens it on a click)."""
    columns = [*functions, "SYSTEM"]
    z = [[(coverage_map[s.pk].get(f).percent if coverage_map[s.pk].get(f) else None) for f in functions]
         + [coverage_map[s.pk].percent] for s in systems]
    # plain Plotly properties (governance/plotting.py; ~20 ms → ~1 ms for 25 systems)
    heatmap = {"type": "heatmap", "z": z, "x": columns, "y": _labels(systems), "zmin": 0, "zmax": 100,
               "colorscale": [[0, "#d64545"], [0.5, "#f2b134"], [1, "#1f9d55"]],
               "text": [[_pct(v) for v in row] for row in z], "texttemplate": "%{text}", "hoverongaps": False,
               "hovertemplate": "%{y} · %{x}: %{text} covered<extra></extra>",
               "colorbar": {"title": {"text": "coverage %"}}}
    if link:
        heatmap["customdata"] = [[link(s, f) for f in functions] + [link(s, None)] for s in systems]
    layout = {**{k: v for k, v in LAYOUT.items() if k != "barmode"},
              "height": max(220, 36 * len(systems) + 80), "margin": {"l": 200, "r": 20, "t": 10, "b": 30},
              "yaxis": {"autorange": "reversed", "ticksuffix": "  "},  # a gap between system names and cells
              "xaxis": {**LAYOUT["xaxis"], "side": "top"},
              # a phone (static/js/rampart.js applies meta.narrow below 700 px): no colour bar (each cell says its
              # figure), short column labels, clipped system names, the cells' figures at a readable size
              "meta": {"narrow": {
                  "data": [{"showscale": False, "textfont": {"size": 10}}],
                  "layout": {"margin": {"l": 8, "r": 4, "t": 10, "b": 10},
                             "xaxis": {**LAYOUT["xaxis"], "side": "top", "tickangle": 0, "tickmode": "array",
                                       "tickvals": columns, "ticktext": [SHORT_COLUMNS.get(c, c[:4]) for c in columns]},
                             "yaxis": {"autorange": "reversed", "ticksuffix": " ", "automargin": True,
                                       "tickmode": "array", "tickvals": heatmap["y"],
                                       "ticktext": [_clip(name, 16) for name in heatmap["y"]]}}}}}
    return figure_json([heatmap], layout)


# NIST AI RMF's function abbreviations (as in its subcategory ids, GV-1.1 …); "All" is the system's pooled figure
SHORT_COLUMNS = {"GOVERN": "GV", "MAP": "MP", "MEASURE": "MS", "MANAGE": "MG", "SYSTEM": "All"}


def _clip(label: str, width: int) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
