"""Encoding throughput on the SciFact corpus.

- Decoder encoder (the real pretrained stories260K, LLaRA contract): tokens/s and padding fraction of
  token-budget batching (longest first, batches filled to a token budget) against fixed-size batches in
  arrival order, the baseline.
- MiniLM: the harness's encoder against sentence-transformers' own ``encode`` (the baseline), docs/s;
  the target is at least as fast. Both produce the same vectors (checked).
"""

from __future__ import annotations

import numpy as np
import pytest

from models import REGISTRY
from models.base import ModelMeta
from models.contracts import LLARA

DECODER_BATCH = 32  # rows per fixed-size batch; also the row cap of the token-budget batches
TOKEN_BUDGET = DECODER_BATCH * 256  # the same padded-token volume as a fixed batch of 256-token inputs


@pytest.fixture(scope="module")
def stories(shared_models):
    from dataclasses import replace

    from models.decoder import DecoderEncoder

    meta = ModelMeta(name="stories260K-llara", kind="dense", description="", source="stories260K-hf",
                     similarity="cosine", contract=replace(LLARA, dtype="float32"))
    return DecoderEncoder(meta, str(shared_models / "stories260K-hf"), device="cpu", batch_size=DECODER_BATCH,
                          token_budget=TOKEN_BUDGET)


@pytest.mark.parametrize("batching", ["token_budget", "fixed"])
def test_decoder_encode(benchmark, stories, scifact_corpus, batching):
    texts, titles = scifact_corpus
    stories.batching = batching
    out = benchmark.pedantic(stories.encode, args=(texts, "passage"), kwargs={"titles": titles}, rounds=1,
                             iterations=1, warmup_rounds=0)
    assert out.vectors.shape == (len(texts), 64) and np.isfinite(out.vectors).all()
    seconds = benchmark.stats.stats.mean if benchmark.stats else None
    benchmark.extra_info.update({
        "comparison": "decoder encode (stories260K, SciFact corpus)", "baseline": batching == "fixed",
        "docs": len(texts), "tokens": out.n_tokens, "padded_tokens": out.n_padded_tokens,
        "padding_fraction": round(1 - out.n_tokens / out.n_padded_tokens, 4),
        "tokens_per_second": round(out.n_tokens / seconds, 1) if seconds else None})
    if batching == "token_budget":
        assert out.n_padded_tokens < 1.1 * out.n_tokens  # little padding once sorted


@pytest.fixture(scope="module")
def minilm():
    return REGISTRY.get("minilm").load(device="cpu")


def test_minilm_harness_encode(benchmark, minilm, scifact_corpus):
    texts, titles = scifact_corpus
    out = benchmark.pedantic(minilm.encode, args=(texts, "passage"), kwargs={"titles": titles}, rounds=1,
                             iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"comparison": "MiniLM encode (SciFact corpus)", "baseline": False,
                                 "docs": len(texts)})
    reference = minilm.model.encode([minilm.contract.format("passage", t, ti) for t, ti in zip(texts, titles)],
                                    normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(out.vectors - reference).max() < 1e-4


def test_minilm_sentence_transformers_encode(benchmark, minilm, scifact_corpus):
    texts, titles = scifact_corpus
    formatted = [minilm.contract.format("passage", t, ti) for t, ti in zip(texts, titles)]
    vectors = benchmark.pedantic(minilm.model.encode, args=(formatted,),
                                 kwargs={"normalize_embeddings": True, "convert_to_numpy": True}, rounds=1,
                                 iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"comparison": "MiniLM encode (SciFact corpus)", "baseline": True,
                                 "docs": len(texts)})
    assert vectors.shape == (len(texts), 384)
