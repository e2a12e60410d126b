"""The self-contained HTML report: Jinja2 with autoescaping, styles, scripts and plotly.js inlined."""

from __future__ import annotations

import json
import math
import shlex
from functools import lru_cache
from importlib import metadata, resources

import jinja2
from plotly.offline import get_plotlyjs

from reports import charts
from reports.model import Report

TEST_NAMES = {"randomization": "paired randomisation test, {n:,} sign flips", "t-test": "paired t-test"}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(spec: str, dash: str = "–"):
    return lambda v: dash if _missing(v) else format(v, spec)


def _pvalue(p) -> str:
    if _missing(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _bytes(n) -> str:
    if not n:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024


def _params(n) -> str:
    if not n:
        return "–"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        score=_fmt(".4f"), signed=_fmt("+.4f"), rate=_fmt(",.0f"), seconds=_fmt(".2f"), pvalue=_pvalue,
        percent=_fmt(".1%"), ms=lambda v: "–" if _missing(v) else f"{v:.2f} ms", bytes=_bytes, params=_params,
        pretty=lambda v: json.dumps(v, indent=1, ensure_ascii=False, sort_keys=False),
        shell=lambda argv: shlex.join(str(a) for a in argv))
    return env


def _asset(name: str) -> str:
    return (resources.files("reports") / "templates" / name).read_text(encoding="utf-8")


def describe_test(report: Report) -> str:
    return TEST_NAMES[report.options.test].format(n=report.options.n_resamples)


def render_html(report: Report) -> str:
    title = report.options.title or f"llara-bench report: {', '.join(dict.fromkeys(r['suite']['name'] for r in report.results.values()))}"
    rates = {m: report.mean_docs_per_second(m) for m in report.models}
    measures = list(dict.fromkeys(k for r in report.results.values() for k in r["metrics"]))
    return _environment().get_template("report.html.j2").render(
        r=report, title=title, runs=report.runs(), meta={m: report.model_meta(m) for m in report.models},
        rate=rates, measures=measures, phases=report.phases(), timing_rows=report.timing_rows(),
        test_name=describe_test(report), correction_name=report.options.correction.capitalize(),
        figures={"fig-quality": charts.quality_vs_throughput(report), "fig-phases": charts.phase_breakdown(report)},
        css=_asset("report.css"), report_js=_asset("report.js"), plotly_js=get_plotlyjs(), version=_version())


def _version() -> str:
    try:
        return metadata.version("llara-bench")
    except metadata.PackageNotFoundError:
        return "(not installed)"
