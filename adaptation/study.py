"""The study: LLaRA's adaptation on a real pretrained LLaMA, against its raw baselines and a control.

Rows, every one evaluated zero-shot by the harness under the same conditions (the same collections, splits
and input lengths):

- **raw**: the base model under LLaRA's contract (its ``<s1>``..``<s16>`` added with the mean embedding);
- **raw-eos**: the base model under RepLLaMA's contract (the EOS state);
- **llara**: the base adapted with EBAE + EBAR (``adaptation.stages.adapt``, the released code's mode: the
  bag-of-words losses plus the next-token loss) on chunk pairs of one corpus;
- **control**: the base trained exactly as llara was (the same chunk pairs, tokens, batches, steps, seed and
  learning rate) with the next-token loss alone (pretext mode ``next-token``), so that what the pretext
  tasks add can be told apart from what more training on this text adds;
- optionally **raw+ft** and **llara+ft**: raw and llara fine-tuned with the same InfoNCE settings on a train
  split (``adaptation.experiment.finetune_rows``).

llara is compared with raw and with control query by query on every collection (paired randomization test,
Holm's correction over all the study's comparisons), and so is llara+ft with raw+ft. Each collection is
marked as seen in adaptation or not (its corpus fingerprint against the adaptation corpus's): the paper's
claim is transfer to collections the adaptation never saw.

Every stage writes its folder under the output directory and is reused when complete; a stage in progress
resumes from its last checkpoint (``save_every``), and the evaluation from the embedding cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from llara_bench.adaptation.corpus import dataset_docs
from llara_bench.adaptation.experiment import Log, Say, Stages, claim_output, corrected, evaluate, finetune_rows, \
    named_entry, paired
from llara_bench.adaptation.finetune import ContrastiveSettings
from llara_bench.adaptation.stages import adapt
from llara_bench.adaptation.train import TrainSettings
from llara_bench.models.errors import ConfigError

ZERO_SHOT = ("raw", "raw-eos", "llara", "control")
FINE_TUNED = ("raw+ft", "llara+ft")
BASELINE = "raw"
COMPARISONS = (("llara", "raw"), ("llara", "control"), ("llara+ft", "raw+ft"))
DESCRIPTIONS = {
    "raw": "the base model, LLaRA's contract",
    "raw-eos": "the base model, RepLLaMA's contract (EOS state)",
    "llara": "base + EBAE/EBAR (released mode, with the next-token loss)",
    "control": "base + the next-token loss alone, the same batches as llara",
    "raw+ft": "raw fine-tuned (InfoNCE)",
    "llara+ft": "llara fine-tuned (InfoNCE, the same settings)",
}


# registry-entry arguments that training from ``model`` (+ ``tokenizer``) honours; any other (an adapter, a
# revision) would make llara and control start from other weights than the raw rows. A GGUF file (``model``
# ending in .gguf, or the SmolLM2 entries' packaged file) is trained from its dequantised folder, the same
# weights its raw rows load (adaptation.stages.base_folder, models.loading.resolve_model).
TRAINABLE_KWARGS = {"model", "tokenizer", "dtype", "batch_size"}


@dataclass(frozen=True)
class StudySettings:
    """Defaults sized for SmolLM2-135M on 2 CPU cores within 90 minutes (see the README's study section)."""

    adapt: TrainSettings = TrainSettings(steps=120, batch_size=8, lr=5e-5, warmup_ratio=0.1, save_every=20)
    chunk_words: int = 48  # words per chunk; with max_text_tokens, what one training row costs
    max_text_tokens: int = 64
    query_max_length: int = 64  # model-input tokens at evaluation, every row alike
    passage_max_length: int = 96
    dtype: str = "float32"  # of every row at evaluation (e.g. bfloat16 on a GPU)
    top_k: int = 100
    finetune: TrainSettings | None = None  # the fine-tuned rows, when set
    contrastive: ContrastiveSettings = ContrastiveSettings()
    mine_depth: int = 100

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BaseModel:
    """The model the study starts from: the causal LM to train, and its two raw encoder entries."""

    given: str  # a registry name or a folder, as given
    source: str  # the folder or Hub id llara and control are trained from
    tokenizer: str | None
    raw: Any  # ModelEntry under LLaRA's contract
    raw_eos: Any  # ModelEntry under RepLLaMA's contract


def resolve_base(base: str, base_eos: str | None = None) -> BaseModel:
    """A registry name (its ``-eos`` sibling, or ``base_eos``, as the raw-eos row) or the path of a Hugging Face
    causal LM folder (both contracts applied to it)."""
    from llara_bench.models import REGISTRY
    from llara_bench.models.catalog import decoder_entry
    from llara_bench.models.contracts import LLARA, REPLLAMA

    path = Path(base).expanduser()
    if base not in REGISTRY and path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"--base {base}: expected a Hugging Face causal LM folder (with config.json) or a "
                              "registry name (llara-bench models)")
        raw, raw_eos = (decoder_entry(name, str(path), replace(contract, dtype="float32"), origin="path",
                                      description=f"{path} under {label}'s contract")
                        for name, contract, label in (("raw", LLARA, "LLaRA"), ("raw-eos", REPLLAMA, "RepLLaMA")))
        return BaseModel(base, str(path), None, raw, raw_eos)
    entry = REGISTRY.get(base)
    source = entry.weights()
    if source is None:
        raise ConfigError(f"--base {base}: its registry entry names no model folder or Hub id to train from "
                          f"(target {entry.target}); give the model's folder as --base instead")
    other = sorted(set(entry.kwargs) - TRAINABLE_KWARGS)
    if other:
        raise ConfigError(f"--base {base}: its registry entry loads with {', '.join(other)}, which training from "
                          "the model folder or Hub id alone would not reproduce; give a Hugging Face folder of the "
                          "same weights as --base instead")
    eos_name = base_eos or f"{base}-eos"
    if eos_name not in REGISTRY:
        raise ConfigError(f"--base {base}: no registry entry {eos_name!r} for the raw-eos row; give one with "
                          "--base-eos NAME")
    return BaseModel(base, source, entry.kwargs.get("tokenizer"), entry, REGISTRY.get(eos_name))


@dataclass
class Study:
    output: Path
    rows: list[dict] = field(default_factory=list)  # {name, description, adapted_on, train_seconds, <dataset>: metrics}
    datasets: list[dict] = field(default_factory=list)  # {name, spec, queries, seen_in_adaptation}
    comparisons: list[dict] = field(default_factory=list)
    run_dir: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"rows": self.rows, "datasets": self.datasets, "comparisons": self.comparisons,
                "run_dir": str(self.run_dir), "seconds": self.seconds}


def run_study(base: BaseModel, adapt_on: str, evaluate_on: list[str], output: Path,
              settings: StudySettings = StudySettings(), *, finetune_on: str | None = None,
              data_root: Path | None = None, on_log: Log | None = None, on_stage: Say | None = None) -> Study:
    """Adapt (llara) and train the control on ``adapt_on``'s corpus, fine-tune when asked, evaluate every row
    on the test split of each ``evaluate_on`` collection, and compare; see the module's docstring."""
    from llara_bench.harness.datasets import load_dataset
    from llara_bench.models.registry import adapted_entry

    if not evaluate_on:
        raise ConfigError("the study needs at least one collection to evaluate on (--evaluate SPEC)")
    if (settings.finetune is None) != (finetune_on is None):
        raise ConfigError("the fine-tuned rows need both fine-tuning settings and a collection with a train split")
    corpus = load_dataset(adapt_on, data_root)
    evaluated = [load_dataset(spec, data_root) for spec in evaluate_on]
    for spec, dataset in zip(evaluate_on, evaluated):
        if "test" not in dataset.splits:
            raise ConfigError(f"--evaluate {spec}: the study evaluates test splits; it has "
                              f"{', '.join(sorted(dataset.splits)) or 'none'}")
    if len({d.name for d in evaluated}) < len(evaluated):
        raise ConfigError(f"--evaluate {' '.join(evaluate_on)}: two collections share a name "
                          f"({', '.join(d.name for d in evaluated)}); the table needs one column per name")
    tuning = load_dataset(finetune_on, data_root) if finetune_on else None
    if tuning is not None and "train" not in tuning.splits:
        raise ConfigError(f"--finetune-on {finetune_on}: expected qrels/train.tsv (has "
                          f"{', '.join(sorted(tuning.splits)) or 'none'})")
    claim_output(output, {"base": base.given, "source": base.source, "adapt_on": [adapt_on,
                          corpus.corpus_fingerprint()], "evaluate_on": [[s, d.fingerprint("test")] for s, d in
                                                                        zip(evaluate_on, evaluated)],
                          "finetune_on": [finetune_on, tuning.fingerprint("train")] if tuning else None,
                          "settings": settings.to_dict()})
    names = ZERO_SHOT + (FINE_TUNED if tuning else ())
    paths = {name: output / name.replace("+", "-") for name in names if name not in ("raw", "raw-eos")}
    stages = Stages({**paths, "raw": Path(base.source)}, on_log, on_stage)
    docs = dataset_docs(corpus)
    for name, mode in (("llara", "released"), ("control", "next-token")):
        stages.run(name, lambda log, n=name, m=mode: adapt(
            base.source, docs, paths[n], settings.adapt, tokenizer=base.tokenizer, mode=m,
            chunk_words=settings.chunk_words, max_text_tokens=settings.max_text_tokens, corpus={"spec": adapt_on},
            on_log=log))
    if tuning is not None:
        finetune_rows(stages, tuning, finetune_on, [("raw", "raw+ft"), ("llara", "llara+ft")], settings.finetune,
                      settings.contrastive, settings.mine_depth)

    caps = {"query_max_length": settings.query_max_length, "passage_max_length": settings.passage_max_length,
            "dtype": settings.dtype}
    entries = [replace(e, kwargs={**e.kwargs, "dtype": settings.dtype}) for e in (
        named_entry(base.raw, "raw", **caps), named_entry(base.raw_eos, "raw-eos", **caps),
        *(named_entry(adapted_entry(paths[name]), name, **caps) for name in names[2:]))]
    stages.say("evaluate", f"{', '.join(names)} on {', '.join(d.name for d in evaluated)} (test)")
    run = stages.timed("evaluate", lambda: evaluate(
        "llara-study", f"LLaRA on {base.given}: raw, adapted and control", entries,
        dataset_entries(evaluate_on, evaluated, settings.top_k), BASELINE, output / "runs", top_k=settings.top_k,
        data_root=data_root))
    return _summarise(Study(output, run_dir=run.run_dir, seconds=stages.seconds), run.results, names, evaluated,
                      evaluate_on, corpus, stages, finetune_on)


def dataset_entries(specs: list[str], datasets: list, top_k: int) -> list:
    """The harness's entries for the evaluated collections, with the built-in conventions of their names
    (e.g. Cranfield's relevance codes, as the beir-local suite maps them)."""
    from llara_bench.harness.suites import DatasetEntry, load_suite

    conventions = load_suite("beir-local").conventions
    return [DatasetEntry(spec=spec, name=d.name, split="test", top_k=top_k,
                         relevance_map=conventions.get(d.name, {}).get("relevance_map"))
            for spec, d in zip(specs, datasets)]


def _summarise(study: Study, results: list[dict], names: tuple[str, ...], evaluated: list, specs: list[str],
               corpus, stages: Stages, finetune_on: str | None) -> Study:
    by = {(r["model"]["name"], r["dataset"]["name"]): r for r in results}
    seen = corpus.corpus_fingerprint()
    study.datasets = [{"name": d.name, "spec": s, "queries": by[("raw", d.name)]["dataset"]["n_queries"],
                       "seen_in_adaptation": d.corpus_fingerprint() == seen} for d, s in zip(evaluated, specs)]
    adapted_on = f"{corpus.name} corpus ({len(corpus.corpus):,} docs)"
    saw = {"raw": "", "raw-eos": "", "llara": adapted_on, "control": adapted_on,
           "raw+ft": f"{finetune_on} train", "llara+ft": f"{adapted_on}; {finetune_on} train"}
    study.rows = [{"name": name, "description": DESCRIPTIONS[name], "adapted_on": saw[name],
                   "train_seconds": stages.train_seconds(name) if name not in ("raw", "raw-eos") else None,
                   **{d.name: by[(name, d.name)]["metrics"] for d in evaluated}} for name in names]
    study.comparisons = corrected([{**paired(by[(cand, d.name)], by[(base, d.name)]), "dataset": d.name}
                                   for cand, base in COMPARISONS if cand in names for d in evaluated])
    return study


def study_markdown(study: Study, metrics: tuple[str, ...] = ("nDCG@10", "R@100")) -> str:
    from llara_bench.adaptation.experiment import comparison_line

    heads = [f"{d['name']} {m}" for d in study.datasets for m in metrics]
    lines = ["| model | what | trained on | " + " | ".join(heads) + " | training s |",
             "|---" * (len(heads) + 4) + "|"]
    for r in study.rows:
        seconds = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else ""
        scores = " | ".join(f"{r[d['name']][m]:.4f}" for d in study.datasets for m in metrics)
        lines.append(f"| {r['name']} | {r['description']} | {r['adapted_on'] or '-'} | {scores} | {seconds} |")
    lines.append("")
    lines += [f"- {d['name']} ({d['queries']} test queries): "
              f"{'its corpus was the adaptation corpus' if d['seen_in_adaptation'] else 'not seen in adaptation'}"
              for d in study.datasets]
    lines += ["", "Paired comparisons (Holm's correction over all of them):", ""]
    lines += [f"- {c['dataset']}: {comparison_line(c)}" for c in study.comparisons]
    return "\n".join(lines) + "\n"

