"""What an encoder is: metadata, an encoding contract, and the two retriever kinds.

The contract is data, not code, because a wrong prompt, BOS/EOS or padding side silently ruins
scores: it is declared per registry entry, recorded in every result file, and tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

Role = Literal["query", "passage"]
ROLES: tuple[Role, ...] = ("query", "passage")
Progress = Callable[[int], None]  # called with the number of items just finished


@dataclass(frozen=True)
class EncodingContract:
    """How a text becomes model input and a vector, per role.

    String level: the role's template takes ``{text}`` (and ``{title}`` for passages; with an empty
    title the ``{title}`` slot and its separating space are dropped) and the result is stripped.
    Token level (encoders that tokenise themselves, e.g. decoder LLMs): the input ids are
    ``[BOS] + ids(prefix) + ids(formatted text) + ids(suffix) + [EOS]``, each part tokenised on its own
    without special tokens, the text truncated so that the whole input fits the role's max length.
    Separate tokenisation matters: LLaRA's ``"`` prefix is the piece ``▁"`` (376) only when it is
    tokenised alone. `None` for bos/eos means "the tokenizer's own default".
    """

    query_template: str = "{text}"
    passage_template: str = "{title} {text}"
    query_prefix: str = ""
    query_suffix: str = ""
    passage_prefix: str = ""
    passage_suffix: str = ""
    add_special_tokens: bool = True
    special_tokens: tuple[str, ...] = ()  # tokens added to the tokenizer (e.g. LLaRA's <s1>..<s16>)
    bos: bool | None = None
    eos: bool | None = None
    bos_token: str | None = None  # the BOS token when bos is true; None: the tokenizer's (see contracts.fit_contract)
    pad_token: str | None = None  # padding token when the tokenizer has none (LLaMA: "<unk>")
    padding_side: Literal["left", "right"] = "right"
    pooling: Literal["cls", "mean", "last_token", "last_k_mean", "none"] = "mean"
    pooling_k: int | None = None  # for last_k_mean
    normalize: bool = True
    query_max_length: int | None = None  # whole model input, in tokens
    passage_max_length: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if (self.pooling == "last_k_mean") != (self.pooling_k is not None):
            raise ValueError("pooling_k is required by, and only by, pooling 'last_k_mean'")
        if self.pooling_k is not None and self.pooling_k < 1:
            raise ValueError(f"pooling_k must be >= 1, got {self.pooling_k}")

    def format(self, role: Role, text: str, title: str = "") -> str:
        template = self.query_template if role == "query" else self.passage_template
        if not title:
            template = template.replace("{title} ", "").replace(" {title}", "").replace("{title}", "")
        return template.format(text=text, title=title).strip()

    def prompt(self, role: Role, text: str, title: str = "") -> str:
        """The whole input as one string, prefix + formatted text + suffix, for encoders that take strings
        (sentence-transformers tokenises it in one piece, as its own ``encode(prompt=...)`` does)."""
        prefix, suffix = self.affixes(role)
        return prefix + self.format(role, text, title) + suffix

    def affixes(self, role: Role) -> tuple[str, str]:
        """(prefix, suffix) strings of a role, tokenised apart from the text."""
        if role == "query":
            return self.query_prefix, self.query_suffix
        return self.passage_prefix, self.passage_suffix

    def max_length(self, role: Role) -> int | None:
        return self.query_max_length if role == "query" else self.passage_max_length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelMeta:
    """What a registry entry declares before anything is loaded (MTEB's ModelMeta, in small)."""

    name: str
    kind: Literal["dense", "lexical"]
    description: str
    source: str  # hub id, local path, or library
    similarity: Literal["cosine", "dot", "bm25"]
    dimension: int | None = None
    max_length: int | None = None
    n_parameters: int | None = None
    revision: str | None = None
    trained: bool = True
    license: str | None = None
    reference: str | None = None
    contract: EncodingContract | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def input_length(self, role: Role) -> int | None:
        """The longest input, in tokens (prompt included), fed to the model for a role: the contract's max length
        within the model's own limit (`max_length`, e.g. LLaMA-2's 4096 positions)."""
        caps = [n for n in (self.contract.max_length(role) if self.contract else None, self.max_length) if n]
        return min(caps) if caps else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["contract"] = self.contract.to_dict() if self.contract else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMeta":
        """The inverse of `to_dict` (also after a JSON round trip, which turns tuples into lists)."""
        contract = d.get("contract")
        if contract is not None:
            contract = EncodingContract(**{**contract, "special_tokens": tuple(contract["special_tokens"])})
        return cls(**{**d, "contract": contract})


@dataclass
class EncodeOutput:
    vectors: np.ndarray  # (n, dim) float32, rows in input order
    n_tokens: int | None = None  # real (non-padding) tokens fed to the model
    n_padded_tokens: int | None = None  # tokens including padding
    n_flops: float | None = None  # forward FLOPs on the real tokens, when the encoder can count them (models.compute)


@runtime_checkable
class DenseEncoder(Protocol):
    """Texts to vectors for a role; the harness indexes and searches them with FAISS."""

    meta: ModelMeta

    def encode(self, texts: Sequence[str], role: Role, *, titles: Sequence[str] | None = None,
               progress: Progress | None = None) -> EncodeOutput: ...


@runtime_checkable
class LexicalRetriever(Protocol):
    """A retriever that indexes and searches by itself (BM25)."""

    meta: ModelMeta

    def index(self, ids: Sequence[str], texts: Sequence[str], titles: Sequence[str]) -> int:
        """Index the corpus; returns the number of tokens indexed."""

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, list[list[str]], int]:
        """(scores (n, k'), doc ids per query, tokens in the queries)."""
