"""Read run directories, single result files and TREC run files of other tools into one set of results, one
per (model, dataset).

Every result file is read through the typed records of `harness.results` (validated against their schemas),
so a malformed one stops the report with its path and field; the report keeps the results' dict form. A TREC
run file (Pyserini, Anserini, ranx, trec_eval; plain or gzip) is scored against the qrels given with it
(`harness.evaluate.external_result`). An input may carry a label (``--label NAME=PATH``): its models are then
named ``MODEL (NAME)``, so the same model from two runs (before and after a change) is two rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.record import ResultRecord
from llara_bench.harness.results import read_result, read_run


@dataclass(frozen=True)
class Input:
    path: Path
    label: str | None = None

    def name(self, model: str) -> str:
        """The model's name in the report: labelled when the input is."""
        return model if self.label is None else f"{model} ({self.label})"


@dataclass
class Collected:
    results: list[dict]  # one per (model name, dataset name), in the order first seen
    sources: dict[tuple[str, str], Path]  # (model, dataset) -> the file the result came from
    baselines: list[str] = field(default_factory=list)  # baselines named by the runs' suites, in run order
    notes: list[str] = field(default_factory=list)  # what the reader should know (superseded results, ...)
    gates: list[dict] = field(default_factory=list)  # the runs' judged expected scores (run.json "gates")
    compare: list[tuple[str, str]] = field(default_factory=list)  # the runs' suites' pairs that matter (A, B)


def collect(inputs: list[Path | Input], qrels: Path | None = None, measures: list[str] | None = None) -> Collected:
    """Results from run directories (``run.json``, or ``results/`` of an interrupted run), result files and
    TREC run files (scored against ``qrels`` with ``measures``: default the other results' measures).

    When two unlabelled inputs hold the same model on the same dataset, the newer result (``created_at``) is
    kept and a note says which was dropped.
    """
    if not inputs:
        raise DataFormatError("(no input)", "expected at least one run directory, result file or TREC run file")
    inputs = [i if isinstance(i, Input) else Input(Path(i)) for i in inputs]
    out = Collected([], {})
    by_key: dict[tuple[str, str], dict] = {}
    external = [i for i in inputs if _is_trec_run(i.path)]
    if external and qrels is None:
        raise DataFormatError(external[0].path, "a TREC run file is scored against qrels: give them with --qrels FILE "
                              "(TREC 'QUERY_ID 0 DOC_ID GRADE', or the qrels/<dataset>.qrels a llara-bench run saved)")
    for item in inputs:
        if item in external:
            continue
        files, baseline, run_gates, pairs = _result_files(item.path)
        out.gates += [g | {"model": item.name(g["model"])} for g in run_gates]
        if baseline and item.name(baseline) not in out.baselines:
            out.baselines.append(item.name(baseline))
        out.compare += [(item.name(a), item.name(b)) for a, b in pairs if (item.name(a), item.name(b)) not in out.compare]
        for file in files:
            _add(out, by_key, _labelled(read_result(file), item), file)
    if external:
        from llara_bench.harness.evaluate import external_result

        first = next(iter(by_key.values()), None)
        wanted = measures or (list(first["metrics"]) if first else None)
        for item in external:
            result = external_result(item.path, qrels, wanted, name=item.label,
                                     main_metric=first["main_metric"] if first and not measures else None)
            _add(out, by_key, result, item.path)
    if not by_key:
        raise DataFormatError(inputs[0].path, "no result files found (expected <run dir>/results/<model>/<dataset>.json)")
    out.results = list(by_key.values())
    return out


def _labelled(record: ResultRecord, item: Input) -> dict:
    result = record.to_dict()
    if item.label is not None:  # a copy of the model's record: to_dict is shallow
        result["model"] = dict(result["model"], name=item.name(record.model.name), label=item.label)
    return result


def _add(out: Collected, by_key: dict[tuple[str, str], dict], result: dict, file: Path) -> None:
    key = (result["model"]["name"], result["dataset"]["name"])
    if key in by_key:
        older, newer = sorted([(by_key[key], out.sources[key]), (result, file)], key=lambda rf: rf[0]["created_at"])
        out.notes.append(f"{key[0]} on {key[1]}: {older[1]} is superseded by the newer {newer[1]} (to keep both, "
                         "label each input: --label NAME=PATH)")
        result, file = newer
    by_key[key] = result
    out.sources[key] = file


def _is_trec_run(path: Path) -> bool:
    """A file that is not a result JSON (by name): a TREC run, plain or gzip."""
    return path.is_file() and not path.name.lower().endswith(".json")


def _result_files(path: Path) -> tuple[list[Path], str | None, list[dict], list[tuple[str, str]]]:
    """A run's result files, its suite's baseline, its judged expected scores (those of pairs it ran) and its
    suite's declared comparisons."""
    if path.is_file():
        return [path], None, [], []
    if not path.is_dir():
        raise DataFormatError(path, "no such run directory, result file or TREC run file")
    run_json = path / "run.json"
    if run_json.is_file():
        run = read_run(run_json)
        return ([path / rel for rel in run.results], run.baseline, [g for g in run.gates if g["status"] != "not run"],
                [(a, b) for a, b in run.compare])
    if (path / "results").is_dir():  # a run that stopped before writing run.json
        return sorted((path / "results").glob("*/*.json")), None, [], []
    raise DataFormatError(path, "not a run directory: expected run.json or results/ inside it")
