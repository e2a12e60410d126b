"""Exact inner-product search with FAISS (all GPUs when faiss sees any, CPU otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from harness.errors import ConfigError

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


def search_blocks(query_vectors: np.ndarray, blocks: Iterable[tuple[int, np.ndarray]], doc_ids: Sequence[str],
                  k: int) -> Hits:
    """Exact top-k by inner product over document blocks ``(first row, vectors)``, one block in memory at a
    time: each block's exact top-k (faiss) is merged into a running top-k, and the top-k of the union of
    per-block top-ks is the global top-k. Equal scores keep the lower row first, as a flat index does."""
    import faiss

    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    k = min(k, len(doc_ids))
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), k), -1, dtype=np.int64)
    for start, block in blocks:
        scores, rows = faiss.knn(queries, np.ascontiguousarray(block, dtype=np.float32), min(k, len(block)),
                                 metric=faiss.METRIC_INNER_PRODUCT)
        scores = np.hstack([best_scores, scores])
        rows = np.hstack([best_rows, np.where(rows >= 0, rows + start, -1)])
        # rank by score, then by row (the running top-k holds earlier rows, so ties stay in row order)
        order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), -scores), axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_rows = np.take_along_axis(rows, order, axis=1)
        del block  # so that the next block is never in memory beside this one
    return Hits(best_scores, [[doc_ids[j] for j in row if j >= 0] for row in best_rows])


FAISS_WORKSPACE_BYTES = 4096 * 1024 * 4  # faiss's brute-force kernel scores 4,096 queries x 1,024 rows at a time


def block_rows_for_budget(budget_bytes: int, used_bytes: int, dim: int, n_queries: int, k: int,
                          stored_itemsize: int = 4) -> int:
    """How many corpus rows one block may hold so that the process stays under ``budget_bytes``.

    What is already used (``used_bytes``, e.g. this process's RSS), the queries, the running and the
    per-block top-k (scores and rows, merged in a buffer twice their size) and faiss's workspace come off
    the budget first; each block row costs its float32 copy (plus the stored row, when it is converted
    from float16).
    """
    fixed = used_bytes + n_queries * dim * 4 + 6 * n_queries * k * 12 + FAISS_WORKSPACE_BYTES
    per_row = dim * (4 + (stored_itemsize if stored_itemsize != 4 else 0))
    rows = (budget_bytes - fixed) // per_row
    if rows < 1:
        raise ConfigError(f"a memory budget of {budget_bytes / 2**20:,.0f} MiB leaves no room for a block of "
                          f"document vectors: {fixed / 2**20:,.0f} MiB is already taken (process, queries, "
                          "top-k buffers); raise the budget")
    return int(rows)


def search_store(query_vectors: np.ndarray, store, doc_ids: Sequence[str], k: int, budget_bytes: int) -> Hits:
    """Shard-and-merge search of an `EmbeddingStore`, with blocks sized so this process stays under
    ``budget_bytes``. faiss (and its BLAS) is warmed up first, so their buffers count as already used."""
    import faiss
    import psutil

    dim = store.layout.dim
    faiss.knn(np.zeros((32, dim), np.float32), np.zeros((64, dim), np.float32), 1, metric=faiss.METRIC_INNER_PRODUCT)
    rows = block_rows_for_budget(budget_bytes, psutil.Process().memory_info().rss, dim, len(query_vectors), k,
                                 np.dtype(store.layout.dtype).itemsize)
    return search_blocks(query_vectors, store.blocks(rows), doc_ids, k)


def plan_search(embedding_bytes: int, n_queries: int, k: int, dim: int, budget_bytes: int | None = None,
                mode: str = "auto", used_bytes: int | None = None) -> dict:
    """In-memory flat index when it fits the budget (default: what this process uses plus half the memory
    available now), else shard-and-merge; ``mode`` forces one. In memory, the vectors are held twice while
    the index is built (read, then added)."""
    import psutil

    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode {mode!r}: expected one of {', '.join(SEARCH_MODES)}")
    used = psutil.Process().memory_info().rss if used_bytes is None else used_bytes
    if budget_bytes is None:
        budget_bytes = used + psutil.virtual_memory().available // 2
    needed = used + 2 * embedding_bytes + n_queries * (dim * 4 + 6 * k * 12) + FAISS_WORKSPACE_BYTES
    if mode == "auto":
        mode = "in-memory" if needed <= budget_bytes else "shard-and-merge"
    return {"mode": mode, "index_bytes": embedding_bytes, "budget_bytes": int(budget_bytes),
            "estimated_in_memory_peak_bytes": int(needed)}


SEARCH_MODES = ("auto", "in-memory", "shard-and-merge")
