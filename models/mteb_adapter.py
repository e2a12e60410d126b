"""A registry encoder as an MTEB 2.x encoder, so that ``mteb.evaluate`` can run it.

    from llara_bench.models import REGISTRY
    from llara_bench.models.mteb_adapter import MtebEncoder
    mteb.evaluate(MtebEncoder(REGISTRY.get("minilm").load()), task)

What MTEB hands to ``encode`` and what the encoder receives:

- ``PromptType.query``: the batch's ``text`` (the query, with the task's instruction appended when the
  task has one), encoded with role ``"query"``;
- ``PromptType.document``: MTEB's corpus batches carry ``text`` (title and body already joined by
  MTEB), ``body`` and ``title``. The adapter passes ``body`` and ``title`` separately, so that the
  title is joined by our encoding contract, exactly once, as in the harness;
- no prompt type (symmetric tasks: STS, classification, clustering): ``unspecified_role``, by default
  ``"query"`` (as E5-style and instruction models encode both sides of a symmetric task).

mteb is an optional extra (``pip install llara-bench[mteb]``): it is imported only when MTEB calls in.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from llara_bench.models.base import DenseEncoder, Role
from llara_bench.models.errors import NonFiniteEmbeddings

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.models.model_meta import ModelMeta as MtebModelMeta
    from mteb.types import PromptType


class MtebEncoder:
    """Wraps a `DenseEncoder` in MTEB's `EncoderProtocol` (encode, similarity, mteb_model_meta).

    Every batch of one ``encode`` call is collected and encoded in a single call of the wrapped
    encoder, so that its own batching (and hence its vectors) are those of the harness; MTEB's
    ``batch_size`` only sizes the batches it reads the data in.
    """

    def __init__(self, encoder: DenseEncoder, *, name: str | None = None, unspecified_role: Role = "query"):
        """`name` is MTEB's model name ("organization/model"); default ``llara-bench/<registry name>``."""
        if encoder.meta.kind != "dense" or encoder.meta.similarity not in ("cosine", "dot"):
            raise TypeError(f"encoder {encoder.meta.name!r} is not a dense encoder with cosine or dot similarity")
        self.encoder = encoder
        self.name = name or f"llara-bench/{encoder.meta.name}"
        self.unspecified_role = unspecified_role

    def role(self, prompt_type: PromptType | None) -> Role:
        """The encoder role of an MTEB ``PromptType`` (a str enum: "query", "document") or None."""
        if prompt_type is None:
            return self.unspecified_role
        if prompt_type not in ("query", "document"):
            raise ValueError(f"unknown MTEB prompt type {prompt_type!r}; expected 'query', 'document' or None")
        return "query" if prompt_type == "query" else "passage"

    def encode(self, inputs: Iterable[Mapping[str, Any]], *, task_metadata: TaskMetadata | None = None,
               hf_split: str = "", hf_subset: str = "", prompt_type: PromptType | None = None,
               **kwargs: Any) -> np.ndarray:
        """Vectors (n, dim) float32 for every row of `inputs` (MTEB's DataLoader of batches), in order."""
        role = self.role(prompt_type)
        texts: list[str] = []
        titles: list[str] = []
        ids: list[str] = []
        for batch in inputs:
            if role == "passage" and "body" in batch:
                texts.extend(batch["body"])
                titles.extend(batch.get("title") or [""] * len(batch["body"]))
            else:
                texts.extend(batch["text"])
            ids.extend(batch.get("id") or [])
        out = self.encoder.encode(texts, role, titles=titles or None)
        vectors = np.asarray(out.vectors, dtype=np.float32)
        NonFiniteEmbeddings.check(vectors, self.encoder.meta.name, ids if len(ids) == len(texts) else None,
                                  "document" if role == "passage" else "text")
        return vectors

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """All-pairs scores, by the encoder's declared similarity."""
        from mteb.similarity_functions import cos_sim, dot_score

        fn = cos_sim if self.encoder.meta.similarity == "cosine" else dot_score
        return fn(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Row-by-row scores, by the encoder's declared similarity."""
        from mteb.similarity_functions import pairwise_cos_sim, pairwise_dot_score

        fn = pairwise_cos_sim if self.encoder.meta.similarity == "cosine" else pairwise_dot_score
        return fn(embeddings1, embeddings2)

    @cached_property
    def mteb_model_meta(self) -> MtebModelMeta:
        """MTEB's model metadata, from the registry entry's `ModelMeta` (written into every MTEB result)."""
        from typing import get_args

        from mteb.models.model_meta import ModelMeta
        from mteb.types import Licenses

        meta = self.encoder.meta
        contract = meta.contract
        # MTEB takes a license from its own list or a URL; any other value is left out
        known = meta.license in get_args(Licenses) or (meta.license or "").startswith(("http://", "https://"))
        return ModelMeta(
            loader=None, name=self.name, revision=meta.revision or "no_revision_available", release_date=None,
            languages=None, n_parameters=meta.n_parameters, memory_usage_mb=None, max_tokens=meta.max_length,
            embed_dim=meta.dimension, license=meta.license if known else None, open_weights=None,
            public_training_code=None, public_training_data=None, training_datasets=None, framework=["PyTorch"],
            reference=meta.reference, similarity_fn_name=meta.similarity,
            use_instructions=contract is not None and bool(
                contract.query_template != "{text}" or contract.query_prefix or contract.query_suffix))
