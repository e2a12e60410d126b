"""The self-contained HTML report: Jinja2 with autoescaping, styles, scripts and plotly.js inlined."""

from __future__ import annotations

import json
import shlex
from functools import lru_cache, partial
from importlib import metadata, resources

import jinja2
from plotly.offline import get_plotlyjs

from llara_bench.reports import charts
from llara_bench.reports import format as fmt
from llara_bench.reports.model import Report

@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("llara_bench.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        score=partial(fmt.number, spec=".4f"), signed=partial(fmt.number, spec="+.4f"),
        rate=partial(fmt.number, spec=",.0f"), seconds=partial(fmt.number, spec=".2f"),
        percent=partial(fmt.number, spec=".1%"), ms=lambda v: fmt.DASH if fmt.missing(v) else f"{v:.2f} ms",
        pvalue=fmt.pvalue, bytes=fmt.size_bytes, params=fmt.parameters,
        pretty=lambda v: json.dumps(v, indent=1, ensure_ascii=False, sort_keys=False),
        shell=lambda argv: shlex.join(str(a) for a in argv))
    return env


def _asset(name: str) -> str:
    return (resources.files("llara_bench.reports") / "templates" / name).read_text(encoding="utf-8")


def render_html(report: Report) -> str:
    return _environment().get_template("report.html.j2").render(
        r=report, title=report.title, runs=report.runs(), meta={m: report.model_meta(m) for m in report.models},
        rate={m: report.mean_docs_per_second(m) for m in report.models}, measures=report.measures(),
        phases=report.phases(), timing_rows=report.timing_rows(), test_name=report.test_description,
        correction_name=report.options.correction.capitalize(),
        figures={"fig-quality": charts.quality_vs_cost(report), "fig-phases": charts.phase_breakdown(report)},
        css=_asset("report.css"), report_js=_asset("report.js"), plotly_js=get_plotlyjs(), version=_version())


def _version() -> str:
    try:
        return metadata.version("llara-bench")
    except metadata.PackageNotFoundError:
        return "(not installed)"
