"""Read run directories (or single result files) into one set of results, one per (model, dataset).

Every file is read through the typed records of `harness.results` (validated against their schemas), so
a malformed one stops the report with its path and field; the report keeps the results' dict form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.record import ResultRecord
from llara_bench.harness.results import read_result, read_run


@dataclass
class Collected:
    results: list[dict]  # one per (model name, dataset name), in the order first seen
    sources: dict[tuple[str, str], Path]  # (model, dataset) -> the file the result came from
    baselines: list[str] = field(default_factory=list)  # baselines named by the runs' suites, in run order
    notes: list[str] = field(default_factory=list)  # what the reader should know (superseded results, ...)
    gates: list[dict] = field(default_factory=list)  # the runs' judged expected scores (run.json "gates")


def collect(paths: list[Path]) -> Collected:
    """Results from run directories (``run.json``, or ``results/`` of an interrupted run) and result files.

    When two inputs hold the same model on the same dataset, the newer result (``created_at``) is kept
    and a note says which was dropped.
    """
    if not paths:
        raise DataFormatError("(no input)", "expected at least one run directory or result file")
    by_key: dict[tuple[str, str], ResultRecord] = {}
    sources: dict[tuple[str, str], Path] = {}
    baselines: list[str] = []
    notes: list[str] = []
    gates: list[dict] = []
    for path in paths:
        files, baseline, run_gates = _result_files(Path(path))
        gates += run_gates
        if baseline and baseline not in baselines:
            baselines.append(baseline)
        for file in files:
            result = read_result(file)
            key = (result.model.name, result.dataset.name)
            if key in by_key:
                older, newer = sorted([(by_key[key], sources[key]), (result, file)], key=lambda rf: rf[0].created_at)
                notes.append(f"{key[0]} on {key[1]}: {older[1]} is superseded by the newer {newer[1]}")
                result, file = newer
            by_key[key] = result
            sources[key] = file
    if not by_key:
        raise DataFormatError(paths[0], "no result files found (expected <run dir>/results/<model>/<dataset>.json)")
    return Collected([r.to_dict() for r in by_key.values()], sources, baselines, notes, gates)


def _result_files(path: Path) -> tuple[list[Path], str | None, list[dict]]:
    """A run's result files, its suite's baseline and its judged expected scores (those of pairs it ran)."""
    if path.is_file():
        return [path], None, []
    if not path.is_dir():
        raise DataFormatError(path, "no such run directory or result file")
    run_json = path / "run.json"
    if run_json.is_file():
        run = read_run(run_json)
        return [path / rel for rel in run.results], run.baseline, [g for g in run.gates if g["status"] != "not run"]
    if (path / "results").is_dir():  # a run that stopped before writing run.json
        return sorted((path / "results").glob("*/*.json")), None, []
    raise DataFormatError(path, "not a run directory: expected run.json or results/ inside it")
