"""Plotly figures for the report, as JSON for ``Plotly.newPlot`` (plotly.js is inlined by the HTML writer).

Plotly renders a small subset of HTML in labels (``<b>``, ``<br>``, ``<a href>``), so every name from a
model or a dataset is HTML-escaped before it goes in: plotly shows ``&lt;script&gt;`` as ``<script>``.
``plotly.io.to_json`` also escapes ``<``, ``>`` and ``/``, so the JSON is safe inside a ``<script>``.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go
import plotly.io as pio

from llara_bench.reports.model import Report

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
PHASE_COLOURS = {"load": "#9aa5b1", "encode_corpus": "#1f77b4", "encode_queries": "#17becf", "index": "#2ca02c",
                 "search": "#ff7f0e", "evaluate": "#9467bd"}
MIN_MARKER, MAX_MARKER, UNKNOWN_MARKER = 10, 46, 9  # px diameters


def _t(text: str) -> str:
    return html.escape(str(text), quote=False)


def _layout(title: str, **kw) -> dict:
    return dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50), font=dict(size=13),
                title=dict(text=title, font=dict(size=14), x=0, xref="paper", y=0.98, yref="container"),
                legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, traceorder="normal"), **kw)


def marker_sizes(report: Report) -> dict[str, float]:
    """Marker diameter per model, linear in log10(parameters) from the report's smallest model (MIN_MARKER)
    to its largest (MAX_MARKER), so a 22M and a 7B model are both visible; a single known size gets the middle
    size, and unknown sizes get UNKNOWN_MARKER."""
    params = {m: report.n_parameters(m) for m in report.models}
    known = {m: math.log10(p) for m, p in params.items() if p}
    if not known:
        return {m: UNKNOWN_MARKER for m in report.models}
    low, high = min(known.values()), max(known.values())
    if high == low:  # one size known (or all equal): a middle-sized marker
        return {m: (MIN_MARKER + MAX_MARKER) / 2 if m in known else UNKNOWN_MARKER for m in report.models}
    return {m: MIN_MARKER + (MAX_MARKER - MIN_MARKER) * (known[m] - low) / (high - low) if m in known
            else UNKNOWN_MARKER for m in report.models}


def quality_vs_cost(report: Report) -> str:
    """One marker per model: its score against what encoding (or indexing) 1M corpus documents costs in
    device-seconds at its measured rate, for the mean over the datasets (when there are several; models run on
    all of them) and for each dataset, chosen from a drop-down."""
    sizes = marker_sizes(report)
    views: list[str | None] = ([None] if len(report.datasets) > 1 else []) + list(report.datasets)
    fig = go.Figure()
    owners = []  # the view of each trace
    for v, dataset in enumerate(views):
        for i, model in enumerate(report.models):
            if dataset is None:
                x, y = report.mean_cost_per_million(model), report.mean(model)
            else:
                x, y = report.cost_per_million(model, dataset), report.value(model, dataset)
            if x is None or y is None:
                continue
            params = report.n_parameters(model)
            where = "mean over the datasets" if dataset is None else f"on {_t(dataset)}"
            fig.add_trace(go.Scatter(
                x=[x], y=[y], mode="markers+text", name=_t(model), text=[_t(model)], textposition="top center",
                visible=v == 0, legendgroup=_t(model),
                marker=dict(size=sizes[model], color=PALETTE[i % len(PALETTE)], opacity=0.75,
                            symbol="circle" if params else "diamond", line=dict(width=1, color="#333")),
                hovertemplate=(f"<b>{_t(model)}</b> {where}<br>{_t(report.metric)} %{{y:.4f}}<br>"
                               f"%{{x:,.0f}} device-s per 1M documents<br>"
                               f"{f'{params:,} parameters' if params else 'size unknown'}"
                               "<extra></extra>")))
            owners.append(v)

    def label(dataset):
        return "mean over the datasets" if dataset is None else _t(dataset)

    layout = _layout(f"Quality vs cost: {label(views[0])} (marker size grows with the parameter count; "
                     "◆ size unknown)", height=460,
                     xaxis=dict(title="device-seconds to encode 1M corpus documents (log; left is cheaper)",
                                type="log"),
                     yaxis=dict(title=_t(report.metric)))
    if len(views) > 1:
        layout["updatemenus"] = [dict(
            type="dropdown", x=1, xanchor="right", y=1.0, yanchor="bottom", showactive=True,
            buttons=[dict(label=label(d), method="update",
                          args=[{"visible": [o == v for o in owners]},
                                {"title.text": f"Quality vs cost: {label(d)}"}]) for v, d in enumerate(views)])]
        layout["legend"]["x"] = 0
    fig.update_layout(**layout)
    return pio.to_json(fig, validate=False)


def phase_breakdown(report: Report) -> str:
    rows = [(m, d) for m, d, _ in report.pairs()]
    labels = [f"{_t(m)} · {_t(d)}" for m, d in rows]
    seconds = {(m, d): report.phase_seconds(m, d) for m, d in rows}
    phases = list(dict.fromkeys(p for s in seconds.values() for p in s))
    fig = go.Figure()
    for phase in phases:
        fig.add_trace(go.Bar(
            y=labels, x=[seconds[r].get(phase, 0.0) for r in rows], name=phase, orientation="h",
            marker_color=PHASE_COLOURS.get(phase), hovertemplate="%{y}<br>" + phase + " %{x:.3f} s<extra></extra>"))
    fig.update_layout(**_layout(
        "Wall time per phase", barmode="stack", height=max(260, 110 + 28 * len(rows)),
        xaxis=dict(title="wall seconds"), yaxis=dict(autorange="reversed", automargin=True)))
    return pio.to_json(fig, validate=False)
