"""Synthetic run directories for the report tests: a few registry models × datasets with per-query values,
timings, provenance, examples and judged expected scores, shaped as `llara-bench run` writes them and
validated against harness/schema/result.schema.json, so the report tests need no encoder and no smoke run.

Each model's per-query scores are the baseline's shifted by a known amount (``shift``) plus noise, so the
tests know which model is best, which beats the baseline significantly and which loses to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MEASURES = ("nDCG@10", "RR@10", "R@100", "AP")
GRADES = 8  # per-query values are multiples of 1/8: graded and tie-heavy, like nDCG over a few judged docs


@dataclass(frozen=True)
class SyntheticModel:
    name: str  # a registry name: kind, contract and `trained` come from the registry's metadata
    shift: float  # added to the baseline's per-query values (before noise and clipping)
    n_parameters: int | None
    docs_per_second: float


MODELS = (SyntheticModel("minilm", 0.35, 22_713_216, 300.0), SyntheticModel("bm25", 0.0, None, 20_000.0),
          SyntheticModel("tiny-llama", -0.35, 443_264, 2_000.0), SyntheticModel("tiny-llara", 0.03, 443_264, 2_000.0))
DATASETS = {"scifact": 30, "nfcorpus": 24}  # name -> judged queries
SUITE = "synthetic"


def fingerprint(dataset: str) -> str:
    return "sha256:" + hashlib.sha256(dataset.encode()).hexdigest()


def query_text(dataset: str, qid: str) -> str:
    return f"what does {dataset} say about topic {qid}"


def document(dataset: str, doc_id: str) -> dict:
    return {"title": f"{dataset} document {doc_id}", "text": f"Body of {doc_id} in {dataset}. " * 5}


def write_run(folder: Path, models: tuple[SyntheticModel, ...] = MODELS, datasets: dict[str, int] = DATASETS, *,
              baseline: str = "bm25", seed: int = 0, created_at: str = "2026-01-01T00:00:00+00:00") -> Path:
    """A run directory ``folder`` (run.json, results/<model>/<dataset>.json), every result schema-valid."""
    import jsonschema

    from llara_bench.harness import results
    from llara_bench.harness.gates import Expectation, check
    from llara_bench.harness.provenance import hardware, library_versions
    from llara_bench.models import REGISTRY

    rng = np.random.default_rng(seed)
    schema = results.schema()
    provenance = {"python": "3.11.7", "command": ["llara-bench", "run", "--suite", SUITE],
                  "hardware": hardware(), "libraries": library_versions(),
                  "git": {"commit": "5eed" + "0" * 36, "dirty": False}, "config": {"suite": SUITE}}
    difficulty = {d: rng.random(n) for d, n in datasets.items()}  # shared by the models: paired scores
    written, run = [], []
    for model in models:
        entry = REGISTRY.get(model.name)
        meta = entry.meta.to_dict() | {"origin": entry.origin, "kwargs": entry.kwargs,
                                       "n_parameters": model.n_parameters}
        for dataset, n_queries in datasets.items():
            qids = [f"q{i:02d}" for i in range(n_queries)]
            per_query = {}
            for measure in MEASURES:
                values = difficulty[dataset] + model.shift + rng.normal(0, 0.15, n_queries)
                per_query[measure] = dict(zip(qids, (np.clip(np.round(values * GRADES), 0, GRADES) / GRADES).tolist()))
            top = {q: f"d{(i * 7 + len(model.name)) % 50:02d}" for i, q in enumerate(qids)}
            result = {
                "schema_version": results.SCHEMA_VERSION, "run_id": folder.name, "created_at": created_at,
                "suite": {"name": SUITE, "path": f"{SUITE}.yaml"}, "model": meta,
                "dataset": {"name": dataset, "spec": f"beir:{dataset}", "source": f"folder:/data/{dataset}",
                            "split": "test", "fingerprint": fingerprint(dataset), "n_docs": 50, "n_queries": n_queries,
                            "n_judgments": 2 * n_queries, "notes": [],
                            "conventions": {"drop_self_hits": False, "relevance_map": None, "titles": None}},
                "search": {"backend": "bm25s" if meta["kind"] == "lexical" else "faiss IndexFlatIP (float32) on CPU",
                           "top_k": 100, "exact": True, "qps": 5000.0,
                           "latency_ms": {"queries": n_queries, "p50": 0.2, "p90": 0.3, "p99": 0.5, "mean": 0.25}},
                "main_metric": MEASURES[0],
                "metrics": {m: float(np.mean(list(v.values()))) for m, v in per_query.items()},
                "per_query": per_query,
                "timings": _timings(meta["kind"], 50, n_queries, model.docs_per_second),
                "provenance": provenance,
                "examples": {"queries": {q: query_text(dataset, q) for q in qids}, "top": top,
                             "documents": {d: document(dataset, d) for d in set(top.values())}},
            }
            jsonschema.validate(result, schema)
            path, _ = results.result_paths(folder, model.name, dataset)
            results.write_json(path, result)
            written.append(str(path.relative_to(folder)))
            run.append(result)
    # the runner's gates: each model's expected score on the first dataset, judged by the harness's own check
    first = next(iter(datasets))
    expected = [Expectation(r["model"]["name"], first, MEASURES[0], round(r["metrics"][MEASURES[0]], 4),
                            source="synthetic") for r in run if r["dataset"]["name"] == first]
    results.write_json(folder / "run.json", {
        "schema_version": results.SCHEMA_VERSION, "run_id": folder.name, "suite": SUITE, "baseline": baseline,
        "config": {"suite": SUITE}, "plan": [], "results": written, "groups": [],
        "gates": [v.to_dict() for v in check(expected, run)]})
    return folder


def _timings(kind: str, n_docs: int, n_queries: int, docs_per_second: float) -> dict:
    def phase(seconds: float, items: int | None = None, tokens: int | None = None) -> dict:
        out = {"seconds": seconds, "peak_rss_bytes": 600 * 2**20}
        if items is not None:
            out |= {"items": items, "items_per_second": items / seconds}
        if tokens is not None:
            out |= {"tokens": tokens, "tokens_per_second": tokens / seconds, "padded_tokens": int(tokens * 1.1)}
        return out

    if kind == "lexical":
        return {"index": phase(n_docs / docs_per_second, n_docs), "search": phase(0.01, n_queries),
                "evaluate": phase(0.02, n_queries)}
    return {"load": phase(1.5), "encode_corpus": phase(n_docs / docs_per_second, n_docs, 60 * n_docs),
            "encode_queries": phase(0.05, n_queries, 10 * n_queries), "index": phase(0.005, n_docs),
            "search": phase(0.003, n_queries), "evaluate": phase(0.02, n_queries)}
