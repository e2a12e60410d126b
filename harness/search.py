"""Exact inner-product search with FAISS (all GPUs when faiss sees any, CPU otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

Run = dict[str, dict[str, float]]  # query id -> doc id -> score (ir_measures' dict form)


@dataclass
class Hits:
    """Top-k per query in rank order (row i belongs to query i)."""

    scores: np.ndarray  # (n_queries, k) float32
    doc_ids: list[list[str]]

    def to_run(self, query_ids: Sequence[str], *, k: int, drop_self_hits: bool = False) -> Run:
        """Keep the first k hits per query; with `drop_self_hits`, skip a hit whose doc id equals the
        query id first (the ArguAna/Quora convention: search k+1 so k remain)."""
        run: Run = {}
        for qid, row_ids, row_scores in zip(query_ids, self.doc_ids, self.scores):
            ranked: dict[str, float] = {}
            for doc_id, score in zip(row_ids, row_scores):
                if drop_self_hits and doc_id == qid:
                    continue
                ranked[doc_id] = float(score)
                if len(ranked) == k:
                    break
            run[qid] = ranked
        return run


def faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def search_backend(use_gpu: bool | None = None) -> str:
    gpus = faiss_gpus()
    if use_gpu is None:
        use_gpu = gpus > 0
    return f"faiss IndexFlatIP on {gpus} GPU(s)" if use_gpu and gpus else "faiss IndexFlatIP on CPU"


def build_index(doc_vectors: np.ndarray, *, use_gpu: bool | None = None):
    """A flat (exact) inner-product index holding `doc_vectors`; on every GPU faiss sees, if any."""
    import faiss

    vectors = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-d array of document vectors, got shape {vectors.shape}")
    index = faiss.IndexFlatIP(vectors.shape[1])
    if (use_gpu is None or use_gpu) and faiss_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    elif use_gpu:
        raise RuntimeError("GPU search requested but faiss sees no GPU (install the 'gpu' extra on a GPU machine)")
    index.add(vectors)
    return index


def search_index(index, query_vectors: np.ndarray, doc_ids: Sequence[str], k: int,
                 batch_size: int = 4096) -> Hits:
    """Top-k by inner product. Batches queries to bound the (batch, k) result buffers."""
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    k = min(k, index.ntotal)
    all_scores, all_ids = [], []
    for start in range(0, len(queries), batch_size):
        scores, idx = index.search(queries[start:start + batch_size], k)
        all_scores.append(scores)
        all_ids.extend([doc_ids[j] for j in row if j >= 0] for row in idx)
    scores = np.vstack(all_scores) if all_scores else np.empty((0, k), np.float32)
    return Hits(scores, all_ids)


def exact_search(query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], k: int,
                 *, use_gpu: bool | None = None) -> Hits:
    return search_index(build_index(doc_vectors, use_gpu=use_gpu), query_vectors, doc_ids, k)
