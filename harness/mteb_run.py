"""MTEB retrieval tasks run through ``mteb.evaluate`` with registry encoders, written as harness results.

    llara-bench mteb -t SciFact -m minilm              # an MTEB task (online, or from the HF cache offline)
    llara-bench mteb --folder ../shared/data/scifact   # a local BEIR folder as an MTEB task
    llara-bench mteb -b BEIR                           # the retrieval tasks of an MTEB benchmark

MTEB encodes and searches (its own exact search) and writes its result files under ``<run>/mteb``; its
ranked lists (``prediction_folder``) are then scored by the harness's metrics over the task's own qrels,
so that each result has the harness's measures, per-query scores (for the report's significance tests)
and MTEB's scores beside them (``mteb``). The dataset fingerprint is computed from the data MTEB loaded.
MTEB writes its predictions before its scoring drops a hit whose id is the query's (a task's
``ignore_identical_ids``: ArguAna, Quora): the harness drops them too, so that both score the same lists.
A local folder runs under the conventions the harness's BEIR suites give a dataset of its name.
Needs the ``mteb`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from llara_bench.harness import results
from llara_bench.harness.datasets import Corpus, Dataset
from llara_bench.harness.errors import ConfigError
from llara_bench.harness.metrics import evaluate, relevance_for_metrics
from llara_bench.harness.provenance import provenance
from llara_bench.harness.record import DatasetInfo, ModelInfo, ResultRecord, RunRecord, SearchInfo, SuiteInfo
from llara_bench.harness.runner import SuiteRun, dataset_record, examples
from llara_bench.harness.timing import PhaseTimer
from llara_bench.models import REGISTRY

SUITE = SuiteInfo("mteb", "<llara-bench mteb>")
MEASURES = ["nDCG@10", "RR@10", "R@100", "R@1000", "AP"]
MAIN_METRIC = "nDCG@10"


def load_tasks(names: list[str], folders: list[Path], benchmarks: list[str] = ()) -> list:
    """MTEB tasks by name (``mteb.get_tasks``), the retrieval tasks of named MTEB benchmarks
    (``mteb.get_benchmark``), and local BEIR folders (`harness.mteb_tasks`); retrieval only."""
    try:
        import mteb
    except ImportError as exc:
        raise ConfigError("llara-bench mteb needs mteb: pip install 'llara-bench[mteb]'") from exc
    try:
        tasks = list(mteb.get_tasks(tasks=names)) if names else []
    except KeyError as exc:
        raise ConfigError(f"MTEB task not found (mteb.get_tasks): {exc.args[0] if exc.args else exc}") from None
    missing = set(names) - {t.metadata.name for t in tasks}
    if missing:
        raise ConfigError(f"MTEB task(s) {', '.join(sorted(missing))} not found (mteb.get_tasks)")
    for name in benchmarks:
        try:
            benchmark = mteb.get_benchmark(name)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"MTEB benchmark {name!r} not found (mteb.get_benchmark): {exc}") from None
        tasks += [t for t in benchmark.tasks if t.metadata.type == "Retrieval"
                  and t.metadata.name not in {x.metadata.name for x in tasks}]
    for task in tasks:
        if task.metadata.type != "Retrieval":
            raise ConfigError(f"MTEB task {task.metadata.name!r} is a {task.metadata.type} task; llara-bench mteb "
                              "runs retrieval tasks")
    tasks += [_local_task(folder) for folder in folders]
    names = [t.metadata.name for t in tasks]
    clash = results.same_file_name(names)
    if clash:
        raise ConfigError(f"MTEB tasks {names}: {names[clash[0]]!r} and {names[clash[1]]!r} make the same file name, "
                          "so their results would overwrite each other; give one folder another name")
    return tasks


def _local_task(folder: Path):
    """A local BEIR folder as an MTEB task under the conventions of the ``beir-local`` suite for a dataset of
    its name (a folder named arguana or quora drops self-hits on both sides; cranfield maps its grades)."""
    from llara_bench.harness.mteb_tasks import local_retrieval_task
    from llara_bench.harness.suites import load_suite

    entry = load_suite("beir-local").entry(f"folder:{folder}", where=f"--folder {folder}")
    return local_retrieval_task(folder, relevance_map=entry.relevance_map, drop_self_hits=entry.drop_self_hits)


def task_dataset(task, split: str) -> Dataset:
    """The harness `Dataset` of a retrieval task's default subset and ``split``, from the data MTEB loaded."""
    task.load_data()
    data = _subset(task.dataset)[split]
    corpus = Corpus()
    for row in data["corpus"]:
        corpus.add(str(row["id"]), row.get("title") or "", row["text"])
    queries = {str(row["id"]): row["text"] if isinstance(row["text"], str) else " ".join(row["text"])
               for row in data["queries"]}
    qrels = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in data["relevant_docs"].items()}
    return Dataset(name=task.metadata.name, source=f"mteb:{task.metadata.name}", corpus=corpus, queries=queries,
                   qrels={split: qrels})


def run_mteb(tasks: list, model_names: list[str], output: Path,
             on_result: Callable[[dict], None] | None = None) -> SuiteRun:
    import mteb

    from llara_bench.models.mteb_adapter import MtebEncoder

    entries = [REGISTRY.get(name) for name in model_names]
    clash = results.same_file_name([e.name for e in entries])
    if clash:
        raise ConfigError(f"models {list(model_names)}: {model_names[clash[0]]!r} and {model_names[clash[1]]!r} are "
                          f"the same encoder ({entries[clash[0]].name}), so their results would overwrite each other; "
                          "give it once")
    lexical = [e.name for e in entries if e.meta.kind != "dense"]
    if lexical:
        raise ConfigError(f"llara-bench mteb runs dense encoders; {', '.join(lexical)} is lexical (run it with "
                          "llara-bench run)")
    run_dir = results.new_run_dir(output, SUITE.name)
    run = SuiteRun(run_dir)
    written: list[str] = []
    for entry in entries:
        timer = PhaseTimer()
        with timer.phase("load"):
            encoder = entry.load()
        wrapped = MtebEncoder(encoder)
        for i, task in enumerate(tasks):
            split = task.metadata.eval_splits[0]
            pair_timer = PhaseTimer()
            if i == 0:  # the model's load, counted once: with its first task
                pair_timer.phases["load"] = timer.phases["load"]
            predictions = run_dir / "mteb-predictions" / entry.name
            dataset = task_dataset(task, split)
            with pair_timer.phase("mteb_evaluate") as phase:  # encoding corpus and queries, search, MTEB's scores
                scores = mteb.evaluate(wrapped, task, cache=mteb.ResultCache(run_dir / "mteb"),
                                       prediction_folder=predictions, show_progress_bar=False,
                                       overwrite_strategy="always").task_results[0].scores[split][0]
                phase.count(items=len(dataset.corpus))
            ranked = _predictions(predictions / f"{task.metadata.name}_predictions.json", split,
                                  drop_self_hits=_drops_self_hits(task))
            record = _result(entry, encoder, task, dataset, split, ranked, scores, pair_timer)
            written.append(results.write_result(run_dir, record, ranked,  # the qrels as scored: saved
                                                qrels=relevance_for_metrics(dataset.qrels[split])))
            result = record.to_dict()
            run.results.append(result)
            if on_result:
                on_result(result)
    results.write_run(run_dir, RunRecord(suite=SUITE.name, results=written,
                                         config={"tasks": [t.metadata.name for t in tasks], "models": model_names}))
    return run


def _drops_self_hits(task) -> bool:
    """MTEB's ``ignore_identical_ids`` (a class attribute of its retrieval tasks; the harness's
    ``drop_self_hits`` on a local task)."""
    return bool(getattr(task, "ignore_identical_ids", False))


def _predictions(path: Path, split: str, *, drop_self_hits: bool) -> dict[str, dict[str, float]]:
    """MTEB's ranked lists as written, less the hits MTEB's own scoring drops (`_drops_self_hits`): it
    writes the predictions first, then removes a hit whose document id is the query id."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("mteb_model_meta", None)
    return {q: {d: float(s) for d, s in docs.items() if not (drop_self_hits and d == q)}
            for q, docs in _subset(data)[split].items()}


def _subset(by_subset: dict) -> Any:
    """A task's "default" subset, else its first (llara-bench runs one subset per task)."""
    return by_subset["default"] if "default" in by_subset else next(iter(by_subset.values()))


def _result(entry, encoder, task, dataset: Dataset, split: str, ranked, scores: dict, timer: PhaseTimer
            ) -> ResultRecord:
    qrels = dataset.qrels[split]
    with timer.phase("evaluate") as phase:
        aggregate, per_query = evaluate(relevance_for_metrics(qrels), ranked, MEASURES)
        phase.count(items=len(qrels))
    judged = dataset.split(split)
    return ResultRecord(
        suite=SUITE, model=ModelInfo.of(encoder.meta, entry),
        dataset=DatasetInfo.from_dict(dataset_record(
            dataset, judged, dataset.name, dataset.source, _drops_self_hits(task),
            getattr(task, "relevance_map", None),
            notes=[f"run by mteb.evaluate: task {task.metadata.name}, revision {task.metadata.dataset.get('revision')}"])),
        search=SearchInfo("mteb.evaluate (exact search)", max(len(d) for d in ranked.values()) if ranked else 0,
                          exact=True),
        main_metric=MAIN_METRIC, metrics=aggregate, per_query=per_query,
        mteb={k: v for k, v in scores.items() if isinstance(v, (int, float))}, timings=timer.to_dict(),
        provenance=provenance({"command": "mteb", "task": task.metadata.name}),
        examples=examples(judged.queries, dataset.corpus, ranked))
