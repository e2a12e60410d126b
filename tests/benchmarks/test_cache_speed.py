"""A cached rerun of a finished suite against its first run (the baseline), through the command line as a
user runs it (process start-up, dataset loading, BM25, search, evaluation and the report included):
`beir-local` on SciFact (MiniLM and BM25) with an empty embedding cache, then again. The rerun must reuse
every embedding, load no dense model and score the same. With benchmarks disabled: the smoke suite (the
embedding cache starts empty; built models, tiny-llara's adaptation, are the session's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def suite_args(request):
    if request.config._benchmarksession.disabled:
        return ["--suite", "smoke"]
    shared_data = request.getfixturevalue("shared_data")
    return ["--suite", "beir-local", "--data-root", str(shared_data), "--dataset", "scifact"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, make_cache_with_session_models):
    return make_cache_with_session_models(tmp_path_factory.mktemp("embedding-cache") / "cache")


def run_cli(args: list[str], cache, output) -> list[dict]:
    env = {**os.environ, "LLARA_BENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    out = subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", "run", *args, "-o", str(output)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = [p for p in output.iterdir() if p.is_dir()]
    return [json.loads((run_dir / f).read_text()) for f in json.loads((run_dir / "run.json").read_text())["results"]]


@pytest.fixture(scope="module")
def runs():
    return {}


@pytest.mark.parametrize("which", ["first", "cached"])
def test_suite_run(benchmark, suite_args, cache, tmp_path, runs, which):
    if which == "cached" and "first" not in runs:
        pytest.skip("needs the first run (run the module, not this test alone)")
    results = benchmark.pedantic(run_cli, args=(suite_args, cache, tmp_path), rounds=1, iterations=1,
                                 warmup_rounds=0)
    benchmark.extra_info.update({"comparison": f"suite run ({' '.join(suite_args[1::2][:1])}), cached rerun vs first",
                                 "baseline": which == "first"})
    runs[which] = {(r["model"]["name"], r["dataset"]["name"]): r for r in results}
    if which == "cached":
        for pair, result in runs["cached"].items():
            assert result["metrics"] == runs["first"][pair]["metrics"]
            if "embeddings" in result:
                emb = result["embeddings"]
                assert (emb["encoded_items"], emb["queries_reused"], emb["model_loaded"]) == (0, True, False)
