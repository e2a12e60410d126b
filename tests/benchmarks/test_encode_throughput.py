"""Encoding throughput on the SciFact corpus.

- Decoder encoder (LLaRA contract; the real pretrained stories260K, and a LLaMA-2-tokenizer model):
  tokens/s and padding fraction of token-budget batching (longest first, batches filled to a token
  budget) against fixed-size batches in arrival order, the baseline.
- MiniLM: the harness's encoder against sentence-transformers' own ``encode`` (the baseline), docs/s;
  the target is at least as fast. Both produce the same vectors (checked).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llara_bench.models import REGISTRY
from llara_bench.models.base import ModelMeta
from llara_bench.models.contracts import LLARA

DECODER_BATCH = 32  # rows per fixed-size batch; also the row cap of the token-budget batches
TOKEN_BUDGET = DECODER_BATCH * 256  # the same padded-token volume as a fixed batch of 256-token inputs


@pytest.fixture(scope="module", params=["stories260K", "llama2-shaped"])
def decoder(request, shared_models, tmp_path_factory):
    """stories260K: the real pretrained model (its 512-piece tokenizer makes nearly every SciFact document
    hit the 512-position cap). llama2-shaped: a small random LLaMA with the real LLaMA-2 tokenizer, so the
    inputs have the lengths LLaMA-2-7B sees (speed depends on shape and lengths, not on trained weights)."""
    from dataclasses import replace

    from transformers import LlamaConfig, LlamaForCausalLM

    from llara_bench.models.decoder import DecoderEncoder

    tokenizer = None
    if request.param == "stories260K":
        folder = shared_models / "stories260K-hf"
    else:
        folder = tmp_path_factory.mktemp("llama2-shaped")
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=172, num_hidden_layers=5,
                                     num_attention_heads=8, num_key_value_heads=4,
                                     max_position_embeddings=1024)).save_pretrained(folder)
        tokenizer = str(shared_models / "llama2-tokenizer-hf")
    meta = ModelMeta(name=request.param, kind="dense", description="", source=str(folder), similarity="cosine",
                     contract=replace(LLARA, dtype="float32"))
    return DecoderEncoder(meta, str(folder), tokenizer=tokenizer, device="cpu", batch_size=DECODER_BATCH,
                          token_budget=TOKEN_BUDGET)


@pytest.mark.parametrize("batching", ["token_budget", "fixed"])
def test_decoder_encode(benchmark, decoder, scifact_corpus, batching):
    texts, titles = scifact_corpus
    decoder.batching = batching
    out = benchmark.pedantic(decoder.encode, args=(texts, "passage"), kwargs={"titles": titles}, rounds=1,
                             iterations=1, warmup_rounds=0)
    assert out.vectors.shape == (len(texts), 64) and np.isfinite(out.vectors).all()
    seconds = benchmark.stats.stats.mean if benchmark.stats else None
    benchmark.extra_info.update({
        "comparison": f"decoder encode ({decoder.meta.name}, LLaRA contract, SciFact corpus)",
        "baseline": batching == "fixed", "docs": len(texts), "tokens": out.n_tokens,
        "padded_tokens": out.n_padded_tokens, "padding_fraction": round(1 - out.n_tokens / out.n_padded_tokens, 4),
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
    seconds = benchmark.stats.stats.mean if benchmark.stats else None
    benchmark.extra_info.update({"comparison": "MiniLM encode (SciFact corpus)", "baseline": False,
                                 "docs": len(texts), "docs_per_second": round(len(texts) / seconds, 1) if seconds
                                 else None})
    reference = minilm.model.encode([minilm.contract.format("passage", t, ti) for t, ti in zip(texts, titles)],
                                    normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(out.vectors - reference).max() < 1e-4


def test_minilm_sentence_transformers_encode(benchmark, minilm, scifact_corpus):
    texts, titles = scifact_corpus
    formatted = [minilm.contract.format("passage", t, ti) for t, ti in zip(texts, titles)]
    vectors = benchmark.pedantic(minilm.model.encode, args=(formatted,),
                                 kwargs={"normalize_embeddings": True, "convert_to_numpy": True}, rounds=1,
                                 iterations=1, warmup_rounds=0)
    seconds = benchmark.stats.stats.mean if benchmark.stats else None
    benchmark.extra_info.update({"comparison": "MiniLM encode (SciFact corpus)", "baseline": True,
                                 "docs": len(texts), "docs_per_second": round(len(texts) / seconds, 1) if seconds
                                 else None})
    assert vectors.shape == (len(texts), 384)
