"""The orchestrator: suite → datasets → encoders → search → metrics → result files."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from llara_bench.harness import results
from llara_bench.harness.datasets import Dataset, load_dataset, published_size
from llara_bench.harness.datasets.downloads import DownloadRefused, no_downloads
from llara_bench.harness.datasets.titles import join_titles, load_titles, resolve_title_source
from llara_bench.harness.distributed import SINGLE, World
from llara_bench.harness.encoders_file import load_models_files
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.gates import Verdict, check
from llara_bench.harness.metrics import canonical_measures, evaluate, relevance_for_metrics
from llara_bench.harness.provenance import provenance
from llara_bench.harness.record import DatasetInfo, ModelInfo, ResultRecord, RunRecord, SearchInfo, SuiteInfo
from llara_bench.harness.retrieval import (CacheOptions, EncoderOptions, Pair, ProgressFactory, Retriever,
                                           SearchOptions, no_progress, retriever_for)
from llara_bench.harness.search import Run
from llara_bench.harness.suites import DatasetEntry, Suite, check_distinct_names
from llara_bench.harness.timing import PhaseTimer
from llara_bench.models import REGISTRY, ModelEntry

log = logging.getLogger("llara_bench")

__all__ = ["CacheOptions", "EncoderOptions", "ProgressFactory", "RunConfig", "SearchOptions", "SuiteRun", "run_suite"]


@dataclass
class RunConfig:
    suite: Suite
    data_root: Path | None = None
    output: Path = Path("runs")
    models: list[str] | None = None  # overrides the suite's; NAME=PATH names a model given by path
    datasets: list[str] | None = None  # dataset names or specs of the suite to keep, or specs to add
    models_files: list[Path] = field(default_factory=list)  # YAML files declaring extra encoders
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    cache: CacheOptions = field(default_factory=CacheOptions)
    search: SearchOptions = field(default_factory=SearchOptions)
    top_k: int | None = None
    split: str | None = None  # overrides every dataset's split
    measures: list[str] | None = None  # overrides the suite's (any case: ndcg@10 is nDCG@10)
    baseline: str | None = None  # overrides the suite's
    name: str | None = None  # the run folder's name (default: <suite>-<time>-<id>)
    save_run_files: bool = True
    titles: str | None = None  # title source for every dataset, overriding the suite's ("none": no titles)

    def __post_init__(self) -> None:
        if self.measures:
            measures = canonical_measures(self.measures)
            main = self.suite.main_metric if self.suite.main_metric in measures else measures[0]
            self.suite = replace(self.suite, measures=measures, main_metric=main)
        if self.name is not None and (not self.name or results.slug(self.name) != self.name):
            raise ConfigError(f"run name {self.name!r}: expected a folder name of letters, digits, '.', '_' and "
                              f"'-' (e.g. {results.slug(self.name)!r})")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as run, flat: the options of each group beside the run's own."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("encoder", "cache", "search")}
        d |= asdict(self.encoder) | asdict(self.cache) | asdict(self.search)
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


def select_entries(config: RunConfig, resolved: list[DatasetEntry] | None = None) -> list[DatasetEntry]:
    """The suite's datasets (``resolved``, if given), or those ``datasets`` names, plus the specs it gives that
    the suite lacks (``folder:PATH``: a folder run under the suite's defaults); then the split and titles
    overrides."""
    entries = config.suite.resolve_datasets(config.data_root) if resolved is None else resolved
    if config.datasets:
        wanted = list(dict.fromkeys(config.datasets))
        named = {e.name for e in entries} | {e.spec for e in entries}
        added = []
        for value in wanted:
            if value not in named:
                if ":" not in value:
                    raise UnknownNameError(f"dataset in suite {config.suite.name!r} (or a spec such as "
                                           "folder:PATH)", value, [e.name for e in entries])
                added.append(config.suite.entry(value, where=f"--dataset {value}"))
        entries = [e for e in entries if e.name in wanted or e.spec in wanted] + added
    if config.split:
        entries = [replace(e, split=config.split) for e in entries]
    if config.titles:
        entries = [replace(e, titles=None if config.titles == "none" else config.titles) for e in entries]
    check_distinct_names(entries)
    return entries


def select_models(config: RunConfig) -> list[ModelEntry]:
    """The registry entries to run; ``NAME=PATH`` (or ``NAME=MODEL``) runs a model under a short name."""
    out = []
    for value in config.models or config.suite.models:
        short, sep, target = value.partition("=")
        if sep and short and value not in REGISTRY and not Path(value).exists():
            entry = REGISTRY.get(target)
            out.append(replace(entry, name=short, meta=replace(entry.meta, name=short), aliases=()))
        else:
            out.append(REGISTRY.get(value))
    names = [e.name for e in out]
    clash = results.same_file_name(names)
    if clash:
        other, name = (names[i] for i in clash)
        same = "is named twice" if other == name else f"and {name!r} make the same file name ({results.slug(name)!r})"
        raise ConfigError(f"models {names}: {other!r} {same}, so their results would overwrite each other; give "
                          "one another name with -m NAME=MODEL")
    baseline = config.baseline
    if baseline is not None and baseline not in names:
        raise UnknownNameError("baseline (a model of this run)", baseline, names)
    return out


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


def judgment_warnings(dataset: Dataset, split_name: str) -> str | None:
    """What a user must know about a split's qrels before trusting its scores: judgments that name documents
    the corpus lacks (a split where all do is refused by `Dataset.split`)."""
    split = dataset.split(split_name)
    if not split.unknown_doc_rows:
        return None
    rows = sum(len(judged) for judged in split.qrels.values())
    return (f"{dataset.qrels_source(split_name)}: {split.unknown_doc_rows:,} of {rows:,} judgments name documents "
            f"that are not in the corpus of {dataset.name!r}; those documents can never be retrieved")


def _data_key(entry: DatasetEntry) -> tuple:
    return entry.spec, entry.titles


def run_suite(config: RunConfig, progress: ProgressFactory = no_progress,
              on_result: Callable[[dict], None] | None = None, world: World = SINGLE,
              on_plan: Callable[[list[dict]], None] | None = None, plan_only: bool = False,
              on_note: Callable[[str], None] = log.warning) -> SuiteRun:
    """Every model on every dataset. The memory plan (`memory_plan`) is made first and handed to
    ``on_plan``; ``plan_only`` stops there. Under torchrun (``world``), every rank encodes its share of the
    corpus shards and rank 0 does the rest; the other ranks return a SuiteRun with no results. Dense
    encoders are loaded only when some embedding they must produce is not in the cache. ``on_note`` is told
    what the user should know but is not an error (options a model does not take)."""
    suite = config.suite
    if world.size > 1 and not config.cache.embedding_cache:
        raise ConfigError("a distributed run shares corpus embeddings through the cache: drop --no-embedding-cache")
    load_models_files(config.models_files)
    model_entries = select_models(config)  # fail fast on a typo
    if not plan_only:  # before any model is loaded: a run that cannot save fails now, not after its encoding
        results.check_run_writable(config.output, config.cache.embedding_cache and
                                   any(e.meta.kind == "dense" for e in model_entries))
    if config.name and not plan_only and (config.output / config.name).exists() and \
            any((config.output / config.name).iterdir()):
        raise ConfigError(f"run folder {config.output / config.name} already holds files: choose another --name "
                          "or remove it")
    resolved = suite.resolve_datasets(config.data_root)
    entries = select_entries(config, resolved)
    unchecked = sorted({e.dataset for e in suite.expectations_without_dataset(resolved)})
    if unchecked:
        on_note(f"{suite.path}: the expected scores of {', '.join(map(repr, unchecked))} cannot be checked: no such "
                f"dataset was found{f' under {config.data_root}' if config.data_root else ''}")
    if plan_only:  # reads what is here and downloads nothing
        plan = memory_plan(config, model_entries, planned_sizes(entries, config.data_root))
        if on_plan and world.leader:
            on_plan(plan)
        return SuiteRun(None, plan=plan)
    datasets = load_datasets(entries, config.data_root)
    for line in dict.fromkeys(judgment_warnings(datasets[_data_key(e)][0], e.split) for e in entries):
        if line:
            on_note(line)
    plan = memory_plan(config, model_entries, [DatasetSize.of(e, datasets[_data_key(e)][0]) for e in entries])
    if on_plan and world.leader:
        on_plan(plan)
    baseline = config.baseline or (suite.baseline if suite.baseline in [e.name for e in model_entries] else None)
    run_dir = world.broadcast(config.output / config.name if config.name else
                              results.new_run_dir(config.output, suite.name))
    run = SuiteRun(run_dir, baseline, plan=plan)
    written: list[str] = []
    for model_entry in model_entries:
        retriever = retriever_for(model_entry, config.encoder, config.cache, config.search, world, on_note)
        for entry in entries:
            dataset, load_seconds = datasets[_data_key(entry)]
            pair = evaluate_pair(retriever, dataset, entry, config, progress)
            if pair is None:
                continue
            record, ranked = pair
            record.dataset.load_seconds = load_seconds
            written.append(results.write_result(run_dir, record, ranked if config.save_run_files else None,
                                                qrels=scored_qrels(dataset, entry)))
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
        groups=run.groups, gates=[v.to_dict() for v in run.verdicts],
        compare=[[a, b] for a, b in suite.compare if {a, b} <= {e.name for e in model_entries}]))
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


@dataclass(frozen=True)
class DatasetSize:
    """What the memory plan needs of a dataset: its documents and judged queries (None: unknown), and, for one
    that is not here (``--plan-only`` downloads nothing), where its sizes came from."""

    entry: DatasetEntry
    n_docs: int | None
    n_queries: int | None
    note: str | None = None

    @classmethod
    def of(cls, entry: DatasetEntry, dataset: Dataset) -> DatasetSize:
        return cls(entry, len(dataset.corpus), len(dataset.split(entry.split).queries))


PLAN_ONLY = "--plan-only downloads nothing"


def planned_sizes(entries: list[DatasetEntry], data_root: Path | None) -> list[DatasetSize]:
    """The sizes ``--plan-only`` plans with, downloading nothing: a dataset that is here is read (without its
    titles, which change no size); one that is not is sized by what its source publishes (ir_datasets'
    counts), else left unknown. A spec that names nothing still fails, as the run would."""
    loaded: dict[str, Dataset | None] = {}
    sizes = []
    with no_downloads(PLAN_ONLY):
        for entry in entries:
            if entry.spec not in loaded:
                try:
                    loaded[entry.spec] = load_dataset(entry.spec, data_root)
                except DownloadRefused:
                    loaded[entry.spec] = None
            dataset = loaded[entry.spec]
            if dataset is not None:
                sizes.append(DatasetSize.of(entry, dataset))
                continue
            n_docs, n_queries = published_size(entry.spec)
            sizes.append(DatasetSize(entry, n_docs, n_queries, f"not downloaded ({PLAN_ONLY}), " + (
                "sized by its source's published counts" if n_docs is not None else "size unknown")))
    return sizes


def memory_plan(config: RunConfig, model_entries: list[ModelEntry], sizes: list[DatasetSize]) -> list[dict]:
    """For each dense model and dataset, before anything is encoded: the corpus embedding bytes, the index
    bytes and the search mode and device `plan_search` would choose now (from the declared dimension; a
    model that declares none is planned when it is loaded, a dataset of unknown size when it is here)."""
    rows = []
    for model_entry in model_entries:
        if model_entry.meta.kind != "dense":
            continue
        dim = model_entry.meta.dimension
        for size in sizes:
            row = {"model": model_entry.name, "dataset": size.entry.name, "n_docs": size.n_docs, "dim": dim,
                   "n_queries": size.n_queries}
            if size.note:
                row["note"] = size.note
            if dim and size.n_docs is not None and size.n_queries is not None:
                row |= config.search.plan(size.n_docs, dim, size.n_queries, _depth(config, size.entry),
                                          device=config.encoder.device, block_rows=config.cache.shard_rows)
            rows.append(row)
    return rows


def _depth(config: RunConfig, entry: DatasetEntry) -> int:
    """Hits to search per query: top_k, plus one where a self-hit will be dropped."""
    top_k = config.top_k or entry.top_k
    return top_k + 1 if entry.drop_self_hits else top_k


def scored_qrels(dataset: Dataset, entry: DatasetEntry) -> dict[str, dict[str, int]]:
    """The qrels as the metrics score them: the dataset's convention applied, negative grades at 0."""
    return relevance_for_metrics(dataset.split(entry.split).qrels, entry.relevance_map)


def evaluate_pair(retriever: Retriever, dataset: Dataset, entry: DatasetEntry, config: RunConfig,
                  progress: ProgressFactory = no_progress) -> tuple[ResultRecord, Run] | None:
    """Run one (model, dataset) pair: (the result record, the ranked lists); None on ranks other than 0."""
    suite = config.suite
    split = dataset.split(entry.split)
    top_k = config.top_k or entry.top_k
    query_ids = list(split.queries)
    timer = PhaseTimer()
    encoder = retriever.encoder
    pair = Pair(timer, f"{encoder.entry.name} · {entry.name}", progress)
    try:
        if not retriever.index(dataset, pair):  # a rank other than 0 in a distributed run: its shards are written
            return None
        found = retriever.search(query_ids, [split.queries[q] for q in query_ids], _depth(config, entry), pair)
    finally:
        retriever.close()
    load = encoder.take_load_timing()  # with the dataset whose encoding loaded the model only: counted once
    if load:
        timer.phases = {"load": load, **timer.phases}
    ranked = found.hits.to_run(query_ids, k=top_k, drop_self_hits=entry.drop_self_hits)
    with timer.phase("evaluate") as phase:
        qrels = scored_qrels(dataset, entry)
        aggregate, per_query = evaluate(qrels, ranked, suite.measures)
        phase.count(items=len(qrels))
    return ResultRecord(
        suite=SuiteInfo(suite.name, suite.path),
        # the encoder's own meta: the contract as run (dtype, capped lengths) and what was loaded
        model=ModelInfo.of(encoder.meta, encoder.entry),
        dataset=DatasetInfo.from_dict(dataset_record(dataset, split, entry.name, entry.spec, entry.drop_self_hits,
                                                     entry.relevance_map, titles=entry.titles)),
        search=SearchInfo.from_dict({"top_k": top_k, "qps": timer.phases["search"].items_per_second,
                                     **found.search}),
        embeddings=found.embeddings, main_metric=suite.main_metric, metrics=aggregate, per_query=per_query,
        timings=timer.to_dict(), provenance=provenance(config.to_dict()),
        examples=examples(split.queries, dataset.corpus, ranked)), ranked


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


EXAMPLE_CHARS = 300  # of a top document's text kept in the result, for the report's per-query view


def examples(queries: dict[str, str], corpus, ranked: Run) -> dict:
    """The query texts and each query's top-ranked document (title and the start of its text)."""
    top = {qid: max(docs, key=docs.get) for qid, docs in ranked.items() if docs}
    wanted = set(top.values())
    position = {doc_id: i for i, doc_id in enumerate(corpus.ids) if doc_id in wanted}
    return {"queries": dict(queries), "top": top,
            "documents": {d: {"title": corpus.titles[i], "text": corpus.texts[i][:EXAMPLE_CHARS]}
                          for d, i in position.items()}}
