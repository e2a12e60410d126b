"""Shard-and-merge exact search over an on-disk embedding store: the same top-k as in-memory search,
and a peak RSS under the memory budget on a corpus four times the budget."""

from __future__ import annotations

import numpy as np
import pytest

from llara_bench.harness.embedding_store import EmbeddingStore, StoreLayout
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.harness.search import block_rows_for_budget, exact_search, search_blocks


def _store(folder, vectors, rows_per_shard, dtype="float32", key=None):
    layout = StoreLayout(key=key or {"corpus": "synthetic"}, n_rows=len(vectors), dim=vectors.shape[1],
                         dtype=dtype, rows_per_shard=rows_per_shard)
    store = EmbeddingStore(folder, layout)
    for shard in store.missing():
        rows = layout.shard_rows(shard)
        store.write_shard(shard, vectors[rows.start:rows.stop])
    return store


@pytest.mark.parametrize("rows_per_shard,block_rows,k", [(1000, 1000, 10), (777, 128, 100), (5000, 5000, 100),
                                                         (333, 7, 50)])
def test_shard_and_merge_equals_in_memory_search(tmp_path, rows_per_shard, block_rows, k):
    rng = np.random.default_rng(rows_per_shard)
    docs = rng.standard_normal((5000, 48)).astype(np.float32)
    queries = rng.standard_normal((64, 48)).astype(np.float32)
    ids = [f"d{i}" for i in range(len(docs))]
    store = _store(tmp_path, docs, rows_per_shard)
    merged = search_blocks(queries, store.blocks(block_rows), ids, k)
    flat = exact_search(queries, docs, ids, k, use_gpu=False)
    assert merged.doc_ids == flat.doc_ids
    np.testing.assert_allclose(merged.scores, flat.scores, rtol=1e-5, atol=1e-5)


def test_ties_keep_row_order_across_blocks(tmp_path):
    docs = np.tile(np.eye(4, dtype=np.float32), (5, 1))  # every vector appears 5 times
    ids = [f"d{i}" for i in range(len(docs))]
    store = _store(tmp_path, docs, rows_per_shard=6)
    hits = search_blocks(np.eye(4, dtype=np.float32)[:1], store.blocks(3), ids, 5)
    assert hits.doc_ids == [["d0", "d4", "d8", "d12", "d16"]]


def test_store_refuses_other_embeddings_and_checks_shards(tmp_path):
    docs = np.ones((10, 4), dtype=np.float32)
    _store(tmp_path, docs, rows_per_shard=4, key={"model": "a"})
    with pytest.raises(DataFormatError, match="holds other embeddings"):
        EmbeddingStore(tmp_path, StoreLayout({"model": "b"}, 10, 4, "float32", 4))
    np.save(tmp_path / "shard-00001.npy", np.ones((3, 4), dtype=np.float32))  # wrong length
    store = EmbeddingStore(tmp_path, StoreLayout({"model": "a"}, 10, 4, "float32", 4))
    with pytest.raises(DataFormatError, match=r"shard-00001.npy.*shape \(4, 4\)"):
        list(store.blocks(4))


def test_float16_store_is_read_as_float32(tmp_path):
    docs = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    store = _store(tmp_path, docs, rows_per_shard=30, dtype="float16")
    assert store.load().dtype == np.float32
    np.testing.assert_allclose(store.load(), docs.astype(np.float16).astype(np.float32))


def test_budget_too_small_is_explained():
    with pytest.raises(ConfigError, match="raise the budget"):
        block_rows_for_budget(100 * 2**20, 120 * 2**20, dim=768, n_queries=10, k=10)


@pytest.mark.slow
def test_peak_rss_stays_under_the_budget_on_a_corpus_four_times_larger(tmp_path, make_synthetic_store,
                                                                      search_in_child):
    budget = 320 * 2**20
    dim = 384
    n_rows = 4 * budget // (dim * 4) + 1000  # 1.25 GiB of float32 vectors
    store = make_synthetic_store(tmp_path, n_rows, dim, rows_per_shard=100_000)
    assert sum(p.stat().st_size for p in tmp_path.glob("shard-*.npy")) >= 4 * budget
    sharded, in_memory = search_in_child(store, budget, "shard-and-merge"), search_in_child(store, budget, "in-memory")
    print(f"\npeak RSS: shard-and-merge {sharded['peak_rss'] / 2**20:.0f} MiB, in-memory flat "
          f"{in_memory['peak_rss'] / 2**20:.0f} MiB, budget {budget / 2**20:.0f} MiB, corpus "
          f"{n_rows * dim * 4 / 2**20:.0f} MiB")
    assert sharded["peak_rss"] < budget < in_memory["peak_rss"]
    assert_same_top_k(sharded, in_memory)


def assert_same_top_k(a: dict, b: dict) -> None:
    """Equal scores rank by rank, and the same documents, except that documents with exactly equal
    scores may come in either order (a flat faiss index does not order ties by row)."""
    np.testing.assert_array_equal(np.array(a["scores"]), np.array(b["scores"]))
    for ids_a, ids_b, scores in zip(a["ids"], b["ids"], a["scores"]):
        groups: dict[float, tuple[set, set]] = {}
        for x, y, score in zip(ids_a, ids_b, scores):
            groups.setdefault(score, (set(), set()))[0].add(x)
            groups[score][1].add(y)
        last = scores[-1]  # a tie across the cut-off may keep different members
        assert all(ga == gb for score, (ga, gb) in groups.items() if score != last)
