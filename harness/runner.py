"""The orchestrator: suite → datasets → encoders → search → metrics → result files."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from llara_bench.harness import results
from llara_bench.harness.datasets import Dataset, load_dataset
from llara_bench.harness.datasets.titles import join_titles, load_titles, resolve_title_source
from llara_bench.harness.encoders_file import load_models_files
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.gates import Verdict, check
from llara_bench.harness.metrics import evaluate, relevance_for_metrics
from llara_bench.harness.provenance import provenance
from llara_bench.harness.record import DatasetInfo, ModelInfo, ResultRecord, RunRecord, SearchInfo, SuiteInfo
from llara_bench.harness.distributed import SINGLE, World
from llara_bench.harness.embedding_cache import DEFAULT_SHARD_ROWS, as_encoded, cache_folder, cache_key, encode_corpus, finished
from llara_bench.harness.lazy_encoder import LazyEncoder
from llara_bench.harness.search import (SEARCH_MODES, Hits, Run, index_blocks, latency_ms, plan_search, search_backend,
                            search_index, search_store)
from llara_bench.harness.suites import DatasetEntry, Suite
from llara_bench.harness.timing import PhaseTimer
from llara_bench.models import REGISTRY, ModelEntry

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
    faiss_fp16: bool = False  # index vectors stored as float16 (GPU flat index; CPU fp16 scalar quantiser)
    gpu_shard: bool = True  # on several GPUs: split the index across them (else a full copy on each)
    titles: str | None = None  # title source for every dataset, overriding the suite's ("none": no titles)

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
    run_dir: Path | None  # None for a plan-only call
    baseline: str | None = None  # the suite's baseline model, when it was run
    results: list[dict] = field(default_factory=list)
    plan: list[dict] = field(default_factory=list)  # the memory plan made before the run (see memory_plan)
    verdicts: list[Verdict] = field(default_factory=list)  # the suite's expected-score gates, judged
    groups: list[dict] = field(default_factory=list)  # mean scores of dataset groups (see group_means)


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
    if config.titles:
        entries = [replace(e, titles=None if config.titles == "none" else config.titles) for e in entries]
    return entries


def load_datasets(entries: list[DatasetEntry], data_root: Path | None) -> dict[tuple, tuple[Dataset, float]]:
    """Each distinct (spec, titles) loaded once, with its load seconds; a title source is read once."""
    loaded: dict[tuple, tuple[Dataset, float]] = {}
    title_maps: dict[str, dict[str, str]] = {}
    for entry in entries:
        if _data_key(entry) in loaded:
            continue
        start = time.perf_counter()
        dataset = load_dataset(entry.spec, data_root)
        if entry.titles:
            source = resolve_title_source(entry.titles, data_root)
            if source not in title_maps:
                title_maps[source] = load_titles(source)
            join_titles(dataset, title_maps[source], source)
        loaded[_data_key(entry)] = (dataset, time.perf_counter() - start)
    return loaded


def _data_key(entry: DatasetEntry) -> tuple:
    return entry.spec, entry.titles


def run_suite(config: RunConfig, progress: ProgressFactory = _no_progress,
              on_result: Callable[[dict], None] | None = None, world: World = SINGLE,
              on_plan: Callable[[list[dict]], None] | None = None, plan_only: bool = False) -> SuiteRun:
    """Every model on every dataset. The memory plan (`memory_plan`) is made first and handed to
    ``on_plan``; ``plan_only`` stops there. Under torchrun (``world``), every rank encodes its share of the
    corpus shards and rank 0 does the rest; the other ranks return a SuiteRun with no results. Dense
    encoders are loaded only when some embedding they must produce is not in the cache."""
    suite = config.suite
    if world.size > 1 and not config.embedding_cache:
        raise ConfigError("a distributed run shares corpus embeddings through the cache: drop --no-embedding-cache")
    load_models_files(config.models_files)
    model_entries = [REGISTRY.get(name) for name in (config.models or suite.models)]  # fail fast on a typo
    entries = select_entries(config)
    datasets = load_datasets(entries, config.data_root)
    plan = memory_plan(config, model_entries, [(e, datasets[_data_key(e)][0]) for e in entries])
    if on_plan and world.leader:
        on_plan(plan)
    baseline = suite.baseline if suite.baseline in [e.name for e in model_entries] else None
    if plan_only:
        return SuiteRun(None, baseline, plan=plan)
    run_dir = world.broadcast(results.new_run_dir(config.output, suite.name))
    run = SuiteRun(run_dir, baseline, plan=plan)
    written: list[str] = []
    for model_entry in model_entries:
        overrides = _overrides(model_entry, config, world)
        encoder = LazyEncoder(model_entry, overrides, lambda e=model_entry, o=overrides: e.load(**o),
                              memo=config.embedding_cache)
        for entry in entries:
            dataset, load_seconds = datasets[_data_key(entry)]
            pair = evaluate_pair(encoder, model_entry, dataset, entry, config, progress, world)
            if pair is None:
                continue
            record, ranked = pair
            record.dataset.load_seconds = load_seconds
            written.append(results.write_result(run_dir, record, ranked if config.save_run_files else None))
            result = record.to_dict()
            run.results.append(result)
            if on_result:
                on_result(result)
    if not world.leader:
        return run
    run.groups = group_means(entries, run.results)
    run.verdicts = check(suite.expected, run.results + run.groups)
    results.write_run(run_dir, RunRecord(
        suite=suite.name, baseline=run.baseline, config=config.to_dict(), plan=plan, results=written,
        groups=run.groups, gates=[v.to_dict() for v in run.verdicts]))
    return run


def group_means(entries: list[DatasetEntry], results_: list[dict]) -> list[dict]:
    """Per model and dataset group (BEIR reports CQADupStack as the mean of its 12 forums): each measure
    averaged over the member datasets (macro), shaped like a result's model, dataset and metrics, so that
    gates can name a group. ``complete`` is false when a member did not run (the mean is then over fewer)."""
    members: dict[str, list[str]] = {}
    for e in entries:
        if e.group:
            members.setdefault(e.group, []).append(e.name)
    out = []
    for group, names in members.items():
        for model in dict.fromkeys(r["model"]["name"] for r in results_):
            ran = [r for r in results_ if r["model"]["name"] == model and r["dataset"]["name"] in names]
            if ran:
                metrics = {m: sum(r["metrics"][m] for r in ran) / len(ran) for m in ran[0]["metrics"]}
                out.append({"model": {"name": model}, "dataset": {"name": group}, "metrics": metrics,
                            "members": [r["dataset"]["name"] for r in ran], "complete": len(ran) == len(names)})
    return out


def memory_plan(config: RunConfig, model_entries: list[ModelEntry], pairs: list[tuple[DatasetEntry, Dataset]]
                ) -> list[dict]:
    """For each dense model and dataset, before anything is encoded: the corpus embedding bytes, the index
    bytes and the search mode and device `plan_search` would choose now (from the declared dimension; a
    model that declares none is planned when it is loaded)."""
    rows = []
    for model_entry in model_entries:
        if model_entry.meta.kind != "dense":
            continue
        dim = model_entry.meta.dimension
        for entry, dataset in pairs:
            split = dataset.split(entry.split)
            row = {"model": model_entry.name, "dataset": entry.name, "n_docs": len(dataset.corpus), "dim": dim,
                   "n_queries": len(split.queries)}
            if dim:
                row |= plan_search(len(dataset.corpus), dim, len(split.queries), _depth(config, entry),
                                   config.memory_budget, config.search_mode, fp16=config.faiss_fp16,
                                   shard=config.gpu_shard, block_rows=config.shard_rows)
            rows.append(row)
    return rows


def _depth(config: RunConfig, entry: DatasetEntry) -> int:
    """Hits to search per query: top_k, plus one where a self-hit will be dropped."""
    top_k = config.top_k or entry.top_k
    return top_k + 1 if entry.drop_self_hits else top_k


def _overrides(entry: ModelEntry, config: RunConfig, world: World = SINGLE) -> dict[str, Any]:
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
    return overrides


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def evaluate_pair(encoder: LazyEncoder, model_entry: ModelEntry, dataset: Dataset, entry: DatasetEntry,
                  config: RunConfig, progress: ProgressFactory, world: World = SINGLE
                  ) -> tuple[ResultRecord, Run] | None:
    """Run one (model, dataset) pair: (the result record, the ranked lists); None on ranks other than 0."""
    suite = config.suite
    split = dataset.split(entry.split)
    top_k = config.top_k or entry.top_k
    depth = _depth(config, entry)
    query_ids = list(split.queries)
    query_texts = [split.queries[q] for q in query_ids]
    corpus = dataset.corpus
    timer = PhaseTimer()
    label = f"{model_entry.name} · {entry.name}"
    if model_entry.meta.kind == "lexical":
        if not world.leader:
            return None
        retriever = encoder.get()
        with timer.phase("index") as phase:
            tokens = retriever.index(corpus.ids, corpus.texts, corpus.titles)
            phase.count(items=len(corpus), tokens=tokens)
        with timer.phase("search") as phase:
            scores, doc_ids, q_tokens = retriever.search(query_texts, depth)
            phase.count(items=len(query_ids), tokens=q_tokens)
        hits = Hits(scores, doc_ids)
        search_info = {"backend": model_entry.meta.source, "exact": True,
                       "latency_ms": latency_ms(lambda i: retriever.search(query_texts[i:i + 1], depth),
                                                len(query_ids))}
        embedding_info = None
    else:
        found = _dense_search(encoder, model_entry, dataset, query_ids, query_texts, depth, config, timer, label,
                              progress, world)
        if found is None:  # a rank other than 0 in a distributed run: its shards are written, nothing else
            return None
        hits, search_info, embedding_info = found
    if encoder.load_timing:  # (the same load is recorded with each dataset of the model)
        timer.phases = {"load": encoder.load_timing, **timer.phases}
    ranked = hits.to_run(query_ids, k=top_k, drop_self_hits=entry.drop_self_hits)
    with timer.phase("evaluate") as phase:
        qrels = relevance_for_metrics(split.qrels, entry.relevance_map)
        aggregate, per_query = evaluate(qrels, ranked, suite.measures)
        phase.count(items=len(qrels))
    return ResultRecord(
        suite=SuiteInfo(suite.name, suite.path),
        # the encoder's own meta: the contract as run (dtype, capped lengths) and what was loaded
        model=ModelInfo.of(encoder.meta, model_entry),
        dataset=DatasetInfo.from_dict(dataset_record(dataset, split, entry.name, entry.spec, entry.drop_self_hits,
                                                     entry.relevance_map, titles=entry.titles)),
        search=SearchInfo.from_dict({"top_k": top_k, "qps": timer.phases["search"].items_per_second,
                                     **search_info}),
        embeddings=embedding_info, main_metric=suite.main_metric, metrics=aggregate, per_query=per_query,
        timings=timer.to_dict(), provenance=provenance(config.to_dict()),
        examples=examples(split.queries, corpus, ranked)), ranked


def dataset_record(dataset: Dataset, split, name: str, spec: str, drop_self_hits: bool,
                   relevance_map: dict[int, int] | None, notes: list[str] | None = None,
                   titles: str | None = None) -> dict:
    """A result's ``dataset``: what was run (name, spec, split, sizes, fingerprint) and by which conventions."""
    return {
        "name": name, "spec": spec, "source": dataset.source, "split": split.name,
        "fingerprint": dataset.fingerprint(split.name), "n_docs": len(dataset.corpus),
        "n_queries": len(split.queries), "n_unjudged_queries_skipped": split.unjudged_queries,
        "n_judgments": sum(len(d) for d in split.qrels.values()), "notes": dataset.notes + (notes or []),
        "conventions": {"drop_self_hits": drop_self_hits,
                        "relevance_map": {str(k): v for k, v in (relevance_map or {}).items()} or None,
                        "titles": titles},
    }


def _embed(encoder: LazyEncoder, model_entry: ModelEntry, texts: list[str], titles: list[str] | None,
           fingerprint: str, role: str, folder_root: Path | None, config: RunConfig, progress, owns):
    """The embeddings of ``texts`` for ``role`` through the cache (under ``folder_root`` instead, when the
    cache is off): (key, folder, CorpusEmbeddings). The model is loaded only when some shard is missing;
    the key is then recomputed from its metadata as loaded, so nothing is encoded under a memo's key."""
    def locate() -> tuple[dict, Path]:
        key = cache_key(encoder.meta.to_dict() | {"kwargs": model_entry.kwargs}, fingerprint, role)
        return key, (folder_root / role if folder_root else cache_folder(key))

    key, folder = locate()
    if not encoder.loaded and not finished(folder, key):
        encoder.get()
        key, folder = locate()
    return key, folder, encode_corpus(encoder, texts, titles, folder, key, role=role,
                                      rows_per_shard=config.shard_rows, progress=progress, owns=owns)


def _dense_search(encoder: LazyEncoder, model_entry: ModelEntry, dataset: Dataset, query_ids, query_texts,
                  depth: int, config: RunConfig, timer: PhaseTimer, label: str, progress: ProgressFactory,
                  world: World):
    """Corpus embeddings through the cache (this rank's shards), then, on rank 0, the query embeddings
    (cached too) and the search, as `plan_search` decides: (hits, search info, embeddings info)."""
    corpus = dataset.corpus
    scratch = None if config.embedding_cache else Path(tempfile.mkdtemp(prefix="llara-bench-emb-"))
    try:
        with timer.phase("encode_corpus") as phase:
            key, folder, mine = _embed(encoder, model_entry, corpus.texts, corpus.titles,
                                       dataset.corpus_fingerprint(), "passage", scratch, config,
                                       progress(f"{label}: encode corpus", len(corpus)), world.owns)
            world.barrier()  # every rank's shards are written
            ranks = world.gather((mine.encoded_items, mine.tokens, mine.padded_tokens))
            encoded, tokens, padded = (sum(r[i] for r in ranks) for i in range(3))
            phase.count(items=encoded, tokens=tokens, padded_tokens=padded)
        if not world.leader:
            return None
        store = mine.store
        with timer.phase("encode_queries") as phase:
            _, _, q = _embed(encoder, model_entry, query_texts, None, _texts_fingerprint(query_ids, query_texts),
                             "query", scratch, config, progress(f"{label}: encode queries", len(query_ids)),
                             lambda shard: True)
            queries = q.store.load()
            phase.count(items=q.encoded_items, tokens=q.tokens, padded_tokens=q.padded_tokens)
        plan = plan_search(len(corpus), store.layout.dim, len(query_ids), depth, config.memory_budget,
                           config.search_mode, fp16=config.faiss_fp16, shard=config.gpu_shard,
                           block_rows=store.layout.rows_per_shard)
        if plan["mode"] == "in-memory":
            on_gpu = plan["device"] == "gpu"
            options = {"use_gpu": on_gpu, "shard": config.gpu_shard, "fp16": config.faiss_fp16}
            with timer.phase("index") as phase:
                index = index_blocks(store.blocks(store.layout.rows_per_shard), store.layout.dim, len(corpus),
                                     **options)
                phase.count(items=len(corpus))
            with timer.phase("search") as phase:
                hits = search_index(index, queries, corpus.ids, depth)
                phase.count(items=len(query_ids))
            search = {"backend": search_backend(on_gpu, shard=config.gpu_shard, fp16=config.faiss_fp16),
                      "exact": not config.faiss_fp16,  # float16 storage rounds the vectors
                      "latency_ms": latency_ms(lambda i: index.search(queries[i:i + 1], depth), len(query_ids))}
        else:
            why = ("asked for with --search-mode" if config.search_mode != "auto" else
                   f"the index, {plan['index_bytes'] / 2**30:.2f} GiB, would not fit in the memory budget of "
                   f"{plan['budget_bytes'] / 2**30:.2f} GiB")
            log.warning("%s: searching the embedding shards one block at a time (shard-and-merge): %s", label, why)
            with timer.phase("search") as phase:
                hits = search_store(queries, store, corpus.ids, depth, plan["budget_bytes"])
                phase.count(items=len(query_ids))
            # one query alone would read every shard again: no per-query latency here
            search = {"backend": "faiss knn, shard-and-merge on CPU", "exact": True, "latency_ms": None}
        info = {"folder": str(folder) if config.embedding_cache else None, "key": key, "encoded_items": encoded,
                "reused_items": len(corpus) - encoded, "as_encoded": as_encoded(store), "plan": plan,
                "encoded_by_rank": [r[0] for r in ranks], "queries_reused": q.encoded_items == 0,
                "model_loaded": encoder.loaded}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return hits, search, info


def _texts_fingerprint(ids: list[str], texts: list[str]) -> str:
    return hashlib.sha256(json.dumps([ids, texts], ensure_ascii=False).encode()).hexdigest()


EXAMPLE_CHARS = 300  # of a top document's text kept in the result, for the report's per-query view


def examples(queries: dict[str, str], corpus, ranked: Run) -> dict:
    """The query texts and each query's top-ranked document (title and the start of its text)."""
    top = {qid: max(docs, key=docs.get) for qid, docs in ranked.items() if docs}
    wanted = set(top.values())
    position = {doc_id: i for i, doc_id in enumerate(corpus.ids) if doc_id in wanted}
    return {"queries": dict(queries), "top": top,
            "documents": {d: {"title": corpus.titles[i], "text": corpus.texts[i][:EXAMPLE_CHARS]}
                          for d, i in position.items()}}
