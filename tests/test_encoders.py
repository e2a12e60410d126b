"""The first encoders on real components: MiniLM (offline package weights) and BM25 (bm25s)."""

from __future__ import annotations

import numpy as np
import pytest

from llara_bench.harness.datasets import load_dataset
from llara_bench.models import REGISTRY


@pytest.fixture(scope="module")
def minilm():
    return REGISTRY.get("minilm").load(device="cpu", batch_size=4)


def test_minilm_matches_sentence_transformers_encode(minilm):
    texts = ["How do volcanoes form?", "A short one.", "Magma rises through cracks in the crust " * 10, "x"]
    out = minilm.encode(texts, "query")
    reference = minilm.model.encode(texts, batch_size=4, normalize_embeddings=True)
    np.testing.assert_allclose(out.vectors, reference, atol=1e-5)
    assert out.vectors.shape == (4, 384)
    assert out.n_tokens < out.n_padded_tokens  # lengths differ, so batches carry padding


def test_minilm_passage_joins_title_and_text(minilm):
    joined = minilm.encode(["Volcano formation magma"], "passage", titles=["Geology"]).vectors
    direct = minilm.encode(["Geology Volcano formation magma"], "query").vectors
    np.testing.assert_allclose(joined, direct, atol=1e-6)
    untitled = minilm.encode(["text"], "passage", titles=[""]).vectors
    np.testing.assert_allclose(untitled, minilm.encode(["text"], "query").vectors, atol=1e-6)


def test_minilm_reports_progress(minilm):
    seen = []
    minilm.encode([f"text {i}" for i in range(10)], "passage", progress=seen.append)
    assert sum(seen) == 10 and len(seen) == 3  # batches of 4, 4, 2


def test_bm25_ranks_the_exact_match_first_and_stems():
    bm25 = REGISTRY.get("bm25").load()
    tokens = bm25.index(["a", "b", "c"], ["cats chase mice", "the stock market fell", "running shoes"], ["", "", ""])
    assert tokens == 8  # 3 + 3 + 2: the stop word "the" removed
    scores, ids, q_tokens = bm25.search(["a cat chasing", "market"], k=2)
    assert ids[0][0] == "a" and ids[1][0] == "b"  # "cat"/"chasing" match "cats"/"chase" only after stemming
    assert scores.shape == (2, 2) and scores[0, 0] > 0


def test_smoke_collection_separates_lexical_and_dense(minilm):
    """The embedded collection's paraphrase queries (README) defeat BM25 but not MiniLM."""
    from llara_bench.harness.metrics import evaluate
    from llara_bench.harness.search import exact_search

    ds = load_dataset("embedded:smoke")
    split = ds.split("test")
    paraphrases = ["q01", "q03", "q05", "q08", "q13", "q15", "q17", "q19", "q21", "q26", "q28", "q30", "q33", "q35",
                   "q37"]
    qrels = {q: split.qrels[q] for q in paraphrases}
    texts = [split.queries[q] for q in paraphrases]
    docs = minilm.encode(ds.corpus.texts, "passage", titles=ds.corpus.titles).vectors
    dense = exact_search(minilm.encode(texts, "query").vectors, docs, ds.corpus.ids, 10).to_run(paraphrases, k=10)
    bm25 = REGISTRY.get("bm25").load()
    bm25.index(ds.corpus.ids, ds.corpus.texts, ds.corpus.titles)
    scores, ids, _ = bm25.search(texts, 10)
    lexical = {q: dict(zip(row, map(float, s))) for q, row, s in zip(paraphrases, ids, scores)}
    dense_ndcg = evaluate(qrels, dense, ["nDCG@10"])[0]["nDCG@10"]
    lexical_ndcg = evaluate(qrels, lexical, ["nDCG@10"])[0]["nDCG@10"]
    assert dense_ndcg > lexical_ndcg + 0.3, (dense_ndcg, lexical_ndcg)


def test_sentence_embedding_memo_returns_what_the_model_computes(minilm, shared_sentence_embeddings):
    """The memo the SciFact checks share (tests/conftest.py): the harness's encoder fills it, sentence-transformers'
    own `encode` of the same texts is served from it with the vectors it computes itself, and a text formatted
    otherwise is computed, not served."""
    from sentence_transformers import SentenceTransformer

    memo = shared_sentence_embeddings
    ds = load_dataset("embedded:smoke")
    texts, titles = ds.corpus.texts[:12], ds.corpus.titles[:12]
    joined = [f"{title} {text}" for title, text in zip(titles, texts)]  # MiniLM's contract, as BEIR joins them
    hits, misses = memo.hits, memo.misses
    harness = minilm.encode(texts, "passage", titles=titles).vectors
    assert memo.misses - misses == 12
    served = minilm.model.encode(joined, batch_size=5, normalize_embeddings=True)
    assert memo.hits - hits == 12 and memo.misses - misses == 12
    np.testing.assert_allclose(served, harness, atol=1e-5)
    with pytest.MonkeyPatch.context() as mp:  # the model's own forward pass, no memo
        mp.setattr(SentenceTransformer, "forward", SentenceTransformer.forward.__wrapped__)
        computed = minilm.model.encode(joined, batch_size=5, normalize_embeddings=True)
    np.testing.assert_allclose(served, computed, atol=1e-5)
    minilm.model.encode([f"{title}: {text}" for title, text in zip(titles, texts)])
    assert memo.misses - misses == 24  # another joining: other token ids, computed
