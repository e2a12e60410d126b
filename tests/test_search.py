"""FAISS exact search against a NumPy brute-force top-k on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from harness.search import Hits, build_index, exact_search, search_backend, search_index


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
    assert search_backend() == "faiss IndexFlatIP on CPU"
    with pytest.raises(RuntimeError, match="faiss sees no GPU"):
        build_index(np.ones((2, 2), np.float32), use_gpu=True)
