"""Per-query truth: for each query of a dataset, every model's score, the rank of its first relevant document,
its top documents marked relevant (with their grade) or not, and the qrels, read from the run files (TREC,
``.trec.gz``) and the qrels saved beside them. The HTML table and the per-query CSV/JSONL exports render it.

A run whose qrels were not saved still shows its scores and top documents; the rank of the first relevant
document then comes from the per-query reciprocal rank (RR@k, when measured: 1/RR within the cut-off), and the
relevance marks are left unknown, saying so.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from llara_bench.harness import trec
from llara_bench.reports.model import Report

TOP_SHOWN = 3  # top documents shown per model and query
COLUMNS_SHOWN = 4  # model columns the HTML table shows at first (so that it fits 800 px); the others on demand
QRELS_SHOWN = 12  # judged documents listed per query in the HTML (all of them in the exports)


@dataclass(frozen=True)
class Hit:
    doc_id: str
    rank: int
    grade: int | None  # the qrels' grade; None when the document is unjudged or the qrels are unknown


@dataclass(frozen=True)
class ModelQuery:
    scores: dict[str, float]  # measure -> this query's value
    first_relevant: int | None  # rank of the first document with grade > 0; None: none retrieved (or unknown)
    first_relevant_note: str | None  # how it was found when not from the qrels (e.g. "from RR@10"), or "> 10"
    top: list[Hit]  # the first TOP_SHOWN documents ([] without a run file)


@dataclass(frozen=True)
class QueryRow:
    query_id: str
    text: str | None
    qrels: dict[str, int] | None  # judged documents -> grade; None when the qrels were not saved
    models: dict[str, ModelQuery]  # model -> its result on this query (models run on the dataset)


@dataclass
class DatasetQueries:
    dataset: str
    models: list[str]  # best first
    rows: list[QueryRow]
    measures: list[str]  # per-query measures every model has, main metric first
    qrels_source: str | None  # the qrels file read, or None
    run_files: dict[str, str | None] = field(default_factory=dict)  # model -> the run file read (None: not saved)
    notes: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # the models whose columns the HTML shows at first


def for_dataset(report: Report, dataset: str, top: int = TOP_SHOWN) -> DatasetQueries:
    models = [m for m in report.ranked(dataset) if (m, dataset) in report.results]
    results = {m: report.results[(m, dataset)] for m in models}
    measures = [report.metric] + [k for k in results[models[0]]["per_query"]
                                  if k != report.metric and all(k in r["per_query"] for r in results.values())]
    run_files = {m: _run_file(report, m, dataset) for m in models}
    qrels_path = next((q for m in models if (q := _qrels_file(report, m, dataset))), None)
    qrels = trec.read_qrels(qrels_path) if qrels_path else None
    notes = []
    if qrels is None:
        notes.append("qrels not saved with this run: relevance marks are unknown; the rank of the first relevant "
                     "document comes from the per-query reciprocal rank where one was measured")
    missing = [m for m, f in run_files.items() if f is None]
    if missing:
        notes.append(f"run file not saved for {', '.join(missing)}: no top documents shown for "
                     f"{'it' if len(missing) == 1 else 'them'}")
    runs = {m: read_run(f, top=None if qrels is not None else top) if f else None for m, f in run_files.items()}
    texts: dict[str, str] = {}
    for r in results.values():
        texts.update((r.get("examples") or {}).get("queries") or {})
    query_ids = sorted({q for r in results.values() for q in r["per_query"][report.metric]}, key=_natural)
    rows = []
    for q in query_ids:
        judged = None if qrels is None else qrels.get(q, {})
        rows.append(QueryRow(q, texts.get(q), judged, {
            m: _model_query(results[m], q, runs[m], judged, measures, top) for m in models
            if q in results[m]["per_query"][report.metric]}))
    return DatasetQueries(dataset, models, rows, measures, str(qrels_path) if qrels_path else None,
                          {m: str(f) if f else None for m, f in run_files.items()}, notes,
                          _shown(models, [report.baseline, *(m for pair in report.declared for m in pair)]))


def _shown(models: list[str], wanted: list[str], n: int = COLUMNS_SHOWN) -> list[str]:
    """The first ``n`` models (best first), the baseline and the suites' declared pairs preferred."""
    first = list(dict.fromkeys(m for m in wanted if m in models))[:n]
    return [m for m in models if m in first or m in [o for o in models if o not in first][:n - len(first)]]


def _model_query(result: dict, q: str, run: dict | None, judged: dict[str, int] | None, measures: list[str],
                 top: int) -> ModelQuery:
    scores = {k: result["per_query"][k][q] for k in measures if q in result["per_query"][k]}
    ranked = (run or {}).get(q, [])
    hits = [Hit(d, i + 1, None if judged is None else judged.get(d)) for i, d in enumerate(ranked[:top])]
    if judged is not None and run is not None:
        first = next((i + 1 for i, d in enumerate(ranked) if judged.get(d, 0) > 0), None)
        return ModelQuery(scores, first, None if first else f"none in the top {len(ranked)}", hits)
    rr = next(((k, v) for k, v in result["per_query"].items() if re.fullmatch(r"(RR|MRR)@\d+", k) and q in v), None)
    if rr is None:
        return ModelQuery(scores, None, "unknown", hits)
    name, value = rr[0], rr[1][q]
    if value > 0:
        return ModelQuery(scores, round(1 / value), f"from {name}", hits)
    return ModelQuery(scores, None, f"none in the top {name.split('@')[1]} (from {name})", hits)


def _natural(query_id: str):
    """q2 before q10; numeric ids by value."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", query_id) if t]


def _result_path(report: Report, model: str, dataset: str) -> Path | None:
    source = report.sources.get((model, dataset))
    return Path(source) if source else None


def _run_file(report: Report, model: str, dataset: str) -> Path | None:
    """The result's run file: beside the result file (as written), else relative to its run folder."""
    name = report.results[(model, dataset)].get("run_file")
    source = _result_path(report, model, dataset)
    if not name or source is None:
        return None
    for candidate in (source.parent / Path(name).name, source.parent.parent.parent / name, Path(name)):
        if candidate.is_file():
            return candidate
    return None


def _qrels_file(report: Report, model: str, dataset: str) -> Path | None:
    """The qrels the result was scored with, as its ``qrels_file`` names them (relative to its run folder, as
    `llara-bench run` saves them, or as given with an external run); None for a run that did not save them."""
    named = report.results[(model, dataset)].get("qrels_file")
    source = _result_path(report, model, dataset)
    if not named or source is None:
        return None
    candidates = [source.parent.parent.parent / named, source.parent / Path(named).name, Path(named)]
    return next((c for c in candidates if c.is_file()), None)


def read_run(path: Path, top: int | None = None) -> dict[str, list[str]]:
    """query -> document ids in the order trec_eval ranks them (score descending, then document id descending),
    the first ``top`` of them (all with None)."""
    ranked, _ = trec.read_run(path)
    return {q: [d for _, d in sorted(((s, d) for d, s in docs.items()), reverse=True)[:top]]
            for q, docs in ranked.items()}


# -- exports ---------------------------------------------------------------------------------------
def records(report: Report, tables: dict[str, DatasetQueries] | None = None) -> list[dict]:
    """One record per (dataset, query): its text, qrels and each model's per-query measures, first relevant
    rank and top documents with their grades (``tables``: `for_dataset` of each dataset, when built)."""
    out = []
    for dataset in report.datasets:
        table = (tables or {}).get(dataset) or for_dataset(report, dataset)
        for row in table.rows:
            out.append({"dataset": dataset, "query_id": row.query_id, "query": row.text, "qrels": row.qrels,
                        "models": {m: {"scores": mq.scores, "first_relevant": mq.first_relevant,
                                       "first_relevant_note": mq.first_relevant_note,
                                       "top": [{"id": h.doc_id, "rank": h.rank, "grade": h.grade} for h in mq.top]}
                                   for m, mq in row.models.items()}})
    return out


def render_jsonl(report: Report, rows: list[dict] | None = None) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (rows or records(report)))


def render_csv(report: Report, rows: list[dict] | None = None) -> str:
    """Long form: one line per (dataset, query, model), every per-query measure in its own column."""
    rows = rows if rows is not None else records(report)
    measures = list(dict.fromkeys(k for r in rows for mq in r["models"].values() for k in mq["scores"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "query_id", "query", "model", *measures, "first_relevant_rank",
                     "first_relevant_note", "top_documents", "qrels"])
    for r in rows:
        qrels = "" if r["qrels"] is None else " ".join(f"{d}:{g}" for d, g in r["qrels"].items())
        for model, mq in r["models"].items():
            top = " ".join(h["id"] if h["grade"] is None else f"{h['id']}:{h['grade']}" for h in mq["top"])
            writer.writerow([r["dataset"], r["query_id"], r["query"] or "", model,
                             *(mq["scores"].get(k, "") for k in measures), mq["first_relevant"] or "",
                             mq["first_relevant_note"] or "", top, qrels])
    return buffer.getvalue()
