"""Exact top-k search speed on synthetic vectors: the harness's FAISS flat index and a NumPy matrix
product against BEIR's exact search (``DenseRetrievalExactSearch``, the baseline: torch scores per
corpus chunk, a heap per query), at SciFact's size (5,183 × 384, 300 queries) and at 1M × 384 (1,000
queries). All three must return the same top-k scores. With benchmarks disabled each size runs once on
a small slice."""

from __future__ import annotations

import numpy as np
import pytest

from llara_bench.harness.search import build_index, search_index

K = 100
SIZES = {"scifact-sized": (5183, 300), "1M": (1_000_000, 1000)}
DIM = 384


@pytest.fixture(scope="module", params=list(SIZES))
def vectors(request):
    n_docs, n_queries = SIZES[request.param]
    if request.config._benchmarksession.disabled:
        n_docs, n_queries = 3000, 20
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((n_docs, DIM), dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[rng.choice(n_docs, n_queries, replace=False)] + 0.5 * rng.standard_normal((n_queries, DIM),
                                                                                              dtype=np.float32)
    return request.param, queries, docs


def faiss_flat(queries, docs):
    hits = search_index(build_index(docs, use_gpu=False), queries, [f"d{i}" for i in range(len(docs))], K)
    return hits.scores


def numpy_exact(queries, docs, query_batch: int = 100):
    """Scores in query batches (1,000 × 1M float32 scores would be 4 GB), then argpartition + sort."""
    top = []
    for start in range(0, len(queries), query_batch):
        scores = queries[start:start + query_batch] @ docs.T
        part = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        top.append(-np.sort(-np.take_along_axis(scores, part, axis=1), axis=1))
    return np.vstack(top)


class _Precomputed:
    """BEIR's model interface over precomputed vectors: a document's text is its row number."""

    def __init__(self, queries, docs):
        self.queries, self.docs = queries, docs

    def encode_queries(self, queries, batch_size=None, **kwargs):
        import torch

        return torch.from_numpy(self.queries)

    def encode_corpus(self, corpus, batch_size=None, **kwargs):
        import torch

        return torch.from_numpy(self.docs[[int(d["text"]) for d in corpus]])


def beir_exact(queries, docs):
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    search = DenseRetrievalExactSearch(_Precomputed(queries, docs), batch_size=512, show_progress_bar=False)
    run = search.search({f"d{i}": {"title": "", "text": str(i)} for i in range(len(docs))},
                        {f"q{i}": "" for i in range(len(queries))}, K, "dot")
    return np.array([sorted(run[f"q{i}"].values(), reverse=True) for i in range(len(queries))], np.float32)


METHODS = {"beir-exact": beir_exact, "numpy-exact": numpy_exact, "faiss-flat": faiss_flat}


@pytest.mark.parametrize("method", list(METHODS))
def test_search(benchmark, vectors, method):
    size, queries, docs = vectors
    scores = benchmark.pedantic(METHODS[method], args=(queries, docs), rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"comparison": f"exact top-{K} search, {size} ({len(docs):,} x {DIM}, "
                                 f"{len(queries):,} queries)", "baseline": method == "beir-exact"})
    reference = numpy_exact(queries, docs) if method != "numpy-exact" else faiss_flat(queries, docs)
    np.testing.assert_allclose(scores, reference, rtol=0, atol=1e-4)
