"""What the miniature and the study share: an output folder claimed by one set of settings, training stages
that are skipped once their folder is complete, the fine-tuned rows, the evaluation through the harness
(with the rows registered for that run only), and paired comparisons between rows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from llara_bench.adaptation.finetune import ContrastiveSettings, mine_groups
from llara_bench.adaptation.stages import finetune, read_manifest
from llara_bench.adaptation.train import TrainSettings
from llara_bench.harness.results import write_json
from llara_bench.models.errors import ConfigError

Log = Callable[[str, int, dict], None]  # (stage, step, logged row)
Say = Callable[[str, str], None]  # (stage, message)
FINETUNE = TrainSettings(steps=100, batch_size=8, lr=1e-4, warmup_ratio=0.1)  # the fine-tuned rows' default


def claim_output(output: Path, wanted: dict) -> None:
    """Record ``wanted`` (the data and settings) in ``output/settings.json``; refuse a folder that holds a
    run with other ones, so a rerun never mixes stages trained under different settings."""
    output.mkdir(parents=True, exist_ok=True)
    settings_file = output / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != json.loads(json.dumps(wanted)):
        raise ConfigError(f"{output} holds a run with other settings or data ({settings_file}); "
                          "choose another --output or remove it")
    write_json(settings_file, wanted)


@dataclass
class Stages:
    """Training stages, each writing one folder: a stage whose folder is complete (its manifest written) is
    reused, so an interrupted run picks up where it stopped."""

    paths: dict[str, Path]
    on_log: Log | None = None
    on_stage: Say | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per stage (0 when reused)

    def say(self, stage: str, text: str) -> None:
        if self.on_stage:
            self.on_stage(stage, text)

    def run(self, name: str, work: Callable[[Callable[[int, dict], None]], Any]) -> None:
        if read_manifest(self.paths[name]) is not None:
            self.say(name, f"reusing {self.paths[name]}")
            self.seconds[name] = 0.0
            return
        self.say(name, "training")
        self.timed(name, lambda: work(lambda step, row: self.on_log(name, step, row) if self.on_log else None))

    def timed(self, name: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = work()
        self.seconds[name] = time.perf_counter() - start
        return out

    def train_seconds(self, name: str) -> float | None:
        return (read_manifest(self.paths[name]) or {}).get("train_seconds")


def finetune_rows(stages: Stages, dataset, spec: str, pairs: list[tuple[str, str]], settings: TrainSettings,
                  contrastive: ContrastiveSettings, mine_depth: int, split: str = "train") -> None:
    """Each (base row, tuned row) fine-tuned with the same InfoNCE settings on ``split``'s qrels, BM25 hard
    negatives mined once (and only when some tuned row is missing)."""
    groups = None
    source = {"spec": spec, "split": split, "miner": "bm25", "mine_depth": mine_depth,
              "fingerprint": dataset.fingerprint(split)}
    for base, tuned in pairs:
        if read_manifest(stages.paths[tuned]) is None and groups is None:
            stages.say("mine", f"BM25 hard negatives for the {split} split (top {mine_depth})")
            groups = mine_groups(dataset, split, "bm25", mine_depth)
        stages.run(tuned, lambda log, b=base, t=tuned: finetune(str(stages.paths[b]), groups, stages.paths[t],
                                                                settings, contrastive, data=source, on_log=log))


def named_entry(entry, name: str, **contract_fields: Any):
    """``entry`` under the row's name, its contract with ``contract_fields`` changed (e.g. shorter inputs)."""
    meta = replace(entry.meta, name=name, contract=replace(entry.meta.contract, **contract_fields)
                   if contract_fields else entry.meta.contract)
    return replace(entry, name=name, meta=meta, aliases=())


def evaluate(name: str, description: str, entries: list, datasets: list, baseline: str, runs: Path,
             measures: tuple[str, ...] = ("nDCG@10", "R@100"), top_k: int = 100, data_root: Path | None = None):
    """Every entry on every dataset entry through the harness, results named by the entries' names. They are
    registered for this run only: the global registry is left as it was."""
    from llara_bench.harness.runner import RunConfig, run_suite
    from llara_bench.harness.suites import Suite
    from llara_bench.models import REGISTRY

    suite = Suite(name=name, description=description, path="", models=[e.name for e in entries],
                  measures=list(measures), main_metric=measures[0], split=datasets[0].split, top_k=top_k,
                  baseline=baseline, datasets=datasets)
    with REGISTRY.scoped(entries):
        return run_suite(RunConfig(suite=suite, output=runs, data_root=data_root))


def paired(candidate: dict, baseline: dict, metric: str = "nDCG@10") -> dict:
    """The candidate against the baseline on the same queries: mean difference, its 95% interval (paired t),
    and the two-sided p-values of a paired randomization test and of the paired t-test."""
    import numpy as np

    from llara_bench.reports.stats import compare

    queries = sorted(baseline["per_query"][metric])
    a, b = (np.array([r["per_query"][metric][q] for q in queries]) for r in (candidate, baseline))
    c, t = (compare([a], b, test=test)[0] for test in ("randomization", "t-test"))
    return {"metric": metric, "candidate": candidate["model"]["name"], "baseline": baseline["model"]["name"],
            "queries": c.n, "delta": c.delta, "ci_low": c.ci_low, "ci_high": c.ci_high,
            "p_randomization": c.p_value, "p_t_test": t.p_value, "wins": c.wins, "ties": c.ties, "losses": c.losses}


def corrected(comparisons: list[dict]) -> list[dict]:
    """The comparisons as one family: each gets its Holm-adjusted randomization p-value (``p_holm``)."""
    from llara_bench.reports.stats import holm

    adjusted = holm([c["p_randomization"] for c in comparisons]) if comparisons else []
    return [{**c, "p_holm": float(p)} for c, p in zip(comparisons, adjusted)]


def comparison_line(c: dict) -> str:
    holm = f", Holm-corrected p = {c['p_holm']:.4g}" if "p_holm" in c else ""
    return (f"{c['candidate']} vs {c['baseline']} on {c['queries']} queries ({c['metric']}): "
            f"Δ {c['delta']:+.4f} (95% CI {c['ci_low']:+.4f} to {c['ci_high']:+.4f}), "
            f"wins/ties/losses {c['wins']}/{c['ties']}/{c['losses']}, paired randomization test "
            f"p = {c['p_randomization']:.4g}{holm} (paired t-test p = {c['p_t_test']:.4g})")


def write_outputs(output: Path, summary: dict, table: str, run_dir: Path, baseline: str) -> Path:
    """``reproduction.json`` / ``.md`` and the HTML report of the evaluation run; returns the report's path."""
    from llara_bench.harness.results import write_atomic
    from llara_bench.reports import write_report
    from llara_bench.reports.model import Options

    write_json(output / "reproduction.json", summary)
    write_atomic(output / "reproduction.md", table.encode("utf-8"))
    return write_report([run_dir], output / "report.html", Options(baseline=baseline))[0]
