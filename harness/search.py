"""Exact inner-product search with FAISS (all GPUs when faiss sees any, CPU otherwise)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from llara_bench.harness.errors import ConfigError

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


def gpu_free_bytes() -> list[int]:
    """Free memory of each GPU faiss sees (none on a CPU build of faiss; torch reads it)."""
    if faiss_gpus() == 0:
        return []
    import torch

    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]


def search_backend(on_gpu: bool = False, *, shard: bool = True, fp16: bool = False) -> str:
    storage = "float16" if fp16 else "float32"
    if on_gpu:
        spread = "sharded across" if shard else "replicated on"
        return f"faiss IndexFlatIP ({storage}) {spread} {faiss_gpus()} GPU(s)"
    return f"faiss {'IndexScalarQuantizer fp16' if fp16 else 'IndexFlatIP'} ({storage}) on CPU"


def empty_index(dim: int, *, use_gpu: bool | None = None, shard: bool = True, fp16: bool = False):
    """An exact inner-product index: on every GPU faiss sees (``shard``: the rows split across them, else a
    full copy on each; ``fp16``: vectors stored as float16), or on the CPU (``fp16``: a float16 scalar
    quantiser, scanned exhaustively). ``use_gpu`` None: GPU when faiss sees one."""
    import faiss

    gpus = faiss_gpus()
    if use_gpu and not gpus:
        raise RuntimeError("GPU search requested but faiss sees no GPU (install the 'gpu' extra on a GPU machine)")
    if gpus and use_gpu is not False:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = shard
        options.useFloat16 = fp16
        return faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(dim), co=options)
    if fp16:
        return faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexFlatIP(dim)


def build_index(doc_vectors: np.ndarray, **options):
    """An index (see `empty_index`) holding `doc_vectors`."""
    if doc_vectors.ndim != 2:
        raise ValueError(f"expected a 2-d array of document vectors, got shape {doc_vectors.shape}")
    return index_blocks([(0, doc_vectors)], doc_vectors.shape[1], len(doc_vectors), **options)


def index_blocks(blocks: Iterable[tuple[int, np.ndarray]], dim: int, n_rows: int | None = None, **options):
    """An index (see `empty_index`) filled block by block ``(first row, vectors)``.

    faiss's ``add`` grows the index's storage by reallocating it, so for a moment the old and the new
    buffer both exist: twice the index. A CPU flat index of known size (``n_rows``) is instead allocated
    once and each block copied into place, so the peak is the index plus one block."""
    import faiss

    index = empty_index(dim, **options)
    if n_rows is not None and type(index) is faiss.IndexFlatIP and hasattr(index.codes, "resize"):
        index.codes.resize(n_rows * dim * 4)
        rows = faiss.rev_swig_ptr(index.codes.data(), n_rows * dim * 4).view(np.float32).reshape(n_rows, dim)
        filled = 0
        for start, block in blocks:
            rows[start:start + len(block)] = block
            filled += len(block)
        if filled != n_rows:
            raise ValueError(f"the blocks held {filled} rows, expected {n_rows}")
        index.ntotal = n_rows
        return index
    for _, block in blocks:
        index.add(np.ascontiguousarray(block, dtype=np.float32))
    return index


LATENCY_SAMPLE = 100  # queries searched one at a time for the latency percentiles


def latency_ms(search_one: Callable[[int], object], n_queries: int, sample: int = LATENCY_SAMPLE) -> dict | None:
    """Per-query latency: up to ``sample`` queries, evenly spread over the set, each searched on its own
    (``search_one(i)``), after one warm-up; milliseconds at the 50th, 90th and 99th percentiles."""
    if n_queries == 0:
        return None
    picks = np.unique(np.linspace(0, n_queries - 1, min(sample, n_queries)).astype(int))
    search_one(int(picks[0]))
    times = []
    for i in picks:
        start = time.perf_counter()
        search_one(int(i))
        times.append(1000 * (time.perf_counter() - start))
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"queries": len(times), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "mean": float(np.mean(times))}


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
                 **options) -> Hits:
    return search_index(build_index(doc_vectors, **options), query_vectors, doc_ids, k)


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


def plan_search(n_docs: int, dim: int, n_queries: int, k: int, budget_bytes: int | None = None,
                mode: str = "auto", *, fp16: bool = False, shard: bool = True, block_rows: int = 0,
                used_bytes: int | None = None, gpu_free: Sequence[int] | None = None) -> dict:
    """Where and how to search: on the GPUs faiss sees when the index fits them (sharded: each holds its
    share; replicated: each holds it all), else on the CPU in memory when it fits the budget (default:
    what this process uses plus half the memory available now), else shard-and-merge on the CPU; ``mode``
    forces in-memory or shard-and-merge. In memory, the index is filled one block of ``block_rows`` rows
    at a time, so the peak is the index plus one block (float16 storage is added through faiss, which
    holds the old and the grown storage together for a moment: twice the index)."""
    import psutil

    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode {mode!r}: expected one of {', '.join(SEARCH_MODES)}")
    gpu_free = gpu_free_bytes() if gpu_free is None else list(gpu_free)
    used = psutil.Process().memory_info().rss if used_bytes is None else used_bytes
    if budget_bytes is None:
        budget_bytes = used + psutil.virtual_memory().available // 2
    embedding_bytes = n_docs * dim * 4  # float32, as stored
    index_bytes = n_docs * dim * (2 if fp16 else 4)
    per_gpu = -(-index_bytes // len(gpu_free)) if gpu_free and shard else index_bytes
    search_bytes = n_queries * (dim * 4 + 6 * k * 12) + FAISS_WORKSPACE_BYTES
    needed = used + index_bytes * (2 if fp16 else 1) + min(block_rows or n_docs, n_docs) * dim * 4 + search_bytes
    on_gpu = bool(gpu_free) and mode != "shard-and-merge" and per_gpu + search_bytes <= GPU_HEADROOM * min(gpu_free)
    if mode == "auto":
        mode = "in-memory" if on_gpu or needed <= budget_bytes else "shard-and-merge"
    return {"mode": mode, "device": "gpu" if on_gpu else "cpu", "gpus": len(gpu_free) if on_gpu else 0,
            "gpu_sharded": shard if on_gpu else None, "fp16": fp16, "embedding_bytes": embedding_bytes,
            "index_bytes": index_bytes, "index_bytes_per_gpu": per_gpu if on_gpu else None,
            "budget_bytes": int(budget_bytes), "estimated_in_memory_peak_bytes": int(needed)}


GPU_HEADROOM = 0.9  # of a GPU's free memory the index and search buffers may take
SEARCH_MODES = ("auto", "in-memory", "shard-and-merge")
