"""The report's charts as inline SVG: a few kilobytes each, drawn here, with no script library to inline.

Every name from a model or a dataset goes through ``html.escape`` (SVG is XML inside the HTML page), and a
marker's details are its ``<title>``, which browsers show on hover. Axes fit the data: a measure's axis never
runs past 1 or below 0, and the plot area is inset by the largest marker so that no marker is clipped.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from html import escape

from llara_bench.reports.model import Report

# Twelve colours, each readable on white and told apart from the others: a model's colour is its name's hash into
# this palette, so the same model has the same colour in every report, whichever models sit beside it. Only when
# two models of one report hash to the same colour does one of them (the later by name) take the next free one.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#2f4b7c", "#d45087", "#8cd17d")
PHASE_COLOURS = {"load": "#9aa5b1", "encode_corpus": "#4e79a7", "encode_queries": "#76b7b2", "index": "#59a14f",
                 "search": "#f28e2b", "evaluate": "#b07aa1"}
OTHER_PHASE = "#c7c7c7"
MIN_MARKER, MAX_MARKER, UNKNOWN_MARKER = 10, 46, 9  # px diameters
WIDTH, HEIGHT = 760, 400  # the viewBox; the SVG scales to its container
CHAR = 7.0  # px per character of 12 px text, to place labels without measuring them


def colour(model: str) -> str:
    """The model's own colour: a stable hash of its name (not Python's salted hash) into PALETTE."""
    return PALETTE[_slot(model)]


def _slot(model: str) -> int:
    return int.from_bytes(hashlib.blake2b(model.encode("utf-8"), digest_size=4).digest(), "big") % len(PALETTE)


def colours(models: list[str]) -> dict[str, str]:
    """Each model's colour in one report: its own (`colour`), unless a model earlier by name has it, then the next
    free one; with more models than colours, colours repeat."""
    taken: set[int] = set()
    out = {}
    for model in sorted(models):
        slot = _slot(model)
        for step in range(len(PALETTE)):
            if (slot + step) % len(PALETTE) not in taken or len(taken) >= len(PALETTE):
                slot = (slot + step) % len(PALETTE)
                break
        taken.add(slot)
        out[model] = PALETTE[slot]
    return {m: out[m] for m in models}


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


# -- axes ---------------------------------------------------------------------------------------
def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering [low, high]."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within [low, high]; 1-2-5 steps when the range spans less than two decades."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    multiples = (1,) if math.log10(high / low) >= 2 else (1, 2, 5)
    return [m * 10 ** e for e in decades for m in multiples if low <= m * 10 ** e <= high]


def measure_range(values: list[float]) -> tuple[float, float]:
    """The axis range of a measure: the data widened to the round ticks around it (at least 0.1 apart), never
    beyond [0, 1], the range of IR measures."""
    low, high = min(values), max(values)
    if high - low < 0.1:
        low, high = low - (0.1 - (high - low)) / 2, high + (0.1 - (high - low)) / 2
    ticks = nice_ticks(low, high)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.1
    return max(0.0, math.floor(low / step + 1e-9) * step), min(1.0, math.ceil(high / step - 1e-9) * step)


@dataclass
class Axis:
    """A linear (or log10) map from data to pixels, inset by ``inset`` px at both ends."""

    low: float
    high: float
    start: float  # pixel of low
    end: float  # pixel of high
    log: bool = False
    inset: float = 0.0

    def __call__(self, v: float) -> float:
        f = (lambda x: math.log10(x)) if self.log else (lambda x: x)
        lo, hi = f(self.low), f(self.high)
        share = 0.5 if hi == lo else (f(v) - lo) / (hi - lo)
        direction = 1 if self.end > self.start else -1
        a, b = self.start + direction * self.inset, self.end - direction * self.inset
        return a + share * (b - a)


def _number(v: float, log: bool, step: float = 0.1) -> str:
    """A tick's label: thousands separated on the log axis; on a linear one, as many decimals as the tick step
    needs (0.0, 0.2, ..., 1.0; not 0, 0.2, ..., 1)."""
    if log:
        return f"{v:,.0f}" if v >= 1 else f"{v:g}"
    return f"{v:.{max(0, -math.floor(math.log10(step) + 1e-9))}f}"


def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'aria-label="{escape(label)}" font-size="12">' + "".join(body) + "</svg>")


# -- quality against cost -------------------------------------------------------------------------
def quality_vs_cost(report: Report) -> list[dict]:
    """One view per dataset (and one for the mean over the datasets when there are several): a marker per
    model, its score against the device-seconds that encoding (or indexing) 1M corpus documents takes at its
    measured rate; the marker grows with the parameter count (◆: size unknown). Returns
    [{"key", "label", "svg", "missing"}], the first view shown first."""
    sizes, palette = marker_sizes(report), colours(report.models)
    views: list[str | None] = ([None] if len(report.datasets) > 1 else []) + list(report.datasets)
    out = []
    for i, dataset in enumerate(views):
        points, missing = [], []
        for model in report.models:
            if dataset is None:
                x, y = report.mean_cost_per_million(model), report.mean(model)
            else:
                x, y = report.cost_per_million(model, dataset), report.value(model, dataset)
            if (dataset is None or (model, dataset) in report.results) and (x is None or y is None):
                missing.append(model)
            if x is not None and y is not None:
                points.append((model, x, y))
        label = "mean over the datasets" if dataset is None else dataset
        out.append({"key": f"view-{i}", "label": label, "missing": missing,
                    "svg": _scatter(report, points, sizes, palette, label, dataset)})
    return out


def _scatter(report: Report, points: list[tuple[str, float, float]], sizes: dict[str, float],
             palette: dict[str, str], label: str, dataset: str | None) -> str:
    left, right, top, bottom = 64, WIDTH - 16, 14, HEIGHT - 46
    title = f"{report.metric} against device-seconds per 1M corpus documents, {label}"
    if not points:
        return _svg(WIDTH, 60, title, [f'<text x="10" y="30">no model has both a score and a cost on '
                                       f'{escape(label)}</text>'])
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x_low, x_high = min(xs) / 2, max(xs) * 2
    y_low, y_high = measure_range(ys)
    inset = max(sizes[m] for m, _, _ in points) / 2 + 4  # the largest marker stays inside the plot
    x = Axis(x_low, x_high, left, right, log=True, inset=inset)
    y = Axis(y_low, y_high, bottom, top, inset=inset + 14)  # room above a marker for its name
    body = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="#fff" '
            f'stroke="#d8dde4"/>']
    y_ticks = nice_ticks(y_low, y_high)
    step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 0.1
    for t in [t for t in y_ticks if top <= y(t) <= bottom]:
        body.append(f'<line x1="{left}" x2="{right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eef1f4"/>'
                    f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#5b6573">'
                    f'{_number(t, False, step)}</text>')
    for t in [t for t in log_ticks(x_low, x_high) if left <= x(t) <= right]:
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{bottom}" stroke="#eef1f4"/>'
                    f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#5b6573">{_number(t, True)}</text>')
    body.append(f'<text x="{(left + right) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" fill="#1d2430">'
                "device-seconds to encode 1M corpus documents (log scale; left is cheaper)</text>"
                f'<text transform="translate(14 {(top + bottom) / 2:.0f}) rotate(-90)" text-anchor="middle" '
                f'fill="#1d2430">{escape(report.metric)}</text>')
    placed: list[tuple[float, float, float, float]] = []
    for model, cx, cy in sorted(points, key=lambda p: -sizes[p[0]]):  # big markers first, small ones on top
        px, py, d = x(cx), y(cy), sizes[model]
        params = report.n_parameters(model)
        where = "mean over the datasets" if dataset is None else f"on {dataset}"
        tip = (f"{model} {where}\n{report.metric} {cy:.4f}\n{cx:,.0f} device-s per 1M documents\n"
               + (f"{params:,} parameters" if params else "size unknown"))
        shape = (f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="{d / 2:.1f}"' if params else
                 f'<path class="point" d="M{px:.1f} {py - d / 2 - 2:.1f}l{d / 2 + 2:.1f} {d / 2 + 2:.1f}'
                 f'l{-d / 2 - 2:.1f} {d / 2 + 2:.1f}l{-d / 2 - 2:.1f} {-d / 2 - 2:.1f}z"')
        lx, ly, anchor = _label_place(model, px, py, d, placed, left, right, top, bottom)
        body.append(f'<g data-model="{escape(model)}"><title>{escape(tip)}</title>{shape} fill="{palette[model]}" '
                    f'fill-opacity="0.8" stroke="#333" stroke-width="1"/>'
                    f'<text class="point-label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" '
                    f'fill="#1d2430">{escape(model)}</text></g>')
    return _svg(WIDTH, HEIGHT, title, body)


def _label_place(model: str, px: float, py: float, d: float, placed: list, left: float, right: float,
                 top: float, bottom: float) -> tuple[float, float, str]:
    """Above the marker, else below, right or left of it: the first place that overlaps no label placed
    before and stays inside the plot; the name is never shortened."""
    w, h, r = CHAR * len(model), 14, d / 2 + 3
    candidates = [(px, py - r - 3, "middle"), (px, py + r + 12, "middle"), (px + r, py + 4, "start"),
                  (px - r, py + 4, "end")]
    for lx, ly, anchor in candidates:
        x0 = lx - w / 2 if anchor == "middle" else (lx if anchor == "start" else lx - w)
        box = (x0, ly - h + 3, x0 + w, ly + 3)
        inside = box[0] >= left and box[2] <= right and box[1] >= top and box[3] <= bottom
        if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            placed.append(box)
            return lx, ly, anchor
    lx, ly, anchor = candidates[0]
    lx = min(max(lx, left + w / 2), right - w / 2)
    placed.append((lx - w / 2, ly - h + 3, lx + w / 2, ly + 3))
    return lx, ly, anchor


# -- wall time per phase ----------------------------------------------------------------------------
def phase_breakdown(report: Report) -> str:
    """One stacked bar per (model, dataset): the wall seconds of each phase, on one shared axis, its total at its
    end. Names sit left of their bar, or above it when one is too long to leave the bars room (never cut)."""
    rows = [(m, d, report.phase_seconds(m, d)) for m, d, _ in report.pairs()]
    if not rows:
        return _svg(WIDTH, 40, "no timings", ['<text x="10" y="24">no timings</text>'])
    label_w = CHAR * max(max(len(m), len(d)) for m, d, _ in rows) + 14
    above = label_w > 220
    left, right, top, row_h = (10, WIDTH - 64, 8, 44) if above else (label_w, WIDTH - 64, 8, 36)
    bottom = top + row_h * len(rows)
    high = max(sum(s.values()) for _, _, s in rows) or 1.0
    x = Axis(0.0, high, left, right)
    body = []
    for t in nice_ticks(0.0, high):
        if x(t) <= right + 0.5:
            body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{bottom}" stroke="#eef1f4"/>'
                        f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#5b6573">{t:g}</text>')
    for i, (model, dataset, seconds) in enumerate(rows):
        y0 = top + i * row_h
        if above:
            body.append(f'<text x="{left}" y="{y0 + 13}" fill="#1d2430"><tspan font-weight="600">{escape(model)}'
                        f'</tspan><tspan fill="#5b6573"> · {escape(dataset)}</tspan></text>')
            bar_y, bar_h = y0 + 18, row_h - 24
        else:
            body.append(f'<text x="{left - 8}" y="{y0 + 15}" text-anchor="end" fill="#1d2430" font-weight="600">'
                        f'{escape(model)}</text><text x="{left - 8}" y="{y0 + 29}" text-anchor="end" '
                        f'fill="#5b6573" font-size="11">{escape(dataset)}</text>')
            bar_y, bar_h = y0 + 6, row_h - 12
        at = 0.0
        for phase, s in seconds.items():
            if s <= 0:
                continue
            body.append(f'<rect class="bar" data-phase="{escape(phase)}" x="{x(at):.2f}" y="{bar_y}" '
                        f'width="{max(x(at + s) - x(at), 0.5):.2f}" height="{bar_h}" '
                        f'fill="{PHASE_COLOURS.get(phase, OTHER_PHASE)}"><title>{escape(model)} · {escape(dataset)}'
                        f"\n{escape(phase)} {s:.3f} s</title></rect>")
            at += s
        body.append(f'<text x="{x(at) + 5:.1f}" y="{bar_y + bar_h / 2 + 4:.1f}" fill="#5b6573" font-size="11">'
                    f"{at:.2f} s</text>")
    body.append(f'<text x="{(left + right) / 2:.0f}" y="{bottom + 36}" text-anchor="middle" fill="#1d2430">'
                "wall seconds</text>")
    return _svg(WIDTH, bottom + 44, "wall seconds per phase for each model and dataset", body)


def phase_legend(report: Report) -> list[tuple[str, str]]:
    """(phase, colour) of each phase any result has, in pipeline order."""
    return [(p, PHASE_COLOURS.get(p, OTHER_PHASE)) for p in report.phases()]
