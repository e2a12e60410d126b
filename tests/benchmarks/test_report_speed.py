"""Report generation for 5 models × 5 datasets (target: under 5 s), against reading its inputs (the baseline).

The 25 results are built from a schema-valid synthetic result (tests/synthetic_results.py) with per-query
scores, query texts and top documents at the sizes of MS MARCO dev/small (6,980 queries), FiQA (648),
NFCorpus (323), SciFact (300) and TREC-COVID (50), one run directory per model, so the randomisation tests
run on realistic query counts.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from llara_bench.reports import write_report
from llara_bench.reports.collect import collect
from synthetic_results import MODELS as SYNTHETIC_MODELS
from synthetic_results import write_run

DATASETS = {"msmarco-dev-small": 6980, "fiqa": 648, "nfcorpus": 323, "scifact": 300, "trec-covid": 50}
MODELS = {"bm25": None, "minilm": 22_713_216, "contriever": 109_482_240, "e5-large": 335_141_888,
          "llara-passage": 6_738_415_616}  # name -> parameters; throughput falls with size below
TARGET_SECONDS = 5.0


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    template_run = write_run(tmp_path_factory.mktemp("template") / "run", models=SYNTHETIC_MODELS[:1],
                             datasets={"template": 1})
    template = json.loads((template_run / "results/minilm/template.json").read_text())
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("grid")
    runs = []
    for skill, (model, params) in enumerate(MODELS.items()):
        run_dir = root / f"run-{model}"
        listed = []
        for dataset, n_queries in DATASETS.items():
            result = copy.deepcopy(template)
            result["run_id"] = run_dir.name
            result["model"].update(name=model, n_parameters=params)
            corpus_phase = result["timings"]["encode_corpus"]
            corpus_phase["items_per_second"] *= 100 if params is None else 22_713_216 / params
            result["dataset"].update(name=dataset, spec=f"beir:{dataset}", n_queries=n_queries,
                                     fingerprint=f"sha256:{dataset.encode().hex().ljust(64, '0')[:64]}")
            qids = [f"q{i}" for i in range(n_queries)]
            base = rng.random(n_queries)
            for measure in result["metrics"]:
                # graded, tie-heavy per-query scores; a better "skill" shifts them up
                scores = np.clip(np.round((base + rng.normal(0.04 * skill, 0.25, n_queries)) * 8) / 8, 0, 1)
                result["per_query"][measure] = dict(zip(qids, scores.tolist()))
                result["metrics"][measure] = float(scores.mean())
            result["examples"] = {"queries": {q: f"query text {q} " * 3 for q in qids},
                                  "top": {q: f"d{i}" for i, q in enumerate(qids)},
                                  "documents": {f"d{i}": {"title": f"title {i}", "text": "x" * 300}
                                                for i in range(n_queries)}}
            path = run_dir / "results" / model / f"{dataset}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result))
            listed.append(str(path.relative_to(run_dir)))
        (run_dir / "run.json").write_text(json.dumps({"schema_version": 1, "run_id": run_dir.name,
                                                      "baseline": "bm25", "results": listed}))
        runs.append(run_dir)
    return runs


def _disabled(request) -> bool:
    return request.config._benchmarksession.disabled


def test_report_5x5(benchmark, grid_runs, tmp_path, request):
    rounds = 1 if _disabled(request) else 3
    paths = benchmark.pedantic(write_report, args=(grid_runs, tmp_path / "report.html"), rounds=rounds,
                               iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"comparison": "report, 5 models x 5 datasets", "baseline": False,
                                 "html_bytes": paths[0].stat().st_size})
    assert all(p.is_file() for p in paths)
    sections = {part.partition("\n")[0]: part for part in paths[1].read_text(encoding="utf-8").split("\n## ")}

    def rows(section: str) -> int:
        return sum(line.startswith("| msmarco-dev-small |") for line in sections[section].splitlines())

    assert rows("Significance against bm25") == 4  # four models compared with bm25 there
    assert rows("All pairs") == 10  # every pair of the five models
    if not _disabled(request):
        assert benchmark.stats.stats.max < TARGET_SECONDS


def test_read_inputs_5x5(benchmark, grid_runs, request):
    rounds = 1 if _disabled(request) else 3
    collected = benchmark.pedantic(collect, args=(grid_runs,), rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"comparison": "report, 5 models x 5 datasets", "baseline": True})
    assert len(collected.results) == 25
