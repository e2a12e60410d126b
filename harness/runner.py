"""The orchestrator: suite → datasets → encoders → search → metrics → result files."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import results
from harness.datasets import Dataset, load_dataset
from harness.encoders_file import load_models_files
from harness.errors import ConfigError, UnknownNameError
from harness.metrics import evaluate, relevance_for_metrics
from harness.provenance import provenance
from harness.distributed import SINGLE, World
from harness.embedding_cache import DEFAULT_SHARD_ROWS, as_encoded, cache_folder, cache_key, encode_corpus
from harness.search import SEARCH_MODES, Hits, Run, build_index, plan_search, search_backend, search_index, search_store
from harness.suites import DatasetEntry, Suite
from harness.timing import PhaseTimer, PhaseTiming
from models import REGISTRY, DenseEncoder, LexicalRetriever, ModelEntry

log = logging.getLogger("llara_bench")

# progress(description, total) -> advance(n); the CLI backs it with rich, tests with nothing
ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class RunConfig:
    suite: Suite
    data_root: Path | None = None
    output: Path = Path("runs")
    models: list[str] | None = None  # overrides the suite's
    datasets: list[str] | None = None  # dataset names (or specs) to keep
    models_files: list[Path] = field(default_factory=list)  # YAML files declaring extra encoders
    device: str | None = None
    batch_size: int | None = None
    token_budget: int | None = None  # padded tokens per encoding batch (default: by device)
    dtype: str | None = None  # overrides the encoders' contract dtype (decoder encoders)
    top_k: int | None = None
    save_run_files: bool = True
    embedding_cache: bool = True  # reuse and resume corpus embeddings under cache_root()/embeddings
    shard_rows: int = DEFAULT_SHARD_ROWS  # corpus rows per embedding shard
    memory_budget: int | None = None  # bytes for search; default: half the memory available at start
    search_mode: str = "auto"  # or "in-memory" / "shard-and-merge" to force one

    def __post_init__(self) -> None:
        if self.search_mode not in SEARCH_MODES:
            raise ConfigError(f"search mode {self.search_mode!r}: expected one of {', '.join(SEARCH_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["suite"] = {"name": self.suite.name, "path": self.suite.path}
        d["models_files"] = [str(p) for p in self.models_files]  # Paths inside a list, too
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass
class SuiteRun:
    run_dir: Path
    baseline: str | None = None  # the suite's baseline model, when it was run
    results: list[dict] = field(default_factory=list)


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def select_entries(config: RunConfig) -> list[DatasetEntry]:
    entries = config.suite.resolve_datasets(config.data_root)
    if config.datasets:
        wanted = set(config.datasets)
        unknown = wanted - {e.name for e in entries} - {e.spec for e in entries}
        if unknown:
            raise UnknownNameError(f"dataset in suite {config.suite.name!r}", sorted(unknown)[0],
                                   [e.name for e in entries])
        entries = [e for e in entries if e.name in wanted or e.spec in wanted]
    return entries


def run_suite(config: RunConfig, progress: ProgressFactory = _no_progress,
              on_result: Callable[[dict], None] | None = None, world: World = SINGLE) -> SuiteRun:
    """Every model on every dataset. Under torchrun (``world``), every rank encodes its share of the corpus
    shards and rank 0 does the rest; the other ranks return a SuiteRun with no results."""
    suite = config.suite
    if world.size > 1 and not config.embedding_cache:
        raise ConfigError("a distributed run shares corpus embeddings through the cache: drop --no-embedding-cache")
    load_models_files(config.models_files)
    model_entries = [REGISTRY.get(name) for name in (config.models or suite.models)]  # fail fast on a typo
    entries = select_entries(config)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = world.broadcast(config.output / f"{results.slug(suite.name)}-{stamp}-{uuid.uuid4().hex[:6]}")
    baseline = suite.baseline if suite.baseline in [e.name for e in model_entries] else None
    run = SuiteRun(run_dir, baseline)
    written: list[str] = []
    datasets: dict[str, tuple[Dataset, float]] = {}
    for model_entry in model_entries:
        load_timer = PhaseTimer()
        with load_timer.phase("load"):
            encoder = _load_encoder(model_entry, config, world)
        for entry in entries:
            if entry.spec not in datasets:
                start = time.perf_counter()
                datasets[entry.spec] = (load_dataset(entry.spec, config.data_root), time.perf_counter() - start)
            dataset, load_seconds = datasets[entry.spec]
            pair = evaluate_pair(encoder, model_entry, dataset, entry, config, load_timer.phases["load"], progress,
                                 world)
            if pair is None:
                continue
            result, ranked = pair
            result["dataset"]["load_seconds"] = load_seconds
            result["run_id"] = run_dir.name
            json_path, trec_path = results.result_paths(run_dir, model_entry.name, entry.name)
            if config.save_run_files:
                results.write_trec_run(trec_path, ranked, tag=results.slug(model_entry.name))
                result["run_file"] = str(trec_path.relative_to(run_dir))
            results.write_json(json_path, result)
            written.append(str(json_path.relative_to(run_dir)))
            run.results.append(result)
            if on_result:
                on_result(result)
    if not world.leader:
        return run
    results.write_json(run_dir / "run.json", {
        "schema_version": results.SCHEMA_VERSION, "run_id": run_dir.name, "suite": suite.name,
        "baseline": run.baseline, "config": config.to_dict(), "results": written})
    return run


def _load_encoder(entry: ModelEntry, config: RunConfig, world: World = SINGLE):
    overrides: dict[str, Any] = {}
    if entry.meta.kind == "dense":
        if config.device:
            overrides["device"] = config.device
        elif world.size > 1 and _cuda_available():
            overrides["device"] = f"cuda:{world.local_rank}"  # one GPU per rank
        if config.batch_size:
            overrides["batch_size"] = config.batch_size
        if config.token_budget:
            overrides["token_budget"] = config.token_budget
        if config.dtype:
            overrides["dtype"] = config.dtype
    return entry.load(**overrides)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def evaluate_pair(encoder, model_entry: ModelEntry, dataset: Dataset, entry: DatasetEntry, config: RunConfig,
                  load_timing: PhaseTiming, progress: ProgressFactory, world: World = SINGLE
                  ) -> tuple[dict, Run] | None:
    """Run one (model, dataset) pair: (the result dict, the ranked lists); None on ranks other than 0."""
    suite = config.suite
    split = dataset.split(entry.split)
    top_k = config.top_k or entry.top_k
    depth = top_k + 1 if entry.drop_self_hits else top_k
    query_ids = list(split.queries)
    query_texts = [split.queries[q] for q in query_ids]
    corpus = dataset.corpus
    timer = PhaseTimer()
    timer.phases["load"] = load_timing
    label = f"{model_entry.name} · {entry.name}"
    if isinstance(encoder, LexicalRetriever):
        if not world.leader:
            return None
        with timer.phase("index") as phase:
            tokens = encoder.index(corpus.ids, corpus.texts, corpus.titles)
            phase.count(items=len(corpus), tokens=tokens)
        with timer.phase("search") as phase:
            scores, doc_ids, q_tokens = encoder.search(query_texts, depth)
            phase.count(items=len(query_ids), tokens=q_tokens)
        hits = Hits(scores, doc_ids)
        backend = model_entry.meta.source
        embedding_info = None
    elif isinstance(encoder, DenseEncoder):
        found = _dense_search(encoder, model_entry, dataset, query_ids, query_texts, depth, config, timer, label,
                              progress, world)
        if found is None:  # a rank other than 0 in a distributed run: its shards are written, nothing else
            return None
        hits, backend, embedding_info = found
    else:
        raise TypeError(f"encoder {model_entry.name!r} ({type(encoder).__name__}) is neither a DenseEncoder "
                        "(encode) nor a LexicalRetriever (index, search)")
    ranked = hits.to_run(query_ids, k=top_k, drop_self_hits=entry.drop_self_hits)
    with timer.phase("evaluate") as phase:
        qrels = relevance_for_metrics(split.qrels, entry.relevance_map)
        aggregate, per_query = evaluate(qrels, ranked, suite.measures)
        phase.count(items=len(qrels))
    n_judgments = sum(len(d) for d in split.qrels.values())
    return {
        "schema_version": results.SCHEMA_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "suite": {"name": suite.name, "path": suite.path},
        # the encoder's own meta: the contract as run (dtype, capped lengths) and what was loaded
        "model": encoder.meta.to_dict() | {"origin": model_entry.origin, "kwargs": model_entry.kwargs},
        "dataset": {
            "name": entry.name, "spec": entry.spec, "source": dataset.source, "split": split.name,
            "fingerprint": dataset.fingerprint(split.name), "n_docs": len(corpus),
            "n_queries": len(query_ids), "n_unjudged_queries_skipped": split.unjudged_queries,
            "n_judgments": n_judgments, "notes": dataset.notes,
            "conventions": {"drop_self_hits": entry.drop_self_hits,
                            "relevance_map": {str(k): v for k, v in (entry.relevance_map or {}).items()} or None},
        },
        "search": {"backend": backend, "top_k": top_k, "exact": True},
        **({"embeddings": embedding_info} if embedding_info else {}),
        "main_metric": suite.main_metric,
        "metrics": aggregate,
        "per_query": per_query,
        "timings": timer.to_dict(),
        "provenance": provenance(config.to_dict()),
        "examples": examples(split.queries, corpus, ranked),
    }, ranked


def _dense_search(encoder, model_entry: ModelEntry, dataset: Dataset, query_ids, query_texts, depth: int,
                  config: RunConfig, timer: PhaseTimer, label: str, progress: ProgressFactory, world: World):
    """Corpus embeddings through the cache (this rank's shards), then, on rank 0, the queries and the search
    (in memory when the index fits the budget, else shard-and-merge): (hits, backend, embeddings info)."""
    corpus = dataset.corpus
    key = cache_key(encoder.meta.to_dict() | {"kwargs": model_entry.kwargs}, dataset.corpus_fingerprint())
    folder = cache_folder(key) if config.embedding_cache else Path(tempfile.mkdtemp(prefix="llara-bench-emb-"))
    try:
        with timer.phase("encode_corpus") as phase:
            mine = encode_corpus(encoder, corpus.texts, corpus.titles, folder, key, rows_per_shard=config.shard_rows,
                                 progress=progress(f"{label}: encode corpus", len(corpus)), owns=world.owns)
            world.barrier()  # every rank's shards are written
            ranks = world.gather((mine.encoded_items, mine.tokens, mine.padded_tokens))
            encoded, tokens, padded = (sum(r[i] for r in ranks) for i in range(3))
            phase.count(items=encoded, tokens=tokens, padded_tokens=padded)
        if not world.leader:
            return None
        store = mine.store
        with timer.phase("encode_queries") as phase:
            q_out = encoder.encode(query_texts, "query", progress=progress(f"{label}: encode queries", len(query_ids)))
            phase.count(items=len(query_ids), tokens=q_out.n_tokens, padded_tokens=q_out.n_padded_tokens)
        plan = plan_search(mine.embedding_bytes, len(query_ids), depth, store.layout.dim, config.memory_budget,
                           config.search_mode)
        if plan["mode"] == "in-memory":
            with timer.phase("index") as phase:
                index = build_index(store.load())
                phase.count(items=len(corpus))
            with timer.phase("search") as phase:
                hits = search_index(index, q_out.vectors, corpus.ids, depth)
                phase.count(items=len(query_ids))
            backend = search_backend()
        else:
            why = ("asked for with --search-mode" if config.search_mode != "auto" else
                   f"the index, {plan['index_bytes'] / 2**30:.2f} GiB, would not fit in the memory budget of "
                   f"{plan['budget_bytes'] / 2**30:.2f} GiB")
            log.warning("%s: searching the embedding shards one block at a time (shard-and-merge): %s", label, why)
            with timer.phase("search") as phase:
                hits = search_store(q_out.vectors, store, corpus.ids, depth, plan["budget_bytes"])
                phase.count(items=len(query_ids))
            backend = "faiss knn, shard-and-merge on CPU"
        info = {"folder": str(folder) if config.embedding_cache else None, "key": key, "encoded_items": encoded,
                "reused_items": len(corpus) - encoded, "as_encoded": as_encoded(store), "plan": plan,
                "encoded_by_rank": [r[0] for r in ranks]}
    finally:
        if not config.embedding_cache:
            shutil.rmtree(folder, ignore_errors=True)
    return hits, backend, info


EXAMPLE_CHARS = 300  # of a top document's text kept in the result, for the report's per-query view


def examples(queries: dict[str, str], corpus, ranked: Run) -> dict:
    """The query texts and each query's top-ranked document (title and the start of its text)."""
    top = {qid: max(docs, key=docs.get) for qid, docs in ranked.items() if docs}
    wanted = set(top.values())
    position = {doc_id: i for i, doc_id in enumerate(corpus.ids) if doc_id in wanted}
    return {"queries": dict(queries), "top": top,
            "documents": {d: {"title": corpus.titles[i], "text": corpus.texts[i][:EXAMPLE_CHARS]}
                          for d, i in position.items()}}
