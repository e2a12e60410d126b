"""Markdown and CSV exports of the report's tables."""

from __future__ import annotations

import csv
import html
import io

from llara_bench.reports.format import missing, number, pvalue
from llara_bench.reports.model import Report


def _md(text) -> str:
    """Text for a Markdown table cell: markup and entities shown as text, pipes escaped, one line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(report: Report) -> str:
    o = report.options
    show_mean = len(report.datasets) > 1
    lines = [f"# {_md(report.title)}", "",
             f"Main metric **{_md(report.metric)}**, baseline **{_md(report.baseline)}**; "
             f"{report.test_description}, {o.correction.capitalize()} correction, α = {o.alpha}. "
             "**Bold**: best in its column; ▲/▼: significantly better/worse than the baseline.", ""]
    for note in report.notes:
        lines.append(f"> {_md(note)}")
    for dataset, why in report.untestable.items():
        lines.append(f"> No significance test on {_md(dataset)}: {_md(why)}.")
    if report.notes or report.untestable:
        lines.append("")
    header = ["model", *map(_md, report.datasets), *(["mean"] if show_mean else [])]
    lines += ["## Summary", "", _row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for m in report.models:
        cells = [_md(m) + (" (baseline)" if m == report.baseline else "")]
        for d in [*report.datasets, *([None] if show_mean else [])]:
            v = report.mean(m) if d is None else report.value(m, d)
            text = number(v)
            if report.is_best(m, d):
                text = f"**{text}**"
            delta = report.delta(m, d)
            if delta is not None:
                arrow = {1: " ▲", -1: " ▼", 0: ""}[report.direction(m, d)] if d is not None else ""
                text += f" ({number(delta, '+.4f')}{arrow})"
            cells.append(text)
        lines.append(_row(cells))
    lines += ["", f"## Significance against {_md(report.baseline)}", "",
              _row(["dataset", "model", report.metric, "baseline", "Δ", f"{o.confidence:.0%} CI", "p", "p adj.",
                    "W/T/L", "queries"]),
              _row(["---", "---"] + ["---:"] * 8)]
    for (m, d), c in _ordered_comparisons(report):
        lines.append(_row([_md(d), _md(m), number(c.mean), number(c.baseline_mean), number(c.delta, "+.4f"),
                           f"[{number(c.ci_low, '+.4f')}, {number(c.ci_high, '+.4f')}]", pvalue(c.p_value),
                           pvalue(c.p_adjusted), f"{c.wins}/{c.ties}/{c.losses}", str(c.n)]))
    lines += ["", "## Throughput", "",
              _row(["model", "dataset", "docs/s", "tokens/s", "MFU", "device-s / 1M docs", "total s"]),
              _row(["---", "---", "---:", "---:", "---:", "---:", "---:"])]
    for row in report.timing_rows():
        lines.append(_row([_md(row.model), _md(row.dataset), number(row.docs_per_second, ",.1f"),
                           number(row.tokens_per_second, ",.0f"), number(row.mfu, ".1%"),
                           number(row.cost_per_million, ",.0f"), number(sum(row.seconds.values()), ".2f")]))
    if report.gates:
        lines += ["", "## Expected scores", "",
                  "OK: equal at four decimals; OKish: within the tolerance; FAIL: outside it; not comparable: "
                  "run under other conditions than the expected score's (which, in brackets).", "",
                  _row(["model", "dataset", "metric", "expected", "got", "tolerance", "verdict", "source"]),
                  _row(["---", "---", "---", "---:", "---:", "---:", "---", "---"])]
        for g in report.gates:
            verdict = (f"**{g['status']}**" if g["status"] == "FAIL" else g["status"]) \
                + (f" ({_md(g['reason'])})" if g.get("reason") else "")
            lines.append(_row([_md(g["model"]), _md(g["dataset"]), _md(g["metric"]), number(g["score"]),
                               number(g.get("got")), number(g["tolerance"]), verdict, _md(g.get("source") or "")]))
    return "\n".join(lines) + "\n"


def _ordered_comparisons(report: Report):
    for d in report.datasets:
        for m in report.models:
            if (m, d) in report.comparisons:
                yield (m, d), report.comparisons[(m, d)]


CSV_FIELDS = ["dataset", "model", "metric", "value", "is_best", "baseline", "baseline_value", "delta", "ci_low",
              "ci_high", "p_value", "p_adjusted", "significant", "wins", "ties", "losses", "n_queries",
              "docs_per_second", "tokens_per_second", "mfu", "device_seconds_per_million_docs", "total_seconds",
              "n_parameters", "run_id",
              "dataset_fingerprint"]


def _cell(value):
    """Spreadsheets run cells that start with = + - @ as formulas; such text gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if missing(value) else value


def render_csv(report: Report) -> str:
    """One row per (model, dataset): the main metric with its comparison, then every other measure."""
    measures = report.measures()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS + [f"measure:{m}" for m in measures])
    rows = {(r.model, r.dataset): r for r in report.timing_rows()}
    for m, d, result in report.pairs():
        c = report.comparisons.get((m, d))
        timing = rows[(m, d)]
        record = {
            "dataset": d, "model": m, "metric": report.metric, "value": report.value(m, d),
            "is_best": report.is_best(m, d), "baseline": report.baseline,
            "baseline_value": report.value(report.baseline, d), "delta": report.delta(m, d),
            "ci_low": c and c.ci_low, "ci_high": c and c.ci_high, "p_value": c and c.p_value,
            "p_adjusted": c and c.p_adjusted, "significant": c.significant(report.options.alpha) if c else None,
            "wins": c and c.wins, "ties": c and c.ties, "losses": c and c.losses,
            "n_queries": result["dataset"]["n_queries"], "docs_per_second": timing.docs_per_second,
            "tokens_per_second": timing.tokens_per_second, "mfu": timing.mfu,
            "device_seconds_per_million_docs": timing.cost_per_million, "total_seconds": sum(timing.seconds.values()),
            "n_parameters": result["model"].get("n_parameters"), "run_id": result["run_id"],
            "dataset_fingerprint": result["dataset"]["fingerprint"]}
        writer.writerow([_cell(record[f]) for f in CSV_FIELDS] + [_cell(result["metrics"].get(k)) for k in measures])
    return out.getvalue()
