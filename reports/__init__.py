"""What a person reads: result files turned into a self-contained HTML report, plus Markdown and CSV.

    from llara_bench.reports import write_report
    paths = write_report([Path("runs/smoke-...")], Path("report.html"))
"""

from __future__ import annotations

from pathlib import Path

from llara_bench.harness.results import write_atomic
from llara_bench.reports.collect import collect
from llara_bench.reports.model import Options, Report, build

__all__ = ["Options", "Report", "build_report", "write_report"]


def build_report(inputs: list, options: Options = Options(), *, qrels: Path | None = None,
                 measures: list[str] | None = None) -> Report:
    """The report of ``inputs`` (paths, or `collect.Input` with a label); TREC run files among them are scored
    against ``qrels`` with ``measures``."""
    return build(collect(inputs, qrels, measures), options)


def write_report(inputs: list | Report, output: Path, options: Options = Options()) -> list[Path]:
    """Write OUTPUT (HTML), the Markdown, CSV and LaTeX beside it (same stem), and the per-query table of every
    dataset as OUTPUT's stem + ``.per-query.csv`` and ``.per-query.jsonl``; returns the paths, HTML, Markdown,
    CSV and LaTeX first.

    Everything is rendered before anything is written, and each file is written atomically.
    """
    from llara_bench.reports import queries
    from llara_bench.reports.exports import render_csv, render_latex, render_markdown
    from llara_bench.reports.html import render_html

    report = inputs if isinstance(inputs, Report) else build_report(inputs, options)
    output = Path(output)
    per_query = {d: queries.for_dataset(report, d) for d in report.datasets}
    records = queries.records(report, per_query)
    rendered = {output: render_html(report, output, per_query), output.with_suffix(".md"): render_markdown(report),
                output.with_suffix(".csv"): render_csv(report), output.with_suffix(".tex"): render_latex(report),
                output.with_name(f"{output.stem}.per-query.csv"): queries.render_csv(report, records),
                output.with_name(f"{output.stem}.per-query.jsonl"): queries.render_jsonl(report, records)}
    for path, text in rendered.items():
        write_atomic(path, text.encode("utf-8"))
    return list(rendered)
