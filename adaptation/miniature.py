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

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from llara_bench.adaptation.corpus import dataset_docs
from llara_bench.adaptation.experiment import FINETUNE, Log, Stages, claim_output, evaluate, finetune_rows
from llara_bench.adaptation.finetune import ContrastiveSettings
from llara_bench.adaptation.stages import adapt, save_stage, workdir_for
from llara_bench.adaptation.train import TrainSettings, train
from llara_bench.models.errors import ConfigError

ROWS = ("base", "base+ft", "llara", "llara+ft")
BASELINE, CANDIDATE = "base+ft", "llara+ft"


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
    finetune: TrainSettings = FINETUNE
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
    from llara_bench.harness.suites import DatasetEntry
    from llara_bench.models.registry import adapted_entry

    spec = f"folder:{dataset_folder}"
    dataset = load_dataset(spec)
    for split in ("train", "test"):
        if split not in dataset.splits:
            raise ConfigError(f"{dataset_folder}: the reproduction needs qrels/{split}.tsv (has "
                              f"{', '.join(sorted(dataset.splits)) or 'none'})")
    docs = dataset_docs(dataset)
    claim_output(output, {"dataset": str(dataset_folder), "fingerprint": dataset.fingerprint("test"),
                          "tokenizer": tokenizer_path, "settings": settings.to_dict()})
    rep = Reproduction(output)
    paths = {name: output / name.replace("+", "-") for name in ROWS}
    stages = Stages(paths, on_log, on_stage)
    stages.run("base", lambda log: pretrain(tokenizer_path, docs, paths["base"], settings, log))
    stages.run("llara", lambda log: adapt(
        str(paths["base"]), docs, paths["llara"], settings.adapt, mode=settings.mode,
        next_token_weight=settings.next_token_weight, chunk_words=settings.chunk_words,
        max_text_tokens=settings.max_text_tokens, corpus={"spec": spec}, on_log=log))
    finetune_rows(stages, dataset, spec, [("base", "base+ft"), ("llara", "llara+ft")], settings.finetune,
                  settings.contrastive, settings.mine_depth)
    stages.say("evaluate", f"{', '.join(ROWS)} on the test split")
    run = stages.timed("evaluate", lambda: evaluate(
        "llara-miniature", "LLaRA in miniature: base and LLaRA, zero-shot and fine-tuned",
        [adapted_entry(paths[name], name=name) for name in ROWS],
        [DatasetEntry(spec=spec, name=dataset_folder.name, split="test", top_k=100)], BASELINE, output / "runs"))
    rep.run_dir, rep.results, rep.seconds = run.run_dir, {r["model"]["name"]: r for r in run.results}, stages.seconds
    rep.rows = [{"name": name, "path": str(paths[name]), **rep.results[name]["metrics"],
                 "train_seconds": stages.train_seconds(name)} for name in ROWS]
    return rep
