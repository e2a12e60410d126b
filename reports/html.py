"""The self-contained HTML report: Jinja2 with autoescaping, styles, scripts and SVG charts inlined.

Nothing is loaded from anywhere (the page's content security policy forbids it); the only links are to the
result, run and qrels files, relative to the report's folder, so that a run folder moved as a whole keeps them.
"""

from __future__ import annotations

import json
import os
import shlex
from functools import lru_cache, partial
from importlib import metadata, resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from llara_bench.reports import charts, queries
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
        pvalue=fmt.pvalue, p_of=fmt.p_of, p_adjusted_of=fmt.p_adjusted_of, bytes=fmt.size_bytes,
        params=fmt.parameters,
        pretty=lambda v: json.dumps(v, indent=1, ensure_ascii=False, sort_keys=False),
        shell=lambda argv: shlex.join(str(a) for a in argv), colour=charts.colour,
        svg=Markup, set_fields=lambda contract: contract_shown(contract))  # the charts module escapes every name it puts in its SVG
    return env


def _asset(name: str) -> str:
    return (resources.files("llara_bench.reports") / "templates" / name).read_text(encoding="utf-8")


def render_html(report: Report, output: Path | None = None, per_query: dict | None = None) -> str:
    """The report as one HTML page; ``output`` (where it will be written) makes the links to the result files
    relative to its folder; ``per_query`` is `queries.for_dataset` of each dataset when already built."""
    per_query = per_query or {d: queries.for_dataset(report, d) for d in report.datasets}
    return _environment().get_template("report.html.j2").render(
        r=report, title=report.title, runs=report.runs(), meta={m: report.model_meta(m) for m in report.models},
        ranked=report.ranked(), ranked_on={d: report.ranked(d) for d in report.datasets},
        rate={m: report.mean_docs_per_second(m) for m in report.models}, measures=report.measures(),
        phases=report.phases(), timing_rows=_timing_rows(report), test_name=report.test_description,
        correction_name=report.options.correction.capitalize(), ranks=_ranks(report),
        adapted={(m, d): a for m, d, _ in report.pairs() if (a := report.adapted_on(m, d))},
        quality_views=charts.quality_vs_cost(report), phase_chart=charts.phase_breakdown(report),
        phase_legend=charts.phase_legend(report), colour_of=charts.colours(report.models), per_query=per_query,
        model_fields={m: _model_fields(report.model_meta(m)) for m in report.models},
        links=_links(report, output, per_query), exports=_export_names(output),
        css=_asset("report.css"), report_js=_asset("report.js"), version=_version())


def _ranks(report: Report) -> dict[str, int | None]:
    """Standard competition ranking (1, 2, 2, 4) by the mean (or the one dataset's score); None: no value."""
    values = {m: report.mean(m) if len(report.datasets) > 1 else report.value(m, report.datasets[0])
              for m in report.models}
    known = sorted(v for v in values.values() if v is not None)
    return {m: None if v is None else 1 + sum(w > v + 1e-12 for w in known) for m, v in values.items()}


def _timing_rows(report: Report) -> list:
    order = {m: i for i, m in enumerate(report.ranked())}
    return sorted(report.timing_rows(), key=lambda row: (order[row.model], report.datasets.index(row.dataset)))


def _model_fields(meta: dict) -> list[tuple[str, object]]:
    """What identifies a model of its kind, as (label, value): a lexical model's scoring settings (BM25's k1, b,
    stemmer and stop words, as its result records them), a dense model's shape and the contract's set fields."""
    lexical = meta.get("kind") == "lexical"
    fields: list[tuple[str, object]] = []
    if lexical:
        settings = (meta.get("extra") or {}).get("bm25")
        if settings:
            fields += [(k.replace("_", " "), v if v is not None else "none") for k, v in settings.items()]
        else:
            fields.append(("settings", "not recorded by this run; see the description"))
        return fields
    fields += [("dimension", meta.get("dimension")), ("parameters", fmt.parameters(meta.get("n_parameters"))),
               ("similarity", meta.get("similarity")), ("max length", meta.get("max_length"))]
    return [(k, v) for k, v in fields if v not in (None, fmt.DASH)]


def contract_shown(contract: dict | None) -> dict:
    """The contract's fields that are set (no nulls, empty strings or empty lists)."""
    return {k: v for k, v in (contract or {}).items() if v not in (None, "", [], ())}


def _href(path: str | os.PathLike | None, base: Path | None) -> str | None:
    if not path:
        return None
    path = Path(path)
    if base is None:
        return path.as_posix()
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return path.resolve().as_uri()


def _links(report: Report, output: Path | None, per_query: dict) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(model, dataset) -> [(label, relative href)] of its result file, run file and qrels file."""
    base = Path(output).parent if output is not None else None
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for m, d, _ in report.pairs():
        table = per_query.get(d)
        files = [("result", report.sources.get((m, d))), ("run", table.run_files.get(m) if table else None),
                 ("qrels", table.qrels_source if table else None)]
        if files[1][1] and Path(files[1][1]) == Path(files[0][1] or ""):  # an external run: its own result
            files = files[1:]
        out[(m, d)] = [(label, href) for label, path in files if (href := _href(path, base))]
    return out


def _export_names(output: Path | None) -> dict[str, str]:
    if output is None:
        return {}
    output = Path(output)
    return {kind: f"{output.stem}.per-query.{kind}" for kind in ("csv", "jsonl")} | \
        {"md": output.with_suffix(".md").name, "csv-summary": output.with_suffix(".csv").name,
         "tex": output.with_suffix(".tex").name}


def _version() -> str:
    try:
        return metadata.version("llara-bench")
    except metadata.PackageNotFoundError:
        return "(not installed)"
