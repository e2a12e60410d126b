"""Fidelity: the harness's MiniLM nDCG@10 equals BEIR's own EvaluateRetrieval with exact search,
run side by side on the same files (an independent implementation of loading, encoding, search and
metrics). MiniLM's forward pass is shared between the two sides row by row (tests/conftest.py
SentenceEmbeddingMemo): a row BEIR formats or tokenizes differently is computed on its own."""

from __future__ import annotations

import os

import pytest

from llara_bench.harness.runner import RunConfig, run_suite
from llara_bench.harness.suites import load_suite

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def beir_ndcg10(folder) -> float:
    from beir.datasets.data_loader import GenericDataLoader
    from beir.retrieval import models as beir_models
    from beir.retrieval.evaluation import EvaluateRetrieval
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    from llara_bench.models.sentence_transformer import minilm_path

    corpus, queries, qrels = GenericDataLoader(data_folder=str(folder)).load(split="test")
    search = DenseRetrievalExactSearch(beir_models.SentenceBERT(minilm_path()), batch_size=64)
    retriever = EvaluateRetrieval(search, score_function="cos_sim", k_values=[10, 100])
    results = retriever.retrieve(corpus, queries)
    # BEIR's default drops hits whose id equals the query id; SciFact and NFCorpus ids never collide.
    ndcg, *_ = retriever.evaluate(qrels, results, retriever.k_values)
    return ndcg["NDCG@10"]


FULL = os.environ.get("LLARA_BENCH_FULL") == "1"


# NFCorpus doubles the time (about 4 minutes on 2 cores), so CI runs SciFact and LLARA_BENCH_FULL=1 adds it.
@pytest.mark.parametrize("name", ["scifact", pytest.param("nfcorpus", marks=pytest.mark.skipif(
    not FULL, reason="set LLARA_BENCH_FULL=1 to include NFCorpus"))])
def test_minilm_ndcg_matches_beir(shared_data, tmp_path, name, record_property, shared_sentence_embeddings):
    config = RunConfig(suite=load_suite("beir-local"), data_root=shared_data, output=tmp_path, models=["minilm"],
                       datasets=[name], save_run_files=False)
    harness = run_suite(config).results[0]["metrics"]["nDCG@10"]
    beir = beir_ndcg10(shared_data / name)
    record_property(f"{name}_ndcg10", {"harness": harness, "beir": beir})
    memo = shared_sentence_embeddings
    print(f"\n{name}: harness nDCG@10 {harness:.5f}, BEIR EvaluateRetrieval {beir:.5f} "
          f"(MiniLM rows shared {memo.hits}, computed {memo.misses})")
    assert harness == pytest.approx(beir, abs=0.002)
