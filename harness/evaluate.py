"""Scoring ranked lists after the fact: a run folder's saved run files against the qrels saved beside them
(`llara-bench evaluate`), and TREC run files written by other tools (Pyserini, Anserini, ranx, trec_eval
users) against a qrels file, as results the report reads beside the harness's own.

Both score with `harness.metrics.evaluate` (ir_measures), as `llara-bench run` does: the mean is over every
query in the qrels, a query the run lacks counting 0 (trec_eval -c); negative grades count as 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from llara_bench.harness import results, trec
from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.metrics import DEFAULT_MEASURES, canonical_measures, evaluate, relevance_for_metrics
from llara_bench.harness.provenance import provenance
from llara_bench.harness.record import DatasetInfo, ModelInfo, ResultRecord, SearchInfo, SuiteInfo
from llara_bench.harness.timing import PhaseTimer

EXTERNAL_SUITE = "external"


def reevaluate(path: Path, measures: list[str]) -> list[dict]:
    """The results of a run folder (or one result file) rescored with ``measures`` from their saved run files
    and qrels: each result's dict with ``metrics``, ``per_query`` and ``main_metric`` replaced."""
    measures = canonical_measures(measures)
    path = Path(path)
    if path.is_dir():
        run_json = path / "run.json"
        files = [path / rel for rel in results.read_run(run_json).results] if run_json.is_file() else \
            sorted((path / "results").glob("*/*.json"))
        run_dir = path
    else:
        files, run_dir = [path], path.parent.parent.parent  # <run dir>/results/<model>/<dataset>.json
    if not files:
        raise DataFormatError(path, "no result files (expected a run folder written by llara-bench run)")
    out = []
    for file in files:
        record = results.read_result(file)
        for key, what in (("run_file", "run file"), ("qrels_file", "qrels")):
            if getattr(record, key) is None:
                raise DataFormatError(file, f"no {what} saved with this result (a run made with --no-run-files, or by "
                                      "a version that did not save qrels): run it again to recompute measures",
                                      field=key)
        ranked, _ = trec.read_run(run_dir / record.run_file)
        qrels = trec.read_qrels(run_dir / record.qrels_file)
        metrics, per_query = evaluate(qrels, ranked, measures)
        out.append(record.to_dict() | {"metrics": metrics, "per_query": per_query, "main_metric": measures[0]})
    return out


def external_result(run_path: Path, qrels_path: Path, measures: list[str] | None = None,
                    name: str | None = None, main_metric: str | None = None) -> dict:
    """A TREC run file written by another tool, scored against ``qrels_path``, as a result dict the report
    reads. Named ``name`` (else the file's name without its extensions). When the qrels are those a
    llara-bench run saved (``<run dir>/qrels/<dataset>.qrels``), the result is on that run's dataset (same
    name and fingerprint: its per-query scores pair with that run's); otherwise the dataset is named after the
    qrels file and identified by its content."""
    run_path, qrels_path = Path(run_path), Path(qrels_path)
    measures = canonical_measures(list(measures or DEFAULT_MEASURES))
    main_metric = canonical_measures([main_metric])[0] if main_metric else measures[0]
    if main_metric not in measures:
        measures = [main_metric, *measures]
    timer = PhaseTimer()
    with timer.phase("evaluate") as phase:
        ranked, tags = trec.read_run(run_path)
        qrels = relevance_for_metrics(trec.read_qrels(qrels_path))
        unjudged = sum(q not in qrels for q in ranked)
        if unjudged == len(ranked):
            raise DataFormatError(run_path, f"none of its {len(ranked):,} queries is judged in {qrels_path}: "
                                  "is this the run of another collection?")
        metrics, per_query = evaluate(qrels, ranked, measures)
        phase.count(items=len(qrels))
    dataset = _saved_dataset(qrels_path) or _qrels_dataset(qrels_path, qrels)
    dataset["notes"] = list(dataset.get("notes") or []) + \
        ([f"{unjudged:,} queries of {run_path.name} are not in the qrels (not scored)"] if unjudged else [])
    name = name or _stem(run_path)
    record = ResultRecord(
        suite=SuiteInfo(EXTERNAL_SUITE, str(run_path)),
        model=ModelInfo(name=name, kind="external", source=str(run_path), similarity="unknown", trained=True,
                        contract=None, origin="external run file",
                        description=f"TREC run file {run_path.name} (tag {', '.join(sorted(tags))})"),
        dataset=DatasetInfo.from_dict(dataset),
        search=SearchInfo(backend=f"external run ({', '.join(sorted(tags))})",
                          top_k=max(len(docs) for docs in ranked.values()), exact=True),
        main_metric=main_metric, metrics=metrics, per_query=per_query, timings=timer.to_dict(),
        # the run was made elsewhere: the checkout that scored it is no part of its provenance's git
        provenance=provenance({"run_file": str(run_path), "run_sha256": _sha256(run_path),
                               "qrels": str(qrels_path), "qrels_sha256": _sha256(qrels_path)}) | {"git": None},
        run_id=f"{EXTERNAL_SUITE}:{run_path.name}", run_file=str(run_path), qrels_file=str(qrels_path),
        created_at=dt.datetime.fromtimestamp(run_path.stat().st_mtime, dt.timezone.utc).isoformat(timespec="seconds"))
    return record.to_dict()


def _saved_dataset(qrels_path: Path) -> dict | None:
    """The dataset record of a run whose saved qrels these are (<run dir>/qrels/<dataset>.qrels), if any."""
    run_dir = qrels_path.resolve().parent.parent
    if qrels_path.resolve().parent.name != "qrels" or not (run_dir / "run.json").is_file():
        return None
    for rel in results.read_run(run_dir / "run.json").results:
        record = results.read_result(run_dir / rel)
        if record.qrels_file and (run_dir / record.qrels_file).resolve() == qrels_path.resolve():
            return record.dataset.to_dict()
    return None


def _qrels_dataset(qrels_path: Path, qrels: dict[str, dict[str, int]]) -> dict:
    return {"name": _stem(qrels_path), "spec": f"qrels:{qrels_path}", "source": str(qrels_path), "split": "",
            "fingerprint": "qrels-sha256:" + _sha256(qrels_path), "n_docs": None, "n_queries": len(qrels),
            "n_judgments": sum(len(d) for d in qrels.values()), "conventions": {},
            "notes": ["an external run's dataset: only its qrels are known (no corpus size)"]}


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".gz", ".txt", ".trec", ".run", ".qrels", ".tsv"):
        name = name.removesuffix(ext)
    return name or path.name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
