"""`llara-bench adapt`, `finetune`, `miniature` and `study` (registered on the main typer app in harness.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import TextColumn

from llara_bench.harness import failures, verbosity
from llara_bench.harness.progress import LogLines, Tracker
from llara_bench.models.errors import LlaraBenchError

console = Console(stderr=True)
LOSS_KEYS = ("loss", "ebae", "ebar", "next_token", "accuracy", "probe_mean_cos", "probe_pair_margin")


def _settings(steps, batch_size, grad_accum, lr, warmup_ratio, seed, lora, lora_r, lora_alpha, lora_dropout,
              gradient_checkpointing, save_every, log_every):
    from llara_bench.adaptation.train import LoraSettings, TrainSettings

    return TrainSettings(steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_ratio=warmup_ratio,
                         seed=seed, lora=LoraSettings(lora_r, lora_alpha, lora_dropout) if lora else None,
                         gradient_checkpointing=gradient_checkpointing, save_every=save_every, log_every=log_every)


def _losses(row: dict) -> str:
    return "  ".join(f"{k} {row[k]:.4g}" for k in LOSS_KEYS if k in row)


def _train_with_progress(steps: int, description: str, work):
    """Run ``work(on_log)`` with its progress shown (a bar with the latest losses on a terminal, a log line
    at most every 10 s otherwise: step, losses, rate, ETA)."""
    with Tracker(console, (TextColumn("{task.fields[figures]}"),)) as tracker:
        update = tracker.step(description, steps, "steps")
        return work(lambda step, row: update(step, _losses(row)))


_fail = failures.fail


COMMON = dict(
    steps=typer.Option(200, min=1, help="Optimizer steps."),
    batch_size=typer.Option(16, min=1, help="Items per micro-batch (per process)."),
    grad_accum=typer.Option(1, min=1, help="Micro-batches per optimizer step."),
    warmup_ratio=typer.Option(0.1, min=0.0, max=1.0, help="Share of the steps spent warming the learning rate up."),
    seed=typer.Option(0, help="Seed of the data order, sampling and initialisation."),
    lora_r=typer.Option(64, min=1), lora_alpha=typer.Option(16, min=1), lora_dropout=typer.Option(0.1, min=0.0),
    gradient_checkpointing=typer.Option(False, "--gradient-checkpointing", help="Recompute activations in "
                                        "the backward pass (less memory, more time)."),
    save_every=typer.Option(0, min=0, help="Steps between resumable checkpoints (0: at the end only)."),
    log_every=typer.Option(10, min=1, help="Steps between logged losses."),
)


def adapt(
    base: str = typer.Argument(..., help="Causal LM to adapt: a folder or Hub id (e.g. meta-llama/Llama-2-7b-hf)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the adapted encoder (new, or empty)."),
    data: Optional[str] = typer.Option(None, "--data", help="Corpus: a dataset spec the harness loads "
                                       "(folder:PATH, beir:NAME, embedded:smoke, irds:ID)."),
    text: Optional[list[Path]] = typer.Option(None, "--text", help="Plain-text files (one document each) or "
                                              ".jsonl files with 'text' (repeatable), instead of --data."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", envvar="LLARA_BENCH_DATA_ROOT"),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer folder or id, when not beside the model."),
    mode: str = typer.Option("released", help="Pretext mode: released (8 tokens per head, max-pooled logits, "
                             "next-token loss), paper (one embedding token, bag-of-words losses only) or next-token "
                             "(released inputs, the next-token loss alone: a control)."),
    next_token_weight: Optional[float] = typer.Option(None, min=0.0, help="Weight of the next-token loss "
                                                      "(default: the mode's, 1 or 0)."),
    chunk_words: int = typer.Option(128, min=8, help="Words per chunk (chunks end at sentence boundaries)."),
    short_docs: str = typer.Option("halve", help="Single-chunk documents: halve (split in two) or drop."),
    max_text_tokens: int = typer.Option(128, min=1, help="Text tokens per chunk in the pretext input."),
    lr: float = typer.Option(1e-5, help="Peak learning rate (LLaRA: 1e-5 for LLaMA-2-7B)."),
    lora: bool = typer.Option(False, "--lora/--full", help="LoRA adapters (merged on save) or all parameters."),
    steps: int = COMMON["steps"], batch_size: int = COMMON["batch_size"], grad_accum: int = COMMON["grad_accum"],
    warmup_ratio: float = COMMON["warmup_ratio"], seed: int = COMMON["seed"], lora_r: int = COMMON["lora_r"],
    lora_alpha: int = COMMON["lora_alpha"], lora_dropout: float = COMMON["lora_dropout"],
    gradient_checkpointing: bool = COMMON["gradient_checkpointing"], save_every: int = COMMON["save_every"],
    log_every: int = COMMON["log_every"],
) -> None:
    """LLaRA adaptation: EBAE + EBAR pretraining of a causal LM on consecutive chunk pairs of a corpus.

    The output folder is an encoder: `llara-bench run -m OUTPUT`. Rerunning the same command after an
    interruption resumes from the last checkpoint (--save-every)."""
    from llara_bench.adaptation.corpus import dataset_docs, read_text_files
    from llara_bench.adaptation.stages import adapt as run_adapt
    from llara_bench.harness.datasets import load_dataset

    try:
        from llara_bench.harness.results import check_writable

        check_writable(output, "the output folder", "--output")  # before any model is loaded
        if (data is None) == (not text):
            raise LlaraBenchError("give the corpus as --data SPEC or as --text FILE (one of them)")
        docs = read_text_files(text) if text else dataset_docs(load_dataset(data, data_root))
        settings = _settings(steps, batch_size, grad_accum, lr, warmup_ratio, seed, lora, lora_r, lora_alpha,
                             lora_dropout, gradient_checkpointing, save_every, log_every)
        manifest = _train_with_progress(steps, "adapt", lambda on_log: run_adapt(
            base, docs, output, settings, tokenizer=tokenizer, mode=mode, chunk_words=chunk_words,
            short_docs=short_docs, max_text_tokens=max_text_tokens, next_token_weight=next_token_weight,
            corpus={"spec": data} if data else {"files": [str(t) for t in text]}, on_log=on_log))
    except LlaraBenchError as exc:
        _fail(exc)
    d = manifest["data"]
    console.print(f"{d['pairs']:,} chunk pairs from {d['documents']:,} documents ({d['halved']:,} halved, "
                  f"{d['dropped_short']:,} too short, left out); {manifest['train_seconds']:.0f} s")
    typer.echo(str(output))


def finetune(
    base: str = typer.Argument(..., help="Encoder folder to fine-tune (an adapt output, or a causal LM)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the fine-tuned encoder (new, or empty)."),
    data: Optional[str] = typer.Option(None, "--data", help="Dataset spec with a train split (e.g. "
                                       "folder:../shared/data/scifact)."),
    split: str = typer.Option("train", help="The split whose qrels are the training pairs."),
    tevatron: Optional[Path] = typer.Option(None, "--tevatron", help="Tevatron-style training JSONL instead of "
                                            "--data."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", envvar="LLARA_BENCH_DATA_ROOT"),
    miner: str = typer.Option("bm25", help="Registry encoder that mines hard negatives (with --data)."),
    mine_depth: int = typer.Option(100, min=1, help="Negatives come from the miner's top N, judged "
                                   "positives left out."),
    negatives: int = typer.Option(15, min=0, help="Hard negatives per query."),
    temperature: float = typer.Option(0.01, min=1e-6),
    query_max_length: int = typer.Option(64, min=8), passage_max_length: int = typer.Option(160, min=8),
    lr: float = typer.Option(3e-4, help="Peak learning rate (LLaRA's README example: 3e-4 with LoRA)."),
    lora: bool = typer.Option(True, "--lora/--full", help="LoRA adapters (LLaRA: r 64, alpha 16, dropout 0.1; "
                              "merged on save) or all parameters."),
    device: Optional[str] = typer.Option(None, help="Device of a dense miner."),
    steps: int = COMMON["steps"], batch_size: int = COMMON["batch_size"], grad_accum: int = COMMON["grad_accum"],
    warmup_ratio: float = COMMON["warmup_ratio"], seed: int = COMMON["seed"], lora_r: int = COMMON["lora_r"],
    lora_alpha: int = COMMON["lora_alpha"], lora_dropout: float = COMMON["lora_dropout"],
    gradient_checkpointing: bool = COMMON["gradient_checkpointing"], save_every: int = COMMON["save_every"],
    log_every: int = COMMON["log_every"],
) -> None:
    """Contrastive fine-tuning (InfoNCE, 1 positive + N hard negatives + in-batch negatives)."""
    from llara_bench.adaptation.finetune import ContrastiveSettings, mine_groups, read_tevatron_jsonl
    from llara_bench.adaptation.stages import finetune as run_finetune
    from llara_bench.harness.datasets import load_dataset

    try:
        from llara_bench.harness.results import check_writable

        check_writable(output, "the output folder", "--output")  # before any model is loaded
        if (data is None) == (tevatron is None):
            raise LlaraBenchError("give the training data as --data SPEC or as --tevatron FILE (one of them)")
        if tevatron:
            groups, source = read_tevatron_jsonl(tevatron), {"tevatron": str(tevatron)}
        else:
            dataset = load_dataset(data, data_root)
            groups = mine_groups(dataset, split, miner, mine_depth, device)
            source = {"spec": data, "split": split, "miner": miner, "mine_depth": mine_depth,
                      "fingerprint": dataset.fingerprint(split)}
        settings = _settings(steps, batch_size, grad_accum, lr, warmup_ratio, seed, lora, lora_r, lora_alpha,
                             lora_dropout, gradient_checkpointing, save_every, log_every)
        contrastive = ContrastiveSettings(negatives, temperature, query_max_length, passage_max_length)
        manifest = _train_with_progress(steps, "finetune", lambda on_log: run_finetune(
            base, groups, output, settings, contrastive, data=source, on_log=on_log))
    except LlaraBenchError as exc:
        _fail(exc)
    console.print(f"{manifest['data']['groups']:,} training queries; {manifest['train_seconds']:.0f} s")
    typer.echo(str(output))


def miniature(
    dataset: Optional[Path] = typer.Option(None, help="BEIR-layout folder with train and test qrels (default: "
                                           "$LLARA_BENCH_SHARED_DATA/scifact)."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer of the small LLaMA (default: "
                                            "$LLARA_BENCH_SHARED_MODELS/llama2-tokenizer-hf, LLaMA-2's)."),
    output: Path = typer.Option(Path("runs/llara-miniature"), "--output", "-o", help="Folder for the four "
                                "models, the runs, the table and the report; a rerun reuses finished stages."),
    hidden: int = typer.Option(128, min=8), layers: int = typer.Option(4, min=1),
    pretrain_steps: int = typer.Option(200, min=1, help="Next-token pretraining steps of the base."),
    adapt_steps: int = typer.Option(200, min=1, help="EBAE/EBAR adaptation steps."),
    adapt_lr: float = typer.Option(5e-4),
    mode: str = typer.Option("released", help="Pretext mode: released or paper."),
    next_token_weight: Optional[float] = typer.Option(None, min=0.0, help="Weight of the next-token loss "
                                                      "(default: the mode's, 1 or 0)."),
    chunk_words: int = typer.Option(64, min=8),
    finetune_steps: int = typer.Option(100, min=1, help="Contrastive fine-tuning steps (each model)."),
    finetune_lr: float = typer.Option(1e-4),
    seed: int = COMMON["seed"],
) -> None:
    """LLaRA in miniature: pretrain, adapt, fine-tune and evaluate a small LLaMA.

    Pretrain a small LLaMA (base), adapt it (llara), fine-tune both, evaluate all four on the test split, and
    test llara+ft against base+ft query by query."""
    from dataclasses import replace

    from llara_bench.adaptation.experiment import paired, write_outputs
    from llara_bench.adaptation.miniature import BASELINE, CANDIDATE, MiniatureSettings, ModelShape, reproduce

    given = {"dataset": dataset or _shared("dataset", "LLARA_BENCH_SHARED_DATA", "scifact"),
             "tokenizer": tokenizer or _shared("tokenizer", "LLARA_BENCH_SHARED_MODELS", "llama2-tokenizer-hf")}
    d = MiniatureSettings()
    shape = ModelShape(hidden=hidden, layers=layers, heads=max(1, hidden // 64), intermediate=hidden * 8 // 3 // 8 * 8)
    settings = replace(d, shape=shape, mode=mode, next_token_weight=next_token_weight, chunk_words=chunk_words,
                       seed=seed, pretrain=replace(d.pretrain, steps=pretrain_steps, seed=seed),
                       adapt=replace(d.adapt, steps=adapt_steps, lr=adapt_lr, seed=seed),
                       finetune=replace(d.finetune, steps=finetune_steps, lr=finetune_lr, seed=seed))
    try:
        from llara_bench.harness.results import check_writable

        check_writable(output, "the output folder", "--output")  # before any model is loaded
        shown = _StageProgress({"base": pretrain_steps, "llara": adapt_steps, "base+ft": finetune_steps,
                                "llara+ft": finetune_steps})
        rep = reproduce(Path(given["dataset"]), str(given["tokenizer"]), output, settings, on_log=shown.on_log,
                        on_stage=shown.on_stage)
        comparison = paired(rep.results[CANDIDATE], rep.results[BASELINE])
    except LlaraBenchError as exc:
        _fail(exc)
    table = miniature_markdown(rep.rows, comparison)
    report = write_outputs(output, {"rows": rep.rows, "comparison": comparison, "run_dir": str(rep.run_dir),
                                    "seconds": rep.seconds}, table, rep.run_dir, BASELINE)
    _print_end(table, rep.seconds, report)


def _shared(option: str, env: str, sub: str) -> Path:
    """The default of an option that names a shared asset: ``$env/sub``."""
    import os

    if not os.environ.get(env):
        _fail(LlaraBenchError(f"--{option}: not given, and {env} is not set"))
    return Path(os.environ[env]) / sub


class _StageProgress:
    """The miniature's and the study's stages: ``on_stage`` prints what a stage does (and starts its clock),
    ``on_log`` each logged step as a line with the stage's progress, rate and ETA, then its losses."""

    def __init__(self, totals: dict[str, int]):
        self.totals, self.lines = totals, {}

    def _start(self, stage: str) -> LogLines:
        self.lines[stage] = LogLines(console, stage, self.totals.get(stage, 0), "steps", every=0, brief=0)
        return self.lines[stage]

    def on_stage(self, stage: str, text: str) -> None:
        _print_stage(stage, text)
        self._start(stage)

    def on_log(self, stage: str, step: int, row: dict) -> None:
        if verbosity.level() != "quiet":
            (self.lines.get(stage) or self._start(stage)).update(step, _losses(row))


def _print_stage(stage: str, text: str) -> None:
    if verbosity.level() != "quiet":
        console.print(f"[bold]{stage}[/]: {escape(text)}")


def _print_end(table: str, seconds: dict[str, float], report: Path) -> None:
    console.print(table, highlight=False)
    console.print(f"stage seconds: {', '.join(f'{k} {v:.0f}' for k, v in seconds.items())}; report {report}")


def miniature_markdown(rows: list[dict], comparison: dict) -> str:
    from llara_bench.adaptation.experiment import comparison_line

    lines = ["| model | nDCG@10 | R@100 | training s |", "|---|---|---|---|"]
    for r in rows:
        seconds = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else ""
        lines.append(f"| {r['name']} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | {seconds} |")
    lines += ["", comparison_line(comparison)]
    return "\n".join(lines) + "\n"


def study(
    base: str = typer.Option("smollm2-135m", help="The model to study: a registry name (its NAME-eos entry is the "
                             "raw-eos row) or a Hugging Face causal LM folder."),
    base_eos: Optional[str] = typer.Option(None, help="Registry name of the raw-eos row (default: BASE-eos)."),
    adapt_on: Optional[str] = typer.Option(None, help="Dataset spec whose corpus llara and control train on "
                                           "(default: folder:$LLARA_BENCH_SHARED_DATA/cisi)."),
    evaluate_on: Optional[list[str]] = typer.Option(None, "--evaluate", help="Dataset spec evaluated on its test "
                                                    "split (repeatable; default: CISI and Cranfield from "
                                                    "$LLARA_BENCH_SHARED_DATA)."),
    finetune_on: Optional[str] = typer.Option(None, help="Dataset spec with a train split: adds the raw+ft and "
                                              "llara+ft rows (off by default: they cost more than a CPU budget)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", envvar="LLARA_BENCH_DATA_ROOT"),
    output: Path = typer.Option(Path("runs/llara-study"), "--output", "-o", help="Folder for the trained models, "
                                "the runs, the table and the report; a rerun reuses finished stages."),
    steps: int = typer.Option(120, min=1, help="Training steps of llara and of control (each)."),
    batch_size: int = typer.Option(8, min=1, help="Chunk pairs per micro-batch."),
    grad_accum: int = COMMON["grad_accum"],
    lr: float = typer.Option(5e-5, help="Peak learning rate of llara and control."),
    chunk_words: int = typer.Option(48, min=8, help="Words per chunk."),
    max_text_tokens: int = typer.Option(64, min=1, help="Text tokens per chunk in training."),
    query_max_length: int = typer.Option(64, min=8, help="Model-input tokens per query at evaluation (every row)."),
    passage_max_length: int = typer.Option(96, min=8, help="Model-input tokens per passage at evaluation."),
    dtype: str = typer.Option("float32", help="Every row's dtype at evaluation (e.g. bfloat16 on a GPU)."),
    finetune_steps: int = typer.Option(100, min=1), finetune_lr: float = typer.Option(1e-4),
    seed: int = COMMON["seed"], gradient_checkpointing: bool = COMMON["gradient_checkpointing"],
    save_every: int = typer.Option(20, min=0, help="Steps between resumable checkpoints."),
) -> None:
    """LLaRA on a real LLaMA, against the raw model and a next-token control.

    Raw (LLaRA's and RepLLaMA's contracts), llara (EBAE + EBAR) and a control trained on the same batches with
    the next-token loss alone, evaluated zero-shot, llara tested against raw and control query by query."""
    from dataclasses import replace

    from llara_bench.adaptation.experiment import FINETUNE, write_outputs
    from llara_bench.adaptation.study import BASELINE, StudySettings, resolve_base, run_study, study_markdown

    def shared_spec(name: str, option: str) -> str:
        return f"folder:{_shared(option, 'LLARA_BENCH_SHARED_DATA', name)}"

    adapt_on = adapt_on or shared_spec("cisi", "adapt-on")
    evaluate_on = evaluate_on or [shared_spec(name, "evaluate") for name in ("cisi", "cranfield")]
    d = StudySettings()
    settings = replace(d, adapt=replace(d.adapt, steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                                        seed=seed, save_every=save_every,
                                        gradient_checkpointing=gradient_checkpointing),
                       chunk_words=chunk_words, max_text_tokens=max_text_tokens, query_max_length=query_max_length,
                       passage_max_length=passage_max_length, dtype=dtype,
                       finetune=replace(FINETUNE, steps=finetune_steps, lr=finetune_lr, seed=seed)
                       if finetune_on else None)
    shown = _StageProgress({"llara": steps, "control": steps, "raw+ft": finetune_steps, "llara+ft": finetune_steps})
    try:
        from llara_bench.harness.results import check_writable

        check_writable(output, "the output folder", "--output")  # before any model is loaded
        result = run_study(resolve_base(base, base_eos), adapt_on, evaluate_on, output, settings,
                           finetune_on=finetune_on, data_root=data_root, on_log=shown.on_log,
                           on_stage=shown.on_stage)
    except LlaraBenchError as exc:
        _fail(exc)
    table = study_markdown(result)
    report = write_outputs(output, result.summary(), table, result.run_dir, BASELINE)
    _print_end(table, result.seconds, report)
