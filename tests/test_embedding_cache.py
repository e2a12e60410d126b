"""The corpus-embedding cache: reuse on a rerun, never across keys, resume after SIGKILL, and the
runner's choice between in-memory and shard-and-merge search."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from llara_bench.harness import results

from llara_bench.harness.embedding_cache import cache_folder, cache_key
from llara_bench.harness.runner import CacheOptions, RunConfig, SearchOptions, run_suite
from llara_bench.harness.search import plan_search
from llara_bench.harness.suites import load_suite


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _run(tmp_path, search_mode="auto", **cache):
    config = RunConfig(suite=load_suite("smoke"), output=tmp_path / "runs", models=["minilm"],
                       cache=CacheOptions(**cache), search=SearchOptions(search_mode=search_mode))
    (result,) = run_suite(config).results
    return result


def test_rerun_reuses_every_shard_and_scores_the_same(tmp_path, cache):
    first = _run(tmp_path, shard_rows=100)
    second = _run(tmp_path, shard_rows=100)
    assert (first["embeddings"]["encoded_items"], first["embeddings"]["reused_items"]) == (235, 0)
    assert (second["embeddings"]["encoded_items"], second["embeddings"]["reused_items"]) == (0, 235)
    assert second["embeddings"]["folder"] == first["embeddings"]["folder"]
    assert sorted(p.name for p in Path(first["embeddings"]["folder"]).glob("shard-*.npy")) == [
        "shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    assert second["per_query"] == first["per_query"]
    assert second["embeddings"]["as_encoded"]["items"] == 235  # the original encoding's measurements
    assert second["timings"]["encode_corpus"]["items"] == 0
    # the queries were cached too, so the rerun never loaded the model
    assert (first["embeddings"]["queries_reused"], second["embeddings"]["queries_reused"]) == (False, True)
    assert (first["embeddings"]["model_loaded"], second["embeddings"]["model_loaded"]) == (True, False)
    assert "load" in first["timings"] and "load" not in second["timings"]
    assert second["timings"]["encode_queries"]["items"] == 0
    assert second["model"] == first["model"]  # the metadata as loaded, from the memo
    jsonschema.validate(second, results.schema())


def test_no_cache_leaves_nothing_behind(tmp_path, cache):
    result = _run(tmp_path, embedding_cache=False)
    assert result["embeddings"]["folder"] is None and result["embeddings"]["encoded_items"] == 235
    assert not (cache / "embeddings").exists()


def test_keys_differ_for_anything_the_vectors_depend_on():
    from llara_bench.models import REGISTRY

    meta = REGISTRY.get("minilm").meta.to_dict()
    base = cache_key(meta, "sha256:aa")
    assert cache_key(meta, "sha256:aa") == base
    assert cache_folder(cache_key(meta, "sha256:aa")) == cache_folder(base)
    changed = [
        cache_key(meta, "sha256:bb"),  # another corpus
        cache_key(meta | {"contract": {**meta["contract"], "passage_max_length": 128}}, "sha256:aa"),
        cache_key(meta | {"contract": {**meta["contract"], "dtype": "bfloat16"}}, "sha256:aa"),
        cache_key(meta | {"revision": "abc123"}, "sha256:aa"),
        cache_key(meta | {"source": "other/model"}, "sha256:aa"),
        cache_key(meta | {"extra": {"resolved": {"adapter_sha256": "ff"}}}, "sha256:aa"),
    ]
    folders = {cache_folder(k) for k in changed}
    assert len(folders) == len(changed) and cache_folder(base) not in folders
    # where it runs does not matter
    on_gpu = meta | {"extra": {"resolved": {"device": "cuda:0"}}}
    assert cache_key(on_gpu, "sha256:aa") == cache_key(meta | {"extra": {"resolved": {}}}, "sha256:aa")


def test_a_local_model_folder_that_changes_gets_a_new_key(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"1")
    meta = {"source": str(folder), "contract": {}}
    before = cache_key(meta, "sha256:aa")
    (folder / "model.safetensors").write_bytes(b"22")  # retrained into the same folder
    assert cache_key(meta, "sha256:aa") != before


def test_killed_encode_resumes_from_finished_shards(tmp_path, cache):
    """SIGKILL the CLI mid-encode, rerun: the finished shards are reused and the scores are those of an
    uninterrupted run."""
    env = {**os.environ, "LLARA_BENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llara_bench.harness.cli", "run", "-m", "minilm", "--shard-rows", "10",
                             "-o", str(tmp_path / "killed"), "--no-report"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.glob("embeddings/*/shard-*.npy"))) < 3:
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(cache.glob("embeddings/*/shard-*.npy")))
    assert 3 <= finished < 24, finished  # 235 documents in shards of 10: 24 shards
    for shard in cache.glob("embeddings/*/shard-*.npy"):  # every shard there is whole (atomic writes)
        assert np.load(shard).shape == (10, 384) and shard.with_suffix(".json").is_file()
    resumed = _run(tmp_path, shard_rows=10)
    assert resumed["embeddings"]["reused_items"] == 10 * finished
    assert resumed["embeddings"]["encoded_items"] == 235 - 10 * finished
    reference = _run(tmp_path, shard_rows=10, embedding_cache=False)
    assert resumed["per_query"] == reference["per_query"]
    assert resumed["metrics"] == reference["metrics"]


def test_shard_and_merge_in_the_runner_scores_like_in_memory(tmp_path, cache):
    in_memory = _run(tmp_path, search_mode="in-memory")
    sharded = _run(tmp_path, search_mode="shard-and-merge")
    assert sharded["embeddings"]["plan"]["mode"] == "shard-and-merge"
    assert in_memory["embeddings"]["plan"]["mode"] == "in-memory"
    assert sharded["search"]["backend"].endswith("shard-and-merge on CPU")
    assert sharded["per_query"] == in_memory["per_query"]


def test_plan_chooses_shard_and_merge_when_the_index_does_not_fit():
    gib = 2**30
    # LLaMA-2 on MS MARCO passage: 8,841,823 x 4096 float32 = 135 GiB of vectors
    msmarco = plan_search(8_841_823, 4096, 6980, 1000, budget_bytes=64 * gib, used_bytes=2 * gib, gpu_free=[])
    assert (msmarco["mode"], msmarco["embedding_bytes"]) == ("shard-and-merge", 8_841_823 * 4096 * 4)
    small = plan_search(5183, 384, 300, 1000, budget_bytes=4 * gib, used_bytes=gib, gpu_free=[])
    assert (small["mode"], small["device"]) == ("in-memory", "cpu")
    with pytest.raises(ValueError, match="search mode"):
        plan_search(1, 1, 1, 1, mode="gpu")


def test_bad_search_mode_is_refused_before_running(tmp_path):
    from llara_bench.harness.errors import ConfigError

    with pytest.raises(ConfigError, match="auto, in-memory, shard-and-merge"):
        RunConfig(suite=load_suite("smoke"), search=SearchOptions(search_mode="fast"))
