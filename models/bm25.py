"""BM25 through bm25s, configured as MTEB's BM25 baseline: English stop words, English Snowball
stemming (PyStemmer), Lucene's scoring with k1=1.5, b=0.75, documents as "title text"."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from llara_bench.models.base import EncodingContract, ModelMeta
from llara_bench.models.errors import NothingToIndex

BM25_CONTRACT = EncodingContract(query_template="{text}", passage_template="{title} {text}",
                                 add_special_tokens=False, pooling="none", normalize=False)


class BM25Retriever:
    def __init__(self, meta: ModelMeta, k1: float = 1.5, b: float = 0.75, method: str = "lucene",
                 stopwords: str = "en", stemmer_language: str | None = "english"):
        import bm25s
        import Stemmer

        # the settings it scores with, in the result (model.extra.bm25), so that a report shows them
        settings = {"scoring": f"{method} (bm25s {getattr(bm25s, '__version__', '?')})", "k1": k1, "b": b,
                    "stemmer": f"Snowball {stemmer_language} (PyStemmer)" if stemmer_language else None,
                    "stop_words": stopwords or None}
        self.meta = replace(meta, extra={**meta.extra, "bm25": settings})
        self._bm25s = bm25s
        self.stopwords = stopwords
        self.stemmer = Stemmer.Stemmer(stemmer_language) if stemmer_language else None
        self.model = bm25s.BM25(k1=k1, b=b, method=method)
        self.contract = meta.contract or BM25_CONTRACT
        self._ids: list[str] = []

    def _tokenize(self, texts: list[str]):
        return self._bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self.stemmer, show_progress=False)

    def index(self, ids: Sequence[str], texts: Sequence[str], titles: Sequence[str]) -> int:
        docs = [self.contract.format("passage", t, title) for t, title in zip(texts, titles)]
        tokens = self._tokenize(docs)
        if not tokens.vocab:  # bm25s would fail on an empty vocabulary, and nothing could be retrieved
            raise NothingToIndex(f"BM25 finds no word to index in any of the {len(docs):,} documents (each is empty "
                                 f"or only {self.stopwords!r} stop words), so nothing could be retrieved")
        self.model.index(tokens, show_progress=False)
        self._ids = list(ids)
        return sum(len(doc) for doc in tokens.ids)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, list[list[str]], int]:
        tokens = self._tokenize([self.contract.format("query", q) for q in queries])
        k = min(k, len(self._ids))
        doc_idx, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        ids = [[self._ids[j] for j in row] for row in doc_idx]
        n_query_tokens = sum(len(q) for q in tokens.ids)
        return np.asarray(scores, dtype=np.float32), ids, n_query_tokens
