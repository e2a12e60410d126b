"""Decoder-LLM encoders (LLaMA-2, LLaRA, RepLLaMA): a causal LM's final hidden states pooled under a
declared encoding contract.

The model is loaded as the bare transformer (``AutoModel``: hidden states after the final RMSNorm, no LM
head), from a Hub id, a local folder or a GGUF file (dequantised once, see `models.gguf`), optionally with
a LoRA adapter merged in (peft), in fp32, bf16 or fp16, with SDPA attention. Pad and BOS tokens are fitted
to the tokenizer (`models.contracts.fit_contract`) and recorded in the contract. Inputs are built at the
token level exactly as the contract says (see `models.base.EncodingContract`), so the ids are the authors'
ids; tests pin them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from llara_bench.models.base import EncodeOutput, EncodingContract, ModelMeta, Progress, Role
from llara_bench.models.batching import Batching, default_token_budget, encode_in_batches
from llara_bench.models.compute import flops_counter
from llara_bench.models.contracts import fit_contract
from llara_bench.models.errors import ConfigError
from llara_bench.models.gguf import provenance as gguf_provenance
from llara_bench.models.loading import check_tokenizer, check_weights, dtype_name as resolve_dtype, resolve_folder, \
    resolve_model, sha256_of_files, snapshot_revision
from llara_bench.models.truncation import cut_to_tokens

log = logging.getLogger(__name__)

def add_special_tokens(tokenizer, model, tokens: Sequence[str]) -> int:
    """Add the tokens the tokenizer lacks (as special tokens); new embedding rows get the mean embedding
    (and, untied, the mean output row). Returns how many were added."""
    import torch

    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for layer in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings())
                          if m is not None}.values():
                layer.weight[rows:] = layer.weight[:rows].mean(dim=0, keepdim=True)
    return len(missing)


def affix_ids(tokenizer, contract: EncodingContract, role: Role) -> tuple[list[int], list[int]]:
    """The ids before and after the text: BOS + prefix, and suffix + EOS, as the contract states."""
    prefix, suffix = contract.affixes(role)
    bos = tokenizer.convert_tokens_to_ids(contract.bos_token) if contract.bos_token else tokenizer.bos_token_id
    head = ([bos] if contract.bos else []) + text_ids(tokenizer, prefix)
    tail = text_ids(tokenizer, suffix) + ([tokenizer.eos_token_id] if contract.eos else [])
    return head, tail


def text_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def input_ids(tokenizer, contract: EncodingContract, role: Role, texts: Sequence[str],
              titles: Sequence[str] | None = None, affixes: tuple[list[int], list[int]] | None = None,
              name: str = "encoder") -> list[list[int]]:
    """Each text's model input, unpadded: BOS, prefix, text (truncated to the role's max length), suffix,
    EOS, as the contract states."""
    head, tail = affixes or affix_ids(tokenizer, contract, role)
    limit = contract.max_length(role)
    room = None if limit is None else limit - len(head) - len(tail)
    if room is not None and room < 1:
        raise ConfigError(f"encoder {name!r}: {role} max length {limit} leaves no room for text after "
                          f"{len(head) + len(tail)} prompt tokens")
    formatted = [contract.format(role, t, titles[i] if titles is not None else "") for i, t in enumerate(texts)]
    if room is not None:  # a long text's prefix that keeps the same tokens, not the whole text, is tokenized
        formatted = cut_to_tokens(tokenizer, formatted, room)
    body = tokenizer(formatted, add_special_tokens=False, truncation=room is not None,
                     max_length=room)["input_ids"] if formatted else []
    return [head + ids + tail for ids in body]


def collate(batch: Sequence[list[int]], pad_id: int, padding_side: str):
    """Pad to the longest on ``padding_side``: (input_ids, attention_mask, position_ids)."""
    import torch

    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):
        span = slice(width - len(seq), width) if padding_side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # real tokens at 0..n-1 whichever side is padded
    return ids, mask, positions


def embed(model, inputs, contract: EncodingContract):
    """Pooled (and, per the contract, normalised) float32 embeddings of collated ``inputs`` (see
    `collate`), with gradients when the caller allows them (fine-tuning)."""
    import torch

    device = next(model.parameters()).device
    ids, mask, positions = (t.to(device) for t in inputs)
    hidden = model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    emb = pool(hidden, mask, contract).float()
    return torch.nn.functional.normalize(emb, p=2, dim=-1) if contract.normalize else emb


def pool(hidden, mask, contract: EncodingContract):
    """Pool (batch, seq, dim) hidden states over the real tokens given by ``mask``, per the contract."""
    import torch

    positions = torch.arange(mask.shape[1], device=mask.device)
    last = (mask * positions).argmax(dim=1)  # last real token, whatever the padding side
    if contract.pooling == "last_token":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if contract.pooling == "last_k_mean":
        k = contract.pooling_k or 1
        if int(mask.sum(dim=1).min()) < k:
            raise ValueError(f"pooling over the last {k} tokens needs inputs of at least {k} tokens")
        idx = last[:, None] - torch.arange(k - 1, -1, -1, device=mask.device)[None, :]
        return torch.gather(hidden, 1, idx[..., None].expand(-1, -1, hidden.shape[-1])).mean(dim=1)
    if contract.pooling == "mean":
        weights = mask[..., None].to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    if contract.pooling == "cls":
        first = mask.argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    raise ConfigError(f"pooling {contract.pooling!r} is not supported by decoder encoders")


class DecoderEncoder:
    """A causal LM as a dense encoder under an encoding contract.

    ``batch_size`` caps the rows of a batch; ``token_budget`` caps rows × longest input (padding included)
    with ``batching="token_budget"`` (the default); ``batching="fixed"`` takes ``batch_size`` texts in
    arrival order (the naive baseline, kept for benchmarks).
    """

    def __init__(self, meta: ModelMeta, model: str, *, tokenizer: str | None = None, adapter: str | None = None,
                 revision: str | None = None, adapter_revision: str | None = None, device: str | None = None,
                 dtype: str | None = None, batch_size: int = 64, token_budget: int | None = None,
                 batching: Batching = "token_budget", allow_pickle: bool = False, trust_remote_code: bool = False,
                 attn_implementation: str = "sdpa", gguf_file: str | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if meta.contract is None:
            raise ConfigError(f"encoder {meta.name!r}: a decoder encoder needs an encoding contract")
        contract = meta.contract
        if contract.bos is None or contract.eos is None:
            raise ConfigError(f"encoder {meta.name!r}: the contract must state bos and eos (true or false)")
        dtype_name = resolve_dtype(meta.name, dtype or contract.dtype)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size, self.batching = batch_size, batching
        self.token_budget = token_budget or default_token_budget(torch.device(self.device).type)

        folder = resolve_model(meta.name, model, gguf_file=gguf_file, revision=revision, allow_pickle=allow_pickle)
        weights = check_weights(meta.name, "model", folder, allow_pickle=allow_pickle)
        tok_folder = folder if tokenizer is None else resolve_folder(meta.name, "tokenizer", tokenizer,
                                                                     weights=False)
        check_tokenizer(meta.name, tok_folder)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tok_folder, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"encoder {meta.name!r}: cannot load the tokenizer from {tok_folder}: {exc}") from exc
        try:
            self.model = AutoModel.from_pretrained(
                folder, dtype=getattr(torch, dtype_name), use_safetensors=".safetensors" in weights.name,
                trust_remote_code=trust_remote_code, attn_implementation=attn_implementation)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"encoder {meta.name!r}: cannot load the model from {folder}: {exc}") from exc

        added = add_special_tokens(self.tokenizer, self.model, contract.special_tokens)
        contract = fit_contract(contract, self.tokenizer, meta.name)
        self.pad_id = int(self.tokenizer.convert_tokens_to_ids(contract.pad_token))
        resolved: dict[str, Any] = {"model": str(folder), "model_revision": snapshot_revision(folder) or revision,
                                    "tokenizer": str(tok_folder), "tokenizer_class": type(self.tokenizer).__name__,
                                    "added_special_tokens": added, "dtype": dtype_name, "device": self.device,
                                    "attn_implementation": attn_implementation, **gguf_provenance(folder)}
        if adapter:
            resolved |= self._merge_adapter(meta.name, adapter, adapter_revision, allow_pickle)
        self.model.to(self.device).eval()
        self._flops = flops_counter(self.model)

        limit = getattr(self.model.config, "max_position_embeddings", None)
        capped = {f"{role}_max_length": limit for role in ("query", "passage")
                  if limit and (contract.max_length(role) or limit + 1) > limit}
        if capped:
            log.warning("encoder %s: max lengths capped at the model's %d positions", meta.name, limit)
        self.contract = replace(contract, dtype=dtype_name, **capped)
        resolved["n_parameters"] = sum(p.numel() for p in self.model.parameters())
        trained = trained_on(folder)  # the data its adaptation / fine-tuning used, so a report can flag it
        self.meta = replace(meta, dimension=self.model.config.hidden_size, contract=self.contract,
                            n_parameters=resolved["n_parameters"],
                            extra={**meta.extra, "resolved": resolved, **({"trained_on": trained} if trained else {})})
        self._affix_ids = {role: affix_ids(self.tokenizer, self.contract, role) for role in ("query", "passage")}

    # -- loading -------------------------------------------------------------------------------
    def _merge_adapter(self, name: str, adapter: str, revision: str | None, allow_pickle: bool) -> dict[str, Any]:
        from peft import PeftModel

        folder = resolve_folder(name, "adapter", adapter, revision=revision, allow_pickle=allow_pickle)
        if not (folder / "adapter_config.json").is_file():
            raise ConfigError(f"encoder {name!r}: adapter {folder} has no adapter_config.json")
        weights = check_weights(name, "adapter", folder, allow_pickle=allow_pickle)
        self.model = PeftModel.from_pretrained(self.model, folder).merge_and_unload()
        return {"adapter": str(folder), "adapter_revision": snapshot_revision(folder) or revision,
                "adapter_sha256": sha256_of_files([weights])}

    # -- inputs --------------------------------------------------------------------------------
    def input_ids(self, texts: Sequence[str], role: Role, titles: Sequence[str] | None = None) -> list[list[int]]:
        """The model input of each text, unpadded: BOS, prefix, text (truncated to fit), suffix, EOS."""
        return input_ids(self.tokenizer, self.contract, role, texts, titles, self._affix_ids[role], self.meta.name)

    def collate(self, batch: Sequence[list[int]]):
        """Pad to the longest on the contract's side: (input_ids, attention_mask, position_ids)."""
        return collate(batch, self.pad_id, self.contract.padding_side)

    # -- encoding ------------------------------------------------------------------------------
    def forward(self, batch: Sequence[list[int]]):
        """Pooled (and, per the contract, normalised) float32 embeddings of a batch of input ids."""
        return embed(self.model, self.collate(batch), self.contract)

    def encode(self, texts: Sequence[str], role: Role, *, titles: Sequence[str] | None = None,
               progress: Progress | None = None) -> EncodeOutput:
        inputs = self.input_ids(texts, role, titles)

        def embed(idx: np.ndarray) -> tuple[np.ndarray, int, int]:
            batch = [inputs[i] for i in idx]
            return (self.forward(batch).cpu().numpy(), sum(len(b) for b in batch),
                    len(batch) * max(len(b) for b in batch))

        out = encode_in_batches([len(ids) for ids in inputs], embed, self.model.config.hidden_size,
                                progress=progress, batching=self.batching, token_budget=self.token_budget,
                                batch_size=self.batch_size)
        out.n_flops = sum(self._flops(len(ids)) for ids in inputs)
        return out


def trained_on(folder) -> list[dict[str, Any]]:
    """The stages that trained the model in ``folder`` and the data each used, newest first, from the manifest
    that `llara-bench adapt` / `finetune` write (``llara-bench.json``, a fine-tune's ``adapted_from`` chained):
    [{"stage", "spec", "fingerprint"}]; [] for a folder without one."""
    import json
    from pathlib import Path

    from llara_bench.models.registry import ADAPTED_MANIFEST

    path = Path(folder) / ADAPTED_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError as exc:
        raise ConfigError(f"{path}: not the JSON manifest llara-bench adapt/finetune writes ({exc})") from None
    out = []
    while isinstance(manifest, dict):
        data = manifest.get("data") or {}
        out.append({"stage": manifest.get("stage", "trained"), "spec": data.get("spec"),
                    "fingerprint": data.get("fingerprint")})
        manifest = manifest.get("adapted_from")
    return out
