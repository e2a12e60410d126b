"""The retrieval seam: a retriever indexes a corpus, then searches queries into hits (BEIR's ``BaseSearch``,
MTEB's search wrapper). `LexicalSearch` puts a lexical model (BM25) behind it; `DenseRetriever` an encoder,
the embedding cache, the search plan and FAISS. The runner holds a `Retriever` and does not care which.

The options of encoders, of the embedding cache and of search are declared here once, as dataclass fields;
the `run` command's flags are built from them (`harness.options`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from llara_bench.harness.datasets import Dataset
from llara_bench.harness.distributed import SINGLE, World
from llara_bench.harness.embedding_cache import (DEFAULT_SHARD_ROWS, as_encoded, cache_folder, cache_key,
                                                 encode_corpus, finished)
from llara_bench.harness.errors import ConfigError, DataFormatError, UnknownNameError
from llara_bench.harness.lazy_encoder import LazyEncoder
from llara_bench.harness.options import flag, given, option
from llara_bench.harness.search import (SEARCH_MODES, Hits, gpu_free_bytes, index_blocks, latency_ms, plan_search,
                                        search_backend, search_index, search_store)
from llara_bench.harness.timing import PhaseTimer
from llara_bench.models import ModelEntry
from llara_bench.models.compute import peak_for
from llara_bench.models.errors import NothingToIndex
from llara_bench.models.registry import resolve_target

log = logging.getLogger("llara_bench")

# progress(description, total) -> advance(n); the CLI backs it with rich, tests with nothing
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass(frozen=True)
class EncoderOptions:
    """Passed to an encoder's factory, each only if the factory takes it (`factory_options`)."""

    device: str | None = option(None, "torch device of dense encoders, and where FAISS searches: cpu keeps search "
                                "on the CPU (default: cuda if present).")
    batch_size: int | None = option(None, "Most texts per encoding batch.", min=1)
    token_budget: int | None = option(None, "Most padded tokens per encoding batch (default: 4096 on CPU, 65536 "
                                      "on GPU).", min=1)
    dtype: str | None = option(None, "Override the encoders' dtype: float32, bfloat16, float16.")


@dataclass(frozen=True)
class CacheOptions:
    """Where a dense retriever keeps corpus and query embeddings."""

    embedding_cache: bool = option(True, "Reuse (and resume) corpus embeddings cached under "
                                   "$LLARA_BENCH_CACHE/embeddings.", "--embedding-cache/--no-embedding-cache")
    shard_rows: int = option(DEFAULT_SHARD_ROWS, "Corpus rows per embedding shard (the unit of resuming).", min=1)


@dataclass(frozen=True)
class SearchOptions:
    """How a dense retriever searches (see `plan_search`); where is the encoder's device."""

    memory_budget_mib: int | None = option(None, "Memory for search; an index that would not fit is searched "
                                           "shard by shard (default: half the available memory).", min=1)
    search_mode: str = option("auto", "auto, in-memory or shard-and-merge.")
    faiss_fp16: bool = option(False, "Store the index vectors as float16 (half the memory; scores rounded): GPU "
                              "flat index, or a CPU fp16 scalar quantiser.", "--faiss-fp16")
    gpu_shard: bool = option(True, "On several GPUs, split the index across them (default) or put a full copy "
                             "on each.", "--gpu-shard/--gpu-replicate")

    def __post_init__(self) -> None:
        if self.search_mode not in SEARCH_MODES:
            raise ConfigError(f"search mode {self.search_mode!r}: expected one of {', '.join(SEARCH_MODES)}")

    def plan(self, n_docs: int, dim: int, n_queries: int, k: int, *, device: str | None, block_rows: int) -> dict:
        """`plan_search` under these options; a non-CUDA ``device`` (``--device cpu``) keeps search on the CPU
        even where faiss sees GPUs."""
        on_cpu = device is not None and not device.startswith("cuda")
        return plan_search(n_docs, dim, n_queries, k,
                           self.memory_budget_mib * 2**20 if self.memory_budget_mib else None, self.search_mode,
                           fp16=self.faiss_fp16, shard=self.gpu_shard, block_rows=block_rows,
                           gpu_free=[] if on_cpu else gpu_free_bytes())


def factory_options(entry: ModelEntry, options: EncoderOptions, world: World = SINGLE
                    ) -> tuple[dict[str, Any], list[str]]:
    """(the options to build ``entry``'s encoder with, the flags it was given but does not take). A factory
    that takes ``**kwargs`` takes everything. The entry's own kwargs must be parameters of its factory: a
    misspelt one is an error, not a silently ignored setting."""
    factory = resolve_target(entry.target)
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if n != "meta" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in entry.kwargs:
        if not takes_all and key not in named:
            raise UnknownNameError(f"setting of encoder {entry.name!r} ({getattr(factory, '__name__', factory)})",
                                   key, named)
    asked = given(options)
    passed = {k: v for k, v in asked.items() if takes_all or k in named}
    if "device" not in asked and (takes_all or "device" in named) and world.size > 1 and _cuda_available():
        passed["device"] = f"cuda:{world.local_rank}"  # one GPU per rank
    return passed, [flag(options, k) for k in asked if k not in passed]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class Retrieved:
    hits: Hits
    search: dict  # the result's "search" record: backend, exact, latency_ms
    embeddings: dict | None = None  # a dense retriever's cache and plan record


@dataclass
class Pair:
    """What one (model, dataset) pair reports into: its phase timer, its label and progress bars."""

    timer: PhaseTimer
    label: str
    progress: ProgressFactory = no_progress


class Retriever(Protocol):
    encoder: LazyEncoder  # the model behind it: its entry, metadata as loaded and load timing

    def index(self, dataset: Dataset, pair: Pair) -> bool:
        """Index the dataset's corpus; False on a rank that has nothing more to do (distributed encoding)."""

    def search(self, query_ids: list[str], query_texts: list[str], depth: int, pair: Pair) -> Retrieved:
        """The top ``depth`` documents of each query."""

    def close(self) -> None:
        """Drop what `index` holds for its corpus."""


def retriever_for(entry: ModelEntry, options: EncoderOptions, cache: CacheOptions, search: SearchOptions,
                  world: World = SINGLE, note: Callable[[str], None] = log.warning) -> Retriever:
    """The retriever of a registry entry; ``note`` is told which given options its factory does not take."""
    passed, ignored = factory_options(entry, options, world)
    if ignored and world.leader:
        note(f"{entry.name}: ignored {', '.join(ignored)} (its factory takes no such option)")
    encoder = LazyEncoder(entry, passed, lambda: entry.load(**passed), memo=cache.embedding_cache)
    if entry.meta.kind == "lexical":
        return LexicalSearch(encoder, world)
    return DenseRetriever(encoder, cache, search, options.device, world)


class LexicalSearch:
    """A lexical model (`models.LexicalRetriever`, e.g. BM25) that indexes and searches by itself, on rank 0."""

    def __init__(self, encoder: LazyEncoder, world: World = SINGLE):
        self.encoder, self.world = encoder, world

    def index(self, dataset: Dataset, pair: Pair) -> bool:
        if not self.world.leader:
            return False
        corpus = dataset.corpus
        retriever = self.encoder.get()
        with pair.timer.phase("index") as phase:
            try:
                tokens = retriever.index(corpus.ids, corpus.texts, corpus.titles)
            except NothingToIndex as exc:
                raise DataFormatError(dataset.source, f"dataset {dataset.name!r}: {exc}; expected documents with "
                                      "words") from None
            phase.count(items=len(corpus), tokens=tokens)
        return True

    def search(self, query_ids: list[str], query_texts: list[str], depth: int, pair: Pair) -> Retrieved:
        retriever = self.encoder.get()
        with pair.timer.phase("search") as phase:
            scores, doc_ids, q_tokens = retriever.search(query_texts, depth)
            phase.count(items=len(query_ids), tokens=q_tokens)
        latency = latency_ms(lambda i: retriever.search(query_texts[i:i + 1], depth), len(query_ids))
        return Retrieved(Hits(scores, doc_ids), {"backend": self.encoder.entry.meta.source, "exact": True,
                                                 "latency_ms": latency})

    def close(self) -> None:
        pass


@dataclass
class _Indexed:
    ids: list[str]
    store: Any  # EmbeddingStore
    key: dict
    folder: Path
    encoded_by_rank: list[int]


class DenseRetriever:
    """A dense encoder's retriever: corpus and query embeddings through the cache (the model is loaded only
    when some are missing), then the search `SearchOptions.plan` decides: a FAISS flat index in memory
    (GPU or CPU) or shard-and-merge over the cached shards. Under torchrun every rank encodes its shards
    and rank 0 searches."""

    def __init__(self, encoder: LazyEncoder, cache: CacheOptions = CacheOptions(),
                 search: SearchOptions = SearchOptions(), device: str | None = None, world: World = SINGLE):
        self.encoder, self.cache, self.options, self.device, self.world = encoder, cache, search, device, world
        self._scratch: Path | None = None  # embeddings of this corpus when the cache is off
        self._indexed: _Indexed | None = None

    def index(self, dataset: Dataset, pair: Pair) -> bool:
        corpus = dataset.corpus
        self.close()
        if not self.cache.embedding_cache:
            self._scratch = Path(tempfile.mkdtemp(prefix="llara-bench-emb-"))
        key, folder = self._locate(dataset.corpus_fingerprint(), "passage")  # loads the model if need be
        with pair.timer.phase("encode_corpus") as phase:
            mine = encode_corpus(self.encoder, corpus.texts, corpus.titles, folder, key,
                                 rows_per_shard=self.cache.shard_rows, owns=self.world.owns,
                                 progress=pair.progress(f"{pair.label}: encode corpus", len(corpus)),
                                 ids=corpus.ids, label=pair.label, kept=self.cache.embedding_cache)
            self.world.barrier()  # every rank's shards are written
            ranks = self.world.gather((mine.encoded_items, mine.tokens, mine.padded_tokens, mine.flops))
            phase.count(*(sum(r[i] for r in ranks) for i in range(4)))
        self._indexed = _Indexed(list(corpus.ids), mine.store, key, folder, [r[0] for r in ranks])
        return self.world.leader

    def search(self, query_ids: list[str], query_texts: list[str], depth: int, pair: Pair) -> Retrieved:
        if self._indexed is None:
            raise RuntimeError("search before index")
        doc_ids, store, timer = self._indexed.ids, self._indexed.store, pair.timer
        key, folder = self._locate(_texts_fingerprint(query_ids, query_texts), "query")
        with timer.phase("encode_queries") as phase:
            q = encode_corpus(self.encoder, query_texts, None, folder, key, role="query",
                              rows_per_shard=self.cache.shard_rows,
                              progress=pair.progress(f"{pair.label}: encode queries", len(query_ids)),
                              ids=query_ids, label=pair.label, kept=self.cache.embedding_cache)
            queries = q.store.load()
            phase.count(items=q.encoded_items, tokens=q.tokens, padded_tokens=q.padded_tokens, flops=q.flops)
        plan = self.options.plan(len(doc_ids), store.layout.dim, len(query_ids), depth, device=self.device,
                                 block_rows=store.layout.rows_per_shard)
        fp16, shard = self.options.faiss_fp16, self.options.gpu_shard
        if plan["mode"] == "in-memory":
            on_gpu = plan["device"] == "gpu"
            with timer.phase("index") as phase:
                index = index_blocks(store.blocks(store.layout.rows_per_shard), store.layout.dim, len(doc_ids),
                                     use_gpu=on_gpu, shard=shard, fp16=fp16)
                phase.count(items=len(doc_ids))
            with timer.phase("search") as phase:
                hits = search_index(index, queries, doc_ids, depth)
                phase.count(items=len(query_ids))
            search = {"backend": search_backend(on_gpu, shard=shard, fp16=fp16),
                      "exact": not fp16,  # float16 storage rounds the vectors
                      "latency_ms": latency_ms(lambda i: index.search(queries[i:i + 1], depth), len(query_ids))}
        else:
            why = ("asked for with --search-mode" if self.options.search_mode != "auto" else
                   f"the index, {plan['index_bytes'] / 2**30:.2f} GiB, would not fit in the memory budget of "
                   f"{plan['budget_bytes'] / 2**30:.2f} GiB")
            log.warning("%s: searching the embedding shards one block at a time (shard-and-merge): %s", pair.label,
                        why)
            with timer.phase("search") as phase:
                hits = search_store(queries, store, doc_ids, depth, plan["budget_bytes"])
                phase.count(items=len(query_ids))
            # one query alone would read every shard again: no per-query latency here
            search = {"backend": "faiss knn, shard-and-merge on CPU", "exact": True, "latency_ms": None}
        encoded = sum(self._indexed.encoded_by_rank)
        info = {"folder": str(self._indexed.folder) if self.cache.embedding_cache else None,
                "key": self._indexed.key, "encoded_items": encoded, "reused_items": len(doc_ids) - encoded,
                "as_encoded": as_encoded(store), "plan": plan, "encoded_by_rank": self._indexed.encoded_by_rank,
                "queries_reused": q.encoded_items == 0, "model_loaded": self.encoder.loaded}
        compute = self._utilisation(timer)
        if compute:
            info["compute"] = compute
        return Retrieved(hits, search, info)

    def _utilisation(self, timer: PhaseTimer) -> dict | None:
        """MFU of the encoding phases that counted FLOPs: each phase's FLOP/s against the peak of the encoder's
        device at its dtype (models.compute.peak_for), recorded beside them. Corpus encoding under torchrun
        ran on every rank's device at once: its peak is one device's times the ranks; queries ran on rank 0."""
        devices = {"encode_corpus": self.world.size, "encode_queries": 1}
        counted = {p: timer.phases[p] for p in devices if p in timer.phases and timer.phases[p].flops_per_second}
        if not counted or not self.encoder.loaded:  # (an encoder that counts FLOPs has encoded: it is loaded)
            return None
        encoder = self.encoder.get()
        device = str(getattr(encoder, "device", "cpu"))
        dtype = encoder.meta.contract.dtype if encoder.meta.contract else "float32"
        peak = peak_for(device, dtype)
        for name, phase in counted.items():
            phase.mfu = phase.flops_per_second / (peak.flops_per_second * devices[name])
        return {"device": device, "dtype": dtype, "devices": self.world.size, **peak.to_dict()}

    def close(self) -> None:
        self._indexed = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _locate(self, fingerprint: str, role: str) -> tuple[dict, Path]:
        """The cache key and folder of these texts' embeddings for ``role`` (the scratch folder when the cache is
        off). The model is loaded (its own "load" phase, never inside an encoding phase) only when some shard
        is missing; the key is then recomputed from its metadata as loaded, so nothing is encoded under a
        memo's key."""
        encoder = self.encoder

        def locate() -> tuple[dict, Path]:
            key = cache_key(encoder.meta.to_dict() | {"kwargs": encoder.entry.kwargs}, fingerprint, role)
            return key, (self._scratch / role if self._scratch else cache_folder(key))

        key, folder = locate()
        if not encoder.loaded and not finished(folder, key):
            encoder.get()
            key, folder = locate()
        return key, folder


def _texts_fingerprint(ids: list[str], texts: list[str]) -> str:
    return hashlib.sha256(json.dumps([ids, texts], ensure_ascii=False).encode()).hexdigest()
