"""End to end against what a user would run instead: `llara-bench run` (MiniLM on SciFact's test split, the
embedding cache off, retrieving to MTEB's depth) against `mteb.evaluate` with sentence-transformers' MiniLM
on the same local BEIR folder (the baseline), each in a fresh process from start-up to scores, on the same
data and model files. Target: llara-bench at most 0.8x MTEB's wall time, with the same nDCG@10 (±0.002).
With benchmarks disabled: the embedded smoke collection, as a check that both paths work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MTEB_SCRIPT = """
import json, sys
import mteb
from sentence_transformers import SentenceTransformer
from llara_bench.harness.mteb_tasks import local_retrieval_task
from llara_bench.models.sentence_transformer import minilm_path

task = local_retrieval_task(sys.argv[1])
result = mteb.evaluate(SentenceTransformer(minilm_path(), device="cpu"), task, cache=mteb.ResultCache(sys.argv[2]),
                       co2_tracker=False, show_progress_bar=False, overwrite_strategy="always")
split = task.metadata.eval_splits[0]
print(json.dumps({"ndcg_at_10": result.task_results[0].scores[split][0]["ndcg_at_10"],
                  "depth": max(task.k_values)}))
"""


@pytest.fixture(scope="module")
def folder(request) -> Path:
    pytest.importorskip("mteb")
    if request.config._benchmarksession.disabled:
        return Path(__file__).resolve().parents[2] / "harness" / "data" / "smoke"
    return request.getfixturevalue("shared_data") / "scifact"


@pytest.fixture(scope="module")
def scores() -> dict:
    return {}


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "LLARA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}


def test_mteb_evaluate(benchmark, folder, scores, tmp_path):
    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", MTEB_SCRIPT, str(folder), str(tmp_path / "mteb")],
                             capture_output=True, text=True, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    scores["mteb"] = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"comparison": f"end to end, MiniLM on {folder.name}", "baseline": True})


def test_llara_bench_run(benchmark, folder, scores, tmp_path):
    depth = scores.get("mteb", {}).get("depth", 1000)
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: end-to-end\nmodels: [minilm]\ndatasets: ['folder:{folder}']\ntop_k: {depth}\n"
                     "measures: [nDCG@10]\n")

    def run() -> dict:
        output = tmp_path / f"runs-{len(list(tmp_path.glob('runs-*')))}"
        out = subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", "--quiet", "run", "--suite",
                              str(suite), "--no-embedding-cache", "--no-report", "--no-run-files", "-o", str(output)],
                             capture_output=True, text=True, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr[-3000:]
        (result,) = output.glob("*/results/minilm/*.json")
        return json.loads(result.read_text())

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"comparison": f"end to end, MiniLM on {folder.name}", "baseline": False})
    if "mteb" in scores:
        assert result["metrics"]["nDCG@10"] == pytest.approx(scores["mteb"]["ndcg_at_10"], abs=0.002)
