"""LLaRA's claim in miniature: does EBAE/EBAR adaptation make a small LLaMA a better retriever, zero-shot
and after fine-tuning?

On one BEIR-layout folder with a train and a test split (``../shared/data/scifact``), with a real tokenizer
(LLaMA-2's), every stage through this project's own code:

1. **base**: a small ``LlamaForCausalLM``, randomly initialised and pretrained with the next-token loss on
   the collection's corpus (a stand-in for LLaMA-2's pretraining, which no CPU can repeat);
2. **llara**: the base adapted with EBAE + EBAR (`adaptation.stages.adapt`, the released code's mode by
   default) on chunk pairs of the same corpus;
3. **base+ft** and **llara+ft**: each fine-tuned with InfoNCE on the train split's qrels, with BM25 hard
   negatives mined by the harness (`adaptation.stages.finetune`, identical settings);
4. all four evaluated on the test split by the harness (`harness.runner.run_suite`) under LLaRA's encoding
   contract; the command (`adaptation.cli.miniature`) then compares llara+ft with base+ft query by query
   (the report's paired randomization test) and writes the table and the HTML report.

Every stage writes its folder under the output directory and is skipped when that folder is complete, so
an interrupted reproduction picks up where it stopped (and a stage in progress resumes from its
checkpoint when ``save_every`` is set).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from llara_bench.adaptation.corpus import dataset_docs
from llara_bench.adaptation.finetune import ContrastiveSettings, mine_groups
from llara_bench.adaptation.stages import adapt, finetune, read_manifest, save_stage, workdir_for
from llara_bench.adaptation.train import TrainSettings, train
from llara_bench.harness.results import write_json
from llara_bench.models.errors import ConfigError

ROWS = ("base", "base+ft", "llara", "llara+ft")
BASELINE, CANDIDATE = "base+ft", "llara+ft"
Log = Callable[[str, int, dict], None]  # (stage, step, logged row)


@dataclass(frozen=True)
class ModelShape:
    hidden: int = 128
    layers: int = 4
    heads: int = 2
    intermediate: int = 344
    max_positions: int = 512

    def config(self, tokenizer) -> dict[str, Any]:
        return dict(vocab_size=len(tokenizer), hidden_size=self.hidden, intermediate_size=self.intermediate,
                    num_hidden_layers=self.layers, num_attention_heads=self.heads,
                    num_key_value_heads=self.heads, max_position_embeddings=self.max_positions,
                    tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id)


@dataclass(frozen=True)
class MiniatureSettings:
    shape: ModelShape = ModelShape()
    pretrain: TrainSettings = TrainSettings(steps=200, batch_size=32, lr=1e-3, warmup_ratio=0.05)
    pretrain_tokens: int = 128  # tokens per pretraining sequence (documents packed, EOS between)
    adapt: TrainSettings = TrainSettings(steps=200, batch_size=32, lr=5e-4, warmup_ratio=0.05)
    mode: str = "released"
    next_token_weight: float | None = None  # None: the mode's (released 1, paper 0)
    chunk_words: int = 64
    max_text_tokens: int = 96
    finetune: TrainSettings = TrainSettings(steps=100, batch_size=8, lr=1e-4, warmup_ratio=0.1)
    contrastive: ContrastiveSettings = ContrastiveSettings()
    mine_depth: int = 100
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Reproduction:
    output: Path
    rows: list[dict] = field(default_factory=list)  # {name, path, nDCG@10, R@100, train_seconds}
    results: dict[str, dict] = field(default_factory=dict)  # the harness's result record of each row
    run_dir: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per stage (0 when reused)


def build_base(tokenizer_path: str, shape: ModelShape, seed: int):
    """A randomly initialised LLaMA of ``shape`` over the given tokenizer's vocabulary."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**shape.config(tok))), tok


def pack(tokenizer, texts: list[str], length: int):
    """The texts tokenised, joined with EOS and cut into rows of ``length`` tokens (the last partial row
    dropped), as causal LM pretraining packs its data."""
    import torch

    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += ids + [tokenizer.eos_token_id]
    rows = len(stream) // length
    if rows < 1:
        raise ConfigError(f"the corpus has {len(stream)} tokens, fewer than one sequence of {length}")
    return torch.tensor(stream[:rows * length]).view(rows, length)


def pretrain(tokenizer_path: str, docs: list[tuple[str, str]], output: Path, settings: MiniatureSettings,
             on_log: Callable[[int, dict], None] | None = None) -> dict:
    """The base: a random LLaMA trained with the next-token loss on the documents, saved as an encoder
    folder (LLaRA's contract, its special tokens added at load time)."""
    model, tok = build_base(tokenizer_path, settings.shape, settings.seed)
    rows = pack(tok, [text for _, text in docs], settings.pretrain_tokens)

    def loss_fn(m, batch):
        loss = m(input_ids=batch, labels=batch).loss
        return loss, {"next_token": float(loss.detach())}

    key = {"stage": "pretrain", "tokenizer": tokenizer_path, "shape": asdict(settings.shape),
           "tokens": settings.pretrain_tokens, "rows": int(rows.shape[0])}
    trained, result = train(model, rows.shape[0], lambda idx: rows[idx], loss_fn, settings.pretrain,
                            workdir_for(output), key_extra=key, on_log=on_log)
    manifest = {"stage": "pretrained", "base": f"random {type(model).__name__}", "tokenizer": tokenizer_path,
                "mode": settings.mode, "shape": asdict(settings.shape), "data": {"documents": len(docs),
                "sequences": int(rows.shape[0]), "tokens": int(rows.numel())},
                "settings": asdict(settings.pretrain), "history": result.history,
                "resumed_from_step": result.resumed_from, "train_seconds": result.seconds}
    save_stage(trained, tok, output, manifest)
    return manifest


def reproduce(dataset_folder: Path, tokenizer_path: str, output: Path,
              settings: MiniatureSettings = MiniatureSettings(), *, on_log: Log | None = None,
              on_stage: Callable[[str, str], None] | None = None) -> Reproduction:
    """All stages, then the evaluation; see the module's docstring."""
    from llara_bench.harness.datasets import load_dataset

    say = on_stage or (lambda stage, text: None)
    spec = f"folder:{dataset_folder}"
    dataset = load_dataset(spec)
    for split in ("train", "test"):
        if split not in dataset.splits:
            raise ConfigError(f"{dataset_folder}: the reproduction needs qrels/{split}.tsv (has "
                              f"{', '.join(sorted(dataset.splits)) or 'none'})")
    docs = dataset_docs(dataset)
    output.mkdir(parents=True, exist_ok=True)
    settings_file = output / "settings.json"
    wanted = {"dataset": str(dataset_folder), "fingerprint": dataset.fingerprint("test"),
              "tokenizer": tokenizer_path, "settings": settings.to_dict()}
    if settings_file.is_file() and json.loads(settings_file.read_text()) != json.loads(json.dumps(wanted)):
        raise ConfigError(f"{output} holds a reproduction with other settings or data ({settings_file}); "
                          "choose another --output or remove it")
    write_json(settings_file, wanted)
    rep = Reproduction(output)
    paths = {name: output / name.replace("+", "-") for name in ROWS}

    def stage(name: str, run: Callable[[Callable[[int, dict], None]], Any]) -> None:
        if read_manifest(paths[name]) is not None:
            say(name, f"reusing {paths[name]}")
            rep.seconds[name] = 0.0
            return
        say(name, "training")
        start = time.perf_counter()
        run(lambda step, row: on_log(name, step, row) if on_log else None)
        rep.seconds[name] = time.perf_counter() - start

    stage("base", lambda log: pretrain(tokenizer_path, docs, paths["base"], settings, log))
    stage("llara", lambda log: adapt(
        str(paths["base"]), docs, paths["llara"], settings.adapt, mode=settings.mode,
        next_token_weight=settings.next_token_weight, chunk_words=settings.chunk_words,
        max_text_tokens=settings.max_text_tokens, on_log=log))
    groups = None
    for base, tuned in (("base", "base+ft"), ("llara", "llara+ft")):
        if read_manifest(paths[tuned]) is None and groups is None:
            say("mine", f"BM25 hard negatives for the train split (top {settings.mine_depth})")
            groups = mine_groups(dataset, "train", "bm25", settings.mine_depth)
        source = {"spec": spec, "split": "train", "miner": "bm25", "mine_depth": settings.mine_depth,
                  "fingerprint": dataset.fingerprint("train")}
        stage(tuned, lambda log, b=base, t=tuned: finetune(str(paths[b]), groups, paths[t], settings.finetune,
                                                            settings.contrastive, data=source, on_log=log))
    say("evaluate", f"{', '.join(ROWS)} on the test split")
    start = time.perf_counter()
    rep.run_dir, rep.results = evaluate(spec, paths, output / "runs")
    rep.seconds["evaluate"] = time.perf_counter() - start
    rep.rows = [{"name": name, "path": str(paths[name]), **rep.results[name]["metrics"],
                 "train_seconds": (read_manifest(paths[name]) or {}).get("train_seconds")} for name in ROWS]
    return rep


def evaluate(spec: str, paths: dict[str, Path], runs: Path) -> tuple[Path, dict[str, dict]]:
    """The four encoders on the test split, through the harness, named by their row."""
    from llara_bench.harness.runner import RunConfig, run_suite
    from llara_bench.harness.suites import DatasetEntry, Suite
    from llara_bench.models import REGISTRY
    from llara_bench.models.registry import adapted_entry

    for name, path in paths.items():
        REGISTRY.add_entry(adapted_entry(path, name=name), replace_existing=True)
    suite = Suite(name="llara-miniature", description="LLaRA in miniature: base and LLaRA, zero-shot and "
                  "fine-tuned", path="", models=list(ROWS), measures=["nDCG@10", "R@100"], main_metric="nDCG@10",
                  split="test", top_k=100, baseline=BASELINE,
                  datasets=[DatasetEntry(spec=spec, name=Path(spec.removeprefix("folder:")).name, split="test",
                                         top_k=100)])
    run = run_suite(RunConfig(suite=suite, output=runs))
    return run.run_dir, {r["model"]["name"]: r for r in run.results}
