"""A layered provenance graph: datasets → jobs → model versions → AI systems, drawn with Plotly."""
from __future__ import annotations

import plotly.graph_objects as go

from governance.lineage.models import NodeKind

COLUMNS = {NodeKind.DATASET: 0, NodeKind.JOB: 1, NodeKind.MODEL_VERSION: 2, NodeKind.SYSTEM: 3}
COLOURS = {NodeKind.DATASET: "#2e6bd6", NodeKind.JOB: "#8e99a8", NodeKind.MODEL_VERSION: "#e8702a", NodeKind.SYSTEM: "#1f3a5f"}
SYMBOLS = {NodeKind.DATASET: "square", NodeKind.JOB: "circle", NodeKind.MODEL_VERSION: "diamond", NodeKind.SYSTEM: "hexagon"}


def graph_figure_json(nodes, edges) -> str:
    by_column: dict[int, list] = {}
    for n in sorted(nodes, key=lambda n: n.name):
        by_column.setdefault(COLUMNS[n.kind], []).append(n)
    pos = {}
    height = max((len(v) for v in by_column.values()), default=1)
    for col, items in by_column.items():
        offset = (height - len(items)) / 2
        for row, n in enumerate(items):
            pos[n.pk] = (col, -(row + offset))
    xs, ys = [], []
    for e in edges:
        if e.src_id in pos and e.dst_id in pos:
            (x0, y0), (x1, y1) = pos[e.src_id], pos[e.dst_id]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    fig = go.Figure()
    fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color="#c5cbd3", width=1.5), hoverinfo="skip", showlegend=False)
    for kind, label in NodeKind.choices:
        members = [n for n in nodes if n.kind == kind]
        if not members:
            continue
        fig.add_scatter(
            x=[pos[n.pk][0] for n in members], y=[pos[n.pk][1] for n in members], mode="markers+text", name=label,
            text=[n.name[:40] for n in members], textposition="top center",
            marker=dict(size=16, color=COLOURS[kind], symbol=SYMBOLS[kind], line=dict(width=1, color="#fff")),
            hovertext=[f"{n.key}<br>first seen {n.first_seen:%Y-%m-%d}<br>last seen {n.last_seen:%Y-%m-%d}" for n in members],
            hoverinfo="text",
        )
    fig.update_layout(
        height=max(260, 70 * height + 80), margin=dict(l=20, r=20, t=20, b=20),
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", legend=dict(orientation="h", y=-0.05),
        xaxis=dict(visible=False, range=[-0.5, 3.5]), yaxis=dict(visible=False),
        font=dict(family="Inter, system-ui, sans-serif", size=12, color="#243042"),
    )
    return fig.to_json()
