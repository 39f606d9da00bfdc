"""The register's heat map: inherent vs residual positions on the matrix, built on the server, sent as JSON."""
from __future__ import annotations

from governance.plotting import figure_json
from governance.risks.models import RiskMatrix

MAX_REFS_IN_HOVER = 12
DOMAINS = ([0.0, 0.44], [0.56, 1.0])  # the two grids' widths, as make_subplots(cols=2, horizontal_spacing=0.12)



def _pale(colour: str, keep: float = 0.28) -> str:
    """The colour mixed with white: empty cells show their level without shouting."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(round(255 - (255 - c) * keep) for c in (r, g, b))


def _clip(label: str, width: int = 9) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _hover_refs(refs: list[str]) -> str:
    shown = ", ".join(refs[:MAX_REFS_IN_HOVER])
    more = len(refs) - MAX_REFS_IN_HOVER
    return shown + (f" … and {more} more" if more > 0 else "") if refs else "no risks"


def heatmap_json(matrix: RiskMatrix, cells: dict[str, dict[tuple[int, int], list[str]]], link=None) -> str:
    """Two heat maps side by side; each cell has its level's colour (pale when empty) and the count as text.
    `link(side, likelihood, impact)`, when given, is the URL of the list behind a cell: the last item of its customdata
    (static/js/chart-links.js opens it on a click)."""
    rows, cols = matrix.size
    levels = sorted(matrix.levels, key=lambda lv: lv["rank"])
    index = {lv["key"]: k for k, lv in enumerate(levels)}
    # Two shades per level: pale (no risk in the cell) and full. A stepwise colour scale over 2 × levels bands.
    shades = [c for lv in levels for c in (_pale(lv["colour"]), lv["colour"])]
    bands = len(shades)
    colorscale = [pair for k, c in enumerate(shades) for pair in ([k / bands, c], [(k + 1) / bands, c])]
    # Impact by number, likelihood with its label ("5 Almost certain"; a long custom label clipped); the y axis
    # widens its margin for them. On a narrow screen (meta.narrow, applied by static/js/rampart.js) the likelihood
    # labels are clipped short so the two grids keep their width; full labels on hover and in the matrix settings.
    x = [str(j) for j in range(1, cols + 1)]
    y = [f"{i} {_clip(label, 18)}" for i, label in enumerate(matrix.likelihood_labels, start=1)]
    narrow_y = [f"{i} {_clip(label)}" for i, label in enumerate(matrix.likelihood_labels, start=1)]
    # Two grids side by side, as make_subplots(rows=1, cols=2, horizontal_spacing=0.12) lays them out, in plain
    # Plotly properties (governance/plotting.py: make_subplots and its validation took 30-60 ms a chart).
    traces, annotations = [], []
    for col, side in enumerate(("inherent", "residual"), start=1):
        z, text, hover = [], [], []
        for i in range(1, rows + 1):
            z_row, t_row, h_row = [], [], []
            for j in range(1, cols + 1):
                key = matrix.cells[i - 1][j - 1]
                refs = cells[side].get((i, j), [])
                z_row.append(index.get(key, 0) * 2 + (1 if refs else 0) + 0.5)
                t_row.append(str(len(refs)) if refs else "")
                level = matrix.level(key) or {"label": key}
                words = (f"{matrix.impact_labels[j - 1]} impact · {level['label']} · {len(refs)} "
                         f"risk{'s' if len(refs) != 1 else ''}<br>{_hover_refs(refs)}")
                h_row.append([words, link(side, i, j)] if link else words)
            z.append(z_row)
            text.append(t_row)
            hover.append(h_row)
        suffix = "" if col == 1 else str(col)
        traces.append({
            "type": "heatmap", "z": z, "x": x, "y": y, "zmin": 0, "zmax": bands, "colorscale": colorscale,
            "showscale": False, "xgap": 3, "ygap": 3, "text": text, "texttemplate": "%{text}",
            "textfont": {"size": 15, "color": "#101828"}, "customdata": hover,
            "hovertemplate": ("Likelihood %{y} × impact %{x}<br>%{customdata" + ("[0]" if link else "")
                              + "}<extra></extra>"),
            "name": side, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
        })
        annotations.append({"text": side.title(), "x": sum(DOMAINS[col - 1]) / 2, "xref": "paper", "y": 1.0,
                            "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                            "showarrow": False, "font": {"size": 16}})
    axis_x = {"title": {"text": f"Impact (1–{cols})"}, "side": "bottom", "tickangle": 0, "fixedrange": True}
    layout = {
        "height": 330, "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "Inter, system-ui, sans-serif", "size": 11, "color": "#243042"}, "annotations": annotations,
        "xaxis": {**axis_x, "anchor": "y", "domain": DOMAINS[0]},
        "xaxis2": {**axis_x, "anchor": "y2", "domain": DOMAINS[1]},
        "yaxis": {"title": {"text": "Likelihood"}, "fixedrange": True, "anchor": "x", "domain": [0.0, 1.0],
                  "automargin": True},
        # the rows are the same likelihoods: labelled once, on the left (the right grid's labels overlapped the left)
        "yaxis2": {"fixedrange": True, "showticklabels": False, "anchor": "x2", "domain": [0.0, 1.0]},
        "meta": {"narrow": {"layout": {"yaxis": {"tickmode": "array", "tickvals": y, "ticktext": narrow_y}}}},
    }
    return figure_json(traces, layout)
