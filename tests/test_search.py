"""FAISS exact search against a NumPy brute-force top-k on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from llara_bench.harness.search import (Hits, build_index, exact_search, index_blocks, latency_ms, plan_search, search_backend,
                            search_index)


def numpy_topk(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ docs.T
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, idx, axis=1), idx


@pytest.mark.parametrize("n_docs,dim,k", [(1000, 64, 10), (5000, 384, 100), (300, 16, 300)])
def test_faiss_topk_equals_numpy(n_docs, dim, k):
    rng = np.random.default_rng(n_docs)
    docs = rng.standard_normal((n_docs, dim)).astype(np.float32)
    queries = rng.standard_normal((50, dim)).astype(np.float32)
    ids = [f"d{i}" for i in range(n_docs)]
    hits = exact_search(queries, docs, ids, k)
    ref_scores, ref_idx = numpy_topk(queries, docs, k)
    np.testing.assert_allclose(hits.scores, ref_scores, rtol=1e-5, atol=1e-4)
    # the same document at every rank, unless its score ties a neighbour's (then either order is right)
    for got, want, s in zip(hits.doc_ids, ref_idx, ref_scores):
        for rank, (g, w) in enumerate(zip(got, (ids[j] for j in want))):
            assert g == w or any(abs(s[rank] - s[j]) < 1e-5 for j in (rank - 1, rank + 1) if 0 <= j < k)


def test_k_larger_than_corpus_returns_every_doc():
    docs = np.eye(3, dtype=np.float32)
    hits = exact_search(np.ones((1, 3), np.float32), docs, ["a", "b", "c"], k=10)
    assert sorted(hits.doc_ids[0]) == ["a", "b", "c"]


def test_drop_self_hits_keeps_k():
    hits = Hits(np.array([[3.0, 2.0, 1.0]], np.float32), [["q1", "d2", "d3"]])
    assert hits.to_run(["q1"], k=2, drop_self_hits=True) == {"q1": {"d2": 2.0, "d3": 1.0}}
    assert hits.to_run(["q1"], k=2) == {"q1": {"q1": 3.0, "d2": 2.0}}


def test_query_batches_do_not_change_results():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((500, 32)).astype(np.float32)
    queries = rng.standard_normal((37, 32)).astype(np.float32)
    ids = [str(i) for i in range(500)]
    index = build_index(docs)
    a = search_index(index, queries, ids, 20, batch_size=5)
    b = search_index(index, queries, ids, 20)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.doc_ids == b.doc_ids


def test_cpu_backend_named_and_gpu_request_fails_clearly_without_gpu():
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present")
    assert search_backend() == "faiss IndexFlatIP (float32) on CPU"
    with pytest.raises(RuntimeError, match="faiss sees no GPU"):
        build_index(np.ones((2, 2), np.float32), use_gpu=True)


@pytest.mark.parametrize("shard", [True, False])
@pytest.mark.parametrize("fp16", [True, False])
def test_gpu_index_is_cloned_to_all_gpus_with_the_sharding_and_fp16_options(monkeypatch, shard, fp16):
    """faiss-cpu cannot run the GPU path here, so the clone call is intercepted: what reaches
    index_cpu_to_all_gpus (a flat IP index, and the cloner options) is what the GPU build would receive.
    faiss-cpu lacks GpuMultipleClonerOptions; a stand-in with its two fields (defaults false) is used."""
    import faiss

    class ClonerOptions:  # faiss/gpu/GpuClonerOptions.h: GpuMultipleClonerOptions
        shard = False
        useFloat16 = False

    if not hasattr(faiss, "GpuMultipleClonerOptions"):
        monkeypatch.setattr(faiss, "GpuMultipleClonerOptions", ClonerOptions, raising=False)
    seen = {}

    def clone(index, co=None, ngpu=-1):
        seen.update(type=type(index).__name__, metric=index.metric_type, shard=co.shard, fp16=co.useFloat16)
        return index

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 2)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", clone, raising=False)
    index = build_index(np.eye(4, dtype=np.float32), shard=shard, fp16=fp16)
    assert seen == {"type": "IndexFlatIP", "metric": faiss.METRIC_INNER_PRODUCT, "shard": shard, "fp16": fp16}
    assert index.ntotal == 4
    spread = "sharded across" if shard else "replicated on"
    assert search_backend(True, shard=shard, fp16=fp16) == \
        f"faiss IndexFlatIP ({'float16' if fp16 else 'float32'}) {spread} 2 GPU(s)"


def test_fp16_index_on_cpu_halves_memory_and_keeps_the_ranking():
    import faiss

    rng = np.random.default_rng(1)
    docs = rng.standard_normal((2000, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:50] + 0.3 * rng.standard_normal((50, 64)).astype(np.float32)
    ids = [str(i) for i in range(2000)]
    exact, half = exact_search(queries, docs, ids, 10), exact_search(queries, docs, ids, 10, fp16=True)
    assert np.abs(exact.scores - half.scores).max() < 1e-2
    assert [row[0] for row in half.doc_ids] == [row[0] for row in exact.doc_ids]
    index = build_index(docs, fp16=True)
    assert isinstance(index, faiss.IndexScalarQuantizer) and index.code_size == 64 * 2


def test_latency_percentiles_time_each_sampled_query_alone():
    calls = []
    stats = latency_ms(calls.append, 1000, sample=50)
    assert stats["queries"] == 50 and len(calls) == 51  # one warm-up
    assert calls[1] == 0 and calls[-1] == 999 and len(set(calls[1:])) == 50
    assert 0 <= stats["p50"] <= stats["p90"] <= stats["p99"]
    assert latency_ms(calls.append, 0) is None


def test_plan_puts_the_index_on_the_gpus_when_it_fits_them():
    gib = 2**30
    n, dim = 8_841_823, 4096  # LLaMA-2 on MS MARCO passage: 135 GiB float32, 67.5 GiB float16
    plan = lambda **kw: plan_search(n, dim, 6980, 1000, 512 * gib, used_bytes=gib, **kw)  # noqa: E731
    eight = plan(fp16=True, gpu_free=[79 * gib] * 8)
    assert (eight["mode"], eight["device"], eight["gpus"]) == ("in-memory", "gpu", 8)
    assert eight["index_bytes"] == n * dim * 2 and eight["index_bytes_per_gpu"] == -(-n * dim * 2 // 8)
    assert plan(fp16=True, gpu_free=[39 * gib] * 8)["device"] == "gpu"  # 8.4 GiB on each 40 GB card
    # a full float16 copy on each 40 GB card does not fit; nor does the float32 index on one 80 GB card
    assert plan(fp16=True, shard=False, gpu_free=[39 * gib] * 8)["device"] == "cpu"
    assert plan(gpu_free=[79 * gib])["device"] == "cpu"
    assert plan(gpu_free=[])["device"] == "cpu"
    assert plan(fp16=True, gpu_free=[79 * gib] * 8, mode="shard-and-merge")["device"] == "cpu"


def test_index_filled_in_place_block_by_block_equals_one_add():
    rng = np.random.default_rng(3)
    docs = rng.standard_normal((1000, 16)).astype(np.float32)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    ids = [str(i) for i in range(1000)]
    blocks = [(0, docs[:1]), (1, docs[1:377]), (377, docs[377:])]
    filled = index_blocks(blocks, 16, 1000)
    assert filled.ntotal == 1000
    expected = search_index(build_index(docs), queries, ids, 50)
    got = search_index(filled, queries, ids, 50)
    assert got.doc_ids == expected.doc_ids
    np.testing.assert_array_equal(got.scores, expected.scores)
    added = index_blocks(blocks, 16)  # size unknown: through faiss's add
    assert search_index(added, queries, ids, 50).doc_ids == expected.doc_ids
    with pytest.raises(ValueError, match="held 377 rows, expected 1000"):
        index_blocks(blocks[:2], 16, 1000)
