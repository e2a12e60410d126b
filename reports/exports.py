"""Exports of the report's tables: Markdown and CSV (every measure, the significance marks against the
baseline and between all pairs), a LaTeX table (booktabs), and an MTEB results folder."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from pathlib import Path

from llara_bench.reports.format import missing, number, p_adjusted_of, p_of
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
                           f"[{number(c.ci_low, '+.4f')}, {number(c.ci_high, '+.4f')}]", _md(p_of(c)),
                           _md(p_adjusted_of(c)), f"{c.wins}/{c.ties}/{c.losses}", str(c.n)]))
    if report.comparisons:
        lines += ["", _md(report.caption("baseline"))]
    lines += _markdown_pairs(report)
    lines += _markdown_measures(report)
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


def _markdown_pairs(report: Report) -> list[str]:
    """Every pair of models on each dataset (the suites' declared pairs first), then the matrix: ▲ the row's
    model is significantly better than the column's, ▼ worse, = no significant difference."""
    if not any(report.pairwise.values()):
        return []
    o = report.options
    lines = ["", "## All pairs", "",
             _row(["dataset", "A", "B", f"{report.metric} A", f"{report.metric} B", "Δ (A − B)",
                   f"{o.confidence:.0%} CI", "p", "p adj.", "W/T/L", "verdict"]),
             _row(["---", "---", "---"] + ["---:"] * 7 + ["---"])]
    for d in report.datasets:
        for a, b in report.pairs_shown(d):
            c = report.pairwise[d][(a, b)]
            verdict = "tie" if not c.significant(o.alpha) else f"{a} better" if c.delta > 0 else f"{b} better"
            declared = " (declared)" if (a, b) in report.declared else ""
            lines.append(_row([_md(d), _md(a) + declared, _md(b), number(c.mean), number(c.baseline_mean),
                               number(c.delta, "+.4f"), f"[{number(c.ci_low, '+.4f')}, {number(c.ci_high, '+.4f')}]",
                               _md(p_of(c)), _md(p_adjusted_of(c)), f"{c.wins}/{c.ties}/{c.losses}", _md(verdict)]))
    lines += ["", _md(report.caption("pairs"))]
    marks = {1: "▲", -1: "▼", 0: "=", None: ""}
    for d in report.datasets:
        if not report.pairwise.get(d):
            continue
        matrix = report.matrix(d)
        lines += ["", f"{_md(d)}: row against column (▲ significantly better, ▼ worse, = no significant difference)", "",
                  _row(["", *map(_md, report.models)]), _row(["---"] + [":---:"] * len(report.models))]
        lines += [_row([_md(a), *(marks[matrix[(a, b)]] if a != b else "·" for b in report.models)])
                  for a in report.models]
    return lines


def _markdown_measures(report: Report) -> list[str]:
    """Every measure of every result; the best per dataset and measure in bold."""
    measures = report.measures()
    lines = ["", "## All measures", "", _row(["dataset", "model", *map(_md, measures), "queries"]),
             _row(["---", "---"] + ["---:"] * (len(measures) + 1))]
    for d in report.datasets:
        rows = [(m, report.results[(m, d)]) for m in report.models if (m, d) in report.results]
        best = {k: max((r["metrics"][k] for _, r in rows if k in r["metrics"]), default=None) for k in measures}
        for m, r in rows:
            cells = []
            for k in measures:
                v = r["metrics"].get(k)
                text = number(v)
                cells.append(f"**{text}**" if v is not None and len(rows) > 1 and v == best[k] else text)
            lines.append(_row([_md(d), _md(m), *cells, f"{r['dataset']['n_queries']:,}"]))
    return lines


def _ordered_comparisons(report: Report):
    for d in report.datasets:
        for m in report.models:
            if (m, d) in report.comparisons:
                yield (m, d), report.comparisons[(m, d)]


CSV_FIELDS = ["dataset", "model", "metric", "value", "is_best", "baseline", "baseline_value", "delta", "ci_low",
              "ci_high", "p_value", "p_adjusted", "significant", "direction", "p_at_floor", "p_floor", "test",
              "correction", "comparisons", "better_than", "worse_than", "wins", "ties", "losses", "n_queries",
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
            "direction": report.direction(m, d) if c else None, "p_at_floor": c.p_at_floor if c else None,
            "p_floor": c and c.p_floor, "test": report.test_description, "correction": report.options.correction,
            "comparisons": c and c.family,
            # all pairs: the models this one is significantly better / worse than on this dataset
            "better_than": ";".join(b for b in report.models if report.matrix(d).get((m, b)) == 1),
            "worse_than": ";".join(b for b in report.models if report.matrix(d).get((m, b)) == -1),
            "wins": c and c.wins, "ties": c and c.ties, "losses": c and c.losses,
            "n_queries": result["dataset"]["n_queries"], "docs_per_second": timing.docs_per_second,
            "tokens_per_second": timing.tokens_per_second, "mfu": timing.mfu,
            "device_seconds_per_million_docs": timing.cost_per_million, "total_seconds": sum(timing.seconds.values()),
            "n_parameters": result["model"].get("n_parameters"), "run_id": result["run_id"],
            "dataset_fingerprint": result["dataset"]["fingerprint"]}
        writer.writerow([_cell(record[f]) for f in CSV_FIELDS] + [_cell(result["metrics"].get(k)) for k in measures])
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def render_latex(report: Report) -> str:
    """A booktabs table of the main metric (models × datasets, and the mean): the best of each column in bold,
    $^\\dagger$ significantly better than the baseline, $^\\ddagger$ significantly worse (after the correction).
    Needs ``\\usepackage{booktabs}`` in the preamble."""
    o = report.options
    show_mean = len(report.datasets) > 1
    columns = [*report.datasets, *([None] if show_mean else [])]
    lines = [r"% llara-bench report: needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             rf"\caption{{{_tex(report.metric)} per dataset. Bold: best in its column. $^\dagger$/$^\ddagger$: "
             rf"significantly better/worse than {_tex(report.baseline)} ({_tex(report.test_description)}, "
             rf"{_tex(o.correction.capitalize())} correction, $\alpha = {o.alpha}$).}}",
             r"\label{tab:llara-bench}", r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             " & ".join(["Model", *(_tex(d) for d in report.datasets), *(["Mean"] if show_mean else [])]) + r" \\",
             r"\midrule"]
    for m in report.models:
        cells = [_tex(m)]
        for d in columns:
            v = report.mean(m) if d is None else report.value(m, d)
            text = "--" if v is None else f"{v:.4f}"
            if report.is_best(m, d):
                text = rf"\textbf{{{text}}}"
            mark = {1: r"$^\dagger$", -1: r"$^\ddagger$"}.get(report.direction(m, d) if d is not None else 0, "")
            cells.append(text + mark)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# ir_measures' names as MTEB's retrieval scores spell them (nDCG@10 -> ndcg_at_10)
_MTEB_NAMES = {"nDCG": "ndcg", "R": "recall", "P": "precision", "RR": "mrr", "AP": "map"}


def mteb_score_name(measure: str) -> str:
    head, _, cutoff = measure.partition("@")
    name = _MTEB_NAMES.get(head, re.sub(r"[^a-z0-9]+", "_", head.lower()).strip("_"))
    return f"{name}_at_{cutoff}" if cutoff else name


def write_mteb_results(report: Report, folder: Path) -> list[Path]:
    """The results as an MTEB results cache: ``FOLDER/results/<model>/<revision>/<task>.json`` (MTEB's
    TaskResult JSON: every measure under its MTEB name, ``main_score`` the report's metric) and
    ``model_meta.json``, which ``mteb.ResultCache(FOLDER).load_results()`` and ``mteb.TaskResult.from_disk``
    read. The task is named as the dataset (a dataset of a `llara-bench mteb` run carries its MTEB task's
    name); the split is the result's."""
    from llara_bench.harness.results import slug, write_json

    written = []
    for m, d, r in report.pairs():
        model = r["model"]
        revision = model.get("revision") or "no_revision_available"
        task = _mteb_task_name(r)
        scores = {mteb_score_name(k): v for k, v in r["metrics"].items()} | {
            "main_score": r["metrics"][report.metric], "hf_subset": "default", "languages": ["eng-Latn"]}
        model_dir = Path(folder) / "results" / slug(m.replace("/", "__")) / slug(revision)
        task_result = {"dataset_revision": r["dataset"]["fingerprint"], "task_name": task,
                       "mteb_version": _mteb_version(), "scores": {r["dataset"]["split"] or "test": [scores]},
                       "evaluation_time": sum(p["seconds"] for p in r["timings"].values()),
                       "kg_co2_emissions": None, "date": dt.datetime.fromisoformat(r["created_at"]).timestamp()}
        write_json(model_dir / f"{slug(task)}.json", task_result)
        write_json(model_dir / "model_meta.json", {"name": m, "revision": revision, "release_date": None,
                                                   "languages": None, "n_parameters": model.get("n_parameters"),
                                                   "embed_dim": model.get("dimension"), "framework": ["llara-bench"],
                                                   "similarity_fn_name": model.get("similarity")})
        written.append(model_dir / f"{slug(task)}.json")
    return written


def _mteb_task_name(result: dict) -> str:
    for note in result["dataset"].get("notes") or []:  # llara-bench mteb: "run by mteb.evaluate: task NAME, ..."
        found = re.match(r"run by mteb\.evaluate: task ([^,]+),", note)
        if found:
            return found.group(1)
    return result["dataset"]["name"]


def _mteb_version() -> str:
    """The installed mteb's version, else the oldest format these files follow (MTEB >= 1.12.48 reads them
    without a task lookup)."""
    from importlib import metadata

    try:
        return metadata.version("mteb")
    except metadata.PackageNotFoundError:
        return "2.0.0"
