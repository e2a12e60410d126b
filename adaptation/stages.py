"""The two stages end to end: load a causal LM, train it, and save an encoder folder the registry loads by
path (``llara-bench run -m PATH``).

An output folder holds the model (safetensors), its tokenizer (with LLaRA's special tokens) and
``llara-bench.json``: the stage, the base it started from, the pretext mode and the encoding contract it is
to be used with, every setting, the data summary and the training log. It appears only when training has
finished (written to a scratch folder, then renamed); the resumable checkpoint lives beside it in
``.<name>.work/`` until then.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from llara_bench.adaptation.corpus import excluded_ids, make_pairs, target_ids
from llara_bench.adaptation.finetune import ContrastiveBatches, ContrastiveSettings, TrainGroup, contrastive_loss, \
    groups_summary
from llara_bench.adaptation.pretext import MODES, PretextInputs, embeddings, pretext_loss
from llara_bench.adaptation.train import TrainSettings, apply_lora, embedding_spread, train
from llara_bench.models.base import EncodingContract
from llara_bench.models.contracts import LLARA, fit_contract
from llara_bench.models.decoder import add_special_tokens
from llara_bench.models.errors import ConfigError
from llara_bench.models.files import move_into_place, scratch_beside
from llara_bench.models.registry import ADAPTED_MANIFEST

MANIFEST = ADAPTED_MANIFEST
PROBE_SIZE = 64


def base_folder(base: str) -> str:
    """The folder a base loads from: ``base`` itself, or for a GGUF file its dequantised copy (as encoders)."""
    from llara_bench.models.gguf import dequantised_folder, gguf_path

    path = gguf_path("base", base)
    return str(dequantised_folder("base", path)) if path else base


def load_causal_lm(model: str, tokenizer: str | None = None, dtype: str = "float32"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = base_folder(model)
    tok = AutoTokenizer.from_pretrained(tokenizer or model)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    return lm, tok


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def encoding_contract(mode: str, dtype: str = "float32") -> EncodingContract:
    """The contract a model adapted in ``mode`` is used with (LLaRA's, with the mode's suffixes)."""
    return replace(MODES[mode].contract(LLARA), dtype=dtype)


def adapt(base: str, docs: list[tuple[str, str]], output: Path, settings: TrainSettings, *,
          tokenizer: str | None = None, mode: str = "released", chunk_words: int = 128, short_docs: str = "halve",
          max_text_tokens: int = 128, next_token_weight: float | None = None, corpus: dict | None = None,
          on_log: Callable[[int, dict], None] | None = None) -> dict:
    """EBAE + EBAR pretraining of ``base`` (a folder or Hub id of a causal LM) on ``docs``; ``corpus`` says where
    they come from (e.g. {"spec": "embedded:smoke"}), recorded in the manifest's data so that a report flags
    results on that collection."""
    if mode not in MODES:
        raise ConfigError(f"pretext mode {mode!r}: expected one of {', '.join(MODES)}")
    pretext_mode = MODES[mode] if next_token_weight is None else \
        replace(MODES[mode], next_token_weight=next_token_weight)
    if not (pretext_mode.bow_weight or pretext_mode.next_token_weight):
        raise ConfigError(f"pretext mode {mode!r} with next-token weight 0 has no loss to train; give a weight above 0")
    _refuse_finished(output)
    pairs, stats = make_pairs(docs, chunk_words=chunk_words, short_docs=short_docs)
    if not pairs:
        raise ConfigError(f"no chunk pairs from {stats.documents} documents (all too short for chunk_words "
                          f"{chunk_words}); lower --chunk-words")
    model, tok = load_causal_lm(base, tokenizer)
    contract = pretext_mode.contract(LLARA)
    added = add_special_tokens(tok, model, contract.special_tokens)
    inputs = PretextInputs(tok, pretext_mode, fit_contract(LLARA, tok), max_text_tokens=max_text_tokens)
    excluded = excluded_ids(tok)
    texts = [inputs.text(p.text) for p in pairs]
    nexts = [inputs.text(p.next_text) for p in pairs]
    ebae = [target_ids(p.text, tok, excluded) for p in pairs]
    ebar = [target_ids(p.next_text, tok, excluded) for p in pairs]
    if settings.lora:
        new_rows = list(range(len(tok) - added, len(tok)))
        model = apply_lora(model, settings.lora, new_rows)

    def make_batch(idx: list[int]):
        return inputs.batch([texts[i] for i in idx], [ebae[i] for i in idx], [ebar[i] for i in idx])

    probe = list(range(0, len(pairs), max(1, len(pairs) // PROBE_SIZE)))[:PROBE_SIZE]

    def monitor(m) -> dict:  # collapse watch: do different chunks still get different embeddings?
        summ, pred = embeddings(m, make_batch(probe), pretext_mode)
        summ_next, _ = embeddings(m, inputs.batch([nexts[i] for i in probe]), pretext_mode)
        return {f"probe_{k}": v for k, v in embedding_spread(summ, summ_next).items()} | \
            {"probe_pred_margin": embedding_spread(pred, summ_next)["pair_margin"]}

    key = {"stage": "adapt", "base": base, "mode": asdict(pretext_mode), "chunk_words": chunk_words,
           "short_docs": short_docs, "max_text_tokens": max_text_tokens, "pairs": len(pairs)}
    trained, result = train(model, len(pairs), make_batch, lambda m, b: pretext_loss(m, b, pretext_mode),
                            settings, workdir_for(output), key_extra=key, monitor=monitor, on_log=on_log)
    manifest = {"stage": "adapted", "base": base, "tokenizer": tokenizer or base, "mode": mode,
                "pretext": asdict(pretext_mode), "chunk_words": chunk_words,
                "short_docs": short_docs, "max_text_tokens": max_text_tokens, "data": {**stats.to_dict(), **(corpus or {})},
                "added_special_tokens": added, "settings": asdict(settings), "history": result.history,
                "resumed_from_step": result.resumed_from, "train_seconds": result.seconds}
    save_stage(trained, tok, output, manifest)
    return manifest


def finetune(base: str, groups: list[TrainGroup], output: Path, settings: TrainSettings,
             contrastive: ContrastiveSettings = ContrastiveSettings(), *, data: dict[str, Any] | None = None,
             on_log: Callable[[int, dict], None] | None = None) -> dict:
    """Contrastive fine-tuning of an encoder folder (an adapted one, or any causal LM under LLaRA's
    contract with its special tokens added)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    _refuse_finished(output)
    previous = read_manifest(Path(base)) if Path(base).is_dir() else None
    source = base_folder(base)
    tok = AutoTokenizer.from_pretrained(source)
    contract = fit_contract(encoding_contract(previous.get("mode", "released") if previous else "released"), tok)
    model = AutoModel.from_pretrained(source, dtype=torch.float32, attn_implementation="sdpa")
    added = add_special_tokens(tok, model, contract.special_tokens)
    pad_id = tok.convert_tokens_to_ids(contract.pad_token)
    if settings.lora:
        model = apply_lora(model, settings.lora, list(range(len(tok) - added, len(tok))))
    batches = ContrastiveBatches(groups, tok, contract, pad_id, contrastive, seed=settings.seed)
    key = {"stage": "finetune", "base": base, "contrastive": asdict(contrastive), "groups": len(groups)}
    trained, result = train(model, len(groups), batches,
                            lambda m, b: contrastive_loss(m, b, batches.contract, contrastive.temperature),
                            settings, workdir_for(output), key_extra=key, on_log=on_log)
    manifest = {"stage": "finetuned", "base": base, "mode": (previous or {}).get("mode", "released"),
                "adapted_from": previous, "contrastive": asdict(contrastive),
                "data": {**groups_summary(groups), **(data or {})}, "settings": asdict(settings),
                "history": result.history, "resumed_from_step": result.resumed_from,
                "train_seconds": result.seconds}
    save_stage(trained, tok, output, manifest)
    return manifest


def workdir_for(output: Path) -> Path:
    return output.parent / f".{output.name}.work"


def _refuse_finished(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"output {output} exists and is not an empty folder; choose another or remove it")


def save_stage(model, tokenizer, output: Path, manifest: dict) -> None:
    """Merge LoRA if any, save model + tokenizer + manifest into a scratch folder, rename it into place,
    and drop the training checkpoint."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with scratch_beside(output) as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        contract = encoding_contract(manifest.get("mode", "released"), dtype)
        manifest = {**manifest, "dtype": dtype, "encoding_contract": contract.to_dict()}
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        move_into_place(scratch, output, existing="error")
    shutil.rmtree(workdir_for(output), ignore_errors=True)
