"""The study command (adaptation/study.py) at a tiny scale: every row, the corrected comparisons, the outputs,
reuse on a rerun, refusal of changed settings, a control trained on exactly llara's batches, and the global
registry left as it was."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llara_bench.adaptation import stages
from llara_bench.adaptation.study import ZERO_SHOT, resolve_base
from llara_bench.harness.cli import app
from llara_bench.harness.results import result_paths
from llara_bench.models import REGISTRY
from llara_bench.models.errors import ConfigError
from llara_bench.reports.stats import holm


def _base() -> Path:
    """stories260K (a real pretrained LLaMA) when the shared models are there, else the built tiny-llama."""
    shared = os.environ.get("LLARA_BENCH_SHARED_MODELS")
    if shared and (Path(shared) / "stories260K-hf" / "config.json").is_file():
        return Path(shared) / "stories260K-hf"
    from llara_bench.models.tiny_llama import tiny_llama_path

    return tiny_llama_path()


def _other_collection(folder: Path) -> None:
    """A second collection from the smoke data, with another corpus (the judged documents and every third
    other one) and a train split (the first 15 queries) beside its test split."""
    src = resources.files("llara_bench.harness") / "data" / "smoke"
    header, *lines = (src / "qrels" / "test.tsv").read_text().splitlines()
    judged = {line.split("\t")[1] for line in lines}
    docs = [line for line in (src / "corpus.jsonl").read_text().splitlines() if line.strip()]
    kept = [d for i, d in enumerate(docs) if json.loads(d)["_id"] in judged or i % 3 == 0]
    assert len(kept) < len(docs)
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(kept) + "\n")
    (folder / "queries.jsonl").write_text((src / "queries.jsonl").read_text())
    train_ids = sorted({line.split("\t")[0] for line in lines})[:15]
    for split, keep in (("train", lambda q: q in train_ids), ("test", lambda q: q not in train_ids)):
        (folder / "qrels" / f"{split}.tsv").write_text(
            "\n".join([header] + [line for line in lines if keep(line.split("\t")[0])]) + "\n")


@pytest.mark.slow
def test_the_study_runs_every_row_compares_llara_with_raw_and_control_and_reuses_its_stages(tmp_path, monkeypatch):
    other = tmp_path / "other"
    _other_collection(other)
    out = tmp_path / "study"
    args = ["study", "--base", str(_base()), "--adapt-on", "embedded:smoke", "--evaluate", "embedded:smoke",
            "--evaluate", f"folder:{other}", "--finetune-on", f"folder:{other}", "-o", str(out), "--steps", "3",
            "--batch-size", "2", "--chunk-words", "16", "--max-text-tokens", "24", "--passage-max-length", "48",
            "--finetune-steps", "2", "--save-every", "0"]
    seen: dict[str, list] = {"released": [], "next-token": []}  # every training batch, by pretext mode
    losses: dict[str, list] = {"released": [], "next-token": []}
    real_loss = stages.pretext_loss

    def spy(model, batch, mode):
        if model.training:  # (not the collapse probe, which runs in eval mode)
            seen[mode.name].append((batch.input_ids.clone(), batch.position_ids.clone(), batch.ebae_targets))
        loss, logs = real_loss(model, batch, mode)
        losses[mode.name].append(logs)
        return loss, logs

    monkeypatch.setattr(stages, "pretext_loss", spy)
    names_before = REGISTRY.names()
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert REGISTRY.names() == names_before and "llara" not in REGISTRY  # the rows were registered for the run only
    for stage in ("llara", "control"):  # each stage's last logged step, with its progress and losses
        assert re.search(rf"^{stage}: 3/3 \(100%\), [\d.]+ steps/s, in \d+:\d\d  loss ", result.output, re.M)

    # control and llara trained on identical batches; only the loss differed
    assert len(seen["released"]) == 3 and len(seen["next-token"]) == 3
    for (ids_a, pos_a, targets_a), (ids_b, pos_b, targets_b) in zip(seen["released"], seen["next-token"]):
        assert ids_a.equal(ids_b) and pos_a.equal(pos_b) and targets_a == targets_b
    assert all(logs["loss"] == pytest.approx(logs["next_token"]) for logs in losses["next-token"])
    assert all(logs["loss"] > logs["next_token"] for logs in losses["released"])
    manifests = {name: json.loads((out / name / "llara-bench.json").read_text()) for name in ("llara", "control")}
    assert manifests["llara"]["mode"] == "released" and manifests["control"]["mode"] == "next-token"
    assert manifests["control"]["pretext"]["bow_weight"] == 0.0 and manifests["llara"]["pretext"]["bow_weight"] == 1.0
    for key in ("base", "data", "settings", "chunk_words", "max_text_tokens"):
        assert manifests["llara"][key] == manifests["control"][key], key

    summary = json.loads((out / "reproduction.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert list(rows) == [*ZERO_SHOT, "raw+ft", "llara+ft"]
    assert {d["name"]: d["seen_in_adaptation"] for d in summary["datasets"]} == {"smoke": True, "other": False}
    for row in rows.values():
        assert all(0.0 <= row[d][m] <= 1.0 for d in ("smoke", "other") for m in ("nDCG@10", "R@100"))
    assert rows["raw"]["adapted_on"] == "" and rows["control"]["adapted_on"] == rows["llara"]["adapted_on"] != ""
    pairs = [(c["candidate"], c["baseline"], c["dataset"]) for c in summary["comparisons"]]
    assert pairs == [("llara", "raw", "smoke"), ("llara", "raw", "other"), ("llara", "control", "smoke"),
                     ("llara", "control", "other"), ("llara+ft", "raw+ft", "smoke"), ("llara+ft", "raw+ft", "other")]
    for c in summary["comparisons"]:
        assert 0.0 < c["p_randomization"] <= c["p_holm"] <= 1.0 and c["wins"] + c["ties"] + c["losses"] == c["queries"]
    assert [c["p_holm"] for c in summary["comparisons"]] == \
        pytest.approx(list(holm([c["p_randomization"] for c in summary["comparisons"]])))  # one family
    table = (out / "reproduction.md").read_text()
    assert "| control |" in table and "not seen in adaptation" in table and "Holm" in table
    assert (out / "report.html").is_file()
    (run_dir,) = (out / "runs").iterdir()
    raw = json.loads(result_paths(run_dir, "raw", "smoke")[0].read_text())
    assert raw["model"]["contract"]["passage_max_length"] == 48  # every row under the study's input lengths

    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})  # finished stages are reused
    assert again.exit_code == 0 and again.output.count("reusing") == 4, again.output
    other_run = CliRunner().invoke(app, [a if a != "3" else "4" for a in args])  # more steps: refused

    assert other_run.exit_code == 2 and "other settings" in other_run.output


def test_a_registry_base_needs_a_model_to_train_and_an_eos_row():
    with pytest.raises(ConfigError, match="names no model folder"):
        resolve_base("tiny-llama")  # built at load time: no folder in its entry
    with pytest.raises(ConfigError, match="expected a Hugging Face causal LM folder"):
        resolve_base(str(Path(__file__).parent))


def test_scoped_entries_replace_for_the_block_only():
    from dataclasses import replace

    original = REGISTRY.get("bm25")
    names = REGISTRY.names()
    stand_in = replace(REGISTRY.get("minilm"), name="bm25")
    with REGISTRY.scoped([stand_in, replace(original, name="study-row")]):
        assert REGISTRY.get("bm25") is stand_in and "study-row" in REGISTRY
    assert REGISTRY.get("bm25") is original and REGISTRY.names() == names


def test_a_control_without_any_loss_is_refused_before_training(tmp_path):
    from llara_bench.adaptation.train import TrainSettings

    with pytest.raises(ConfigError, match="no loss to train"):
        stages.adapt(str(_base()), [("d", "text " * 40)], tmp_path / "out", TrainSettings(steps=1),
                     mode="next-token", next_token_weight=0.0)
    assert not (tmp_path / "out").exists()
