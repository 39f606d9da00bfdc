"""Plotly figures as JSON from plain dicts of Plotly's own properties.

go.Figure validates every property as it is set; on the posture page that was most of a chart's cost (16 ms against
0.4 ms for five 90-point lines; 30-60 ms for the risk matrix through make_subplots: bench/posture.py). Charts built
here write the same properties as dicts, with the template go.Figure would embed, and plotly.io serialises them
without validating again. The browser tests draw them."""
from __future__ import annotations

import functools

import plotly.io as pio


@functools.cache
def plotly_template() -> dict:
    """Plotly's default template, as go.Figure embeds it in every figure (built once)."""
    return pio.templates[pio.templates.default].to_plotly_json()


def figure_json(traces: list[dict], layout: dict) -> str:
    """The figure's JSON, with Plotly's default template unless the layout names one."""
    return pio.to_json({"data": traces, "layout": {"template": plotly_template(), **layout}}, validate=False)
