"""Distributed encoding: two gloo processes under torchrun score exactly as one process does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llara_bench.harness.runner import CacheOptions, RunConfig, run_suite
from llara_bench.harness.suites import load_suite


@pytest.mark.slow
def test_two_process_torchrun_gives_the_same_scores(tmp_path, make_cache_with_session_models):
    cache = make_cache_with_session_models(tmp_path / "cache")  # embeddings start empty; tiny-llama is built once
    env = {**os.environ, "LLARA_BENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    out = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", "-m", "llara_bench.harness.cli", "run", "-m", "minilm", "-m", "tiny-llama",
                           "--shard-rows", "20", "-o", str(out), "--no-report"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = out.iterdir()  # one run directory: rank 0's, broadcast to rank 1
    single = {r["model"]["name"]: r for r in run_suite(RunConfig(
        suite=load_suite("smoke"), output=tmp_path / "single", models=["minilm", "tiny-llama"],
        cache=CacheOptions(embedding_cache=False))).results}
    for model in ("minilm", "tiny-llama"):
        distributed = json.loads((run_dir / "results" / model / "smoke.json").read_text())
        emb = distributed["embeddings"]
        assert len(emb["encoded_by_rank"]) == 2 and all(n > 0 for n in emb["encoded_by_rank"])
        assert sum(emb["encoded_by_rank"]) == 235 == emb["encoded_items"]
        assert distributed["per_query"] == single[model]["per_query"], model
        assert distributed["metrics"] == single[model]["metrics"]
