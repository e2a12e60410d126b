"""Shard-and-merge search against the in-memory flat index (the baseline), on a synthetic corpus four
times the memory budget (1.25 GiB of float32 vectors, a 320 MiB budget): wall time (a fresh process
each, so the peak RSS is the search's own; process start-up is in both) and peak RSS. With benchmarks
disabled it runs once on a 40 MiB corpus."""

from __future__ import annotations

import numpy as np
import pytest

DIM = 384


@pytest.fixture(scope="module")
def store(request, tmp_path_factory, make_synthetic_store):
    budget = 320 * 2**20
    n_rows = 4 * budget // (DIM * 4) + 1000
    if request.config._benchmarksession.disabled:
        n_rows = 40 * 2**20 // (DIM * 4)
    return make_synthetic_store(tmp_path_factory.mktemp("store"), n_rows, DIM, rows_per_shard=100_000), budget


@pytest.fixture(scope="module")
def outcomes():
    return {}


@pytest.mark.parametrize("mode", ["in-memory", "shard-and-merge"])
def test_search_store(benchmark, store, search_in_child, outcomes, mode):
    store, budget = store
    out = benchmark.pedantic(search_in_child, args=(store, budget, mode), rounds=1, iterations=1, warmup_rounds=0)
    corpus_bytes = store.layout.n_rows * DIM * 4
    benchmark.extra_info.update({
        "comparison": f"exact search of a {corpus_bytes / 2**20:,.0f} MiB corpus, budget {budget / 2**20:.0f} MiB",
        "baseline": mode == "in-memory", "search_seconds": round(out["seconds"], 3),
        "peak_rss_mib": round(out["peak_rss"] / 2**20, 1)})
    outcomes[mode] = out
    if len(outcomes) == 2:
        a, b = outcomes["shard-and-merge"], outcomes["in-memory"]
        np.testing.assert_array_equal(np.array(a["scores"]), np.array(b["scores"]))
        if corpus_bytes >= 4 * budget:
            assert a["peak_rss"] < budget
