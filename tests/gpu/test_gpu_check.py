"""The GPU check (`tox -e gpu`), in one go, with one summary table at the end (tests/gpu/conftest.py):

1. GPU FAISS flat search, float32 and float16, sharded and replicated, against exact CPU search on the same
   vectors: the same top-k for float32 (ties aside), recall@100 ≥ 0.999 for float16;
2. the LLaMA-2-7B-shaped bfloat16 forward: tokens/s and MFU against the card's datasheet peak;
3. a real CUDA out-of-memory back-off: a token budget too large for the card (its memory nearly filled
   first), shrunk and retried, giving the same embeddings as a small budget;
4. a decoder model encoding a BEIR folder on ``cuda`` end to end (the embedded smoke collection through
   `run_suite`), with the same scores as on the CPU.

Without CUDA the GPU parts skip; the CPU-side parts (CPU FAISS float32/float16 against exact search, a
tiny forward with its MFU against the measured matmul peak) run on a slice in `tox -e py`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch

from llara_bench.harness.search import exact_search, faiss_gpus
from llara_bench.models.compute import flops_counter, peak_for

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (run tox -e gpu on a GPU machine)")
LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
TINY = dict(vocab_size=1000, hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=512)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("fp16", [False, True], ids=["float32", "float16"])
@pytest.mark.parametrize("shard", [False, True], ids=["replicated", "sharded"])
def test_faiss_flat_against_exact_cpu_search(summary, shard, fp16):
    on_gpu = faiss_gpus() > 0
    if shard and not on_gpu:
        pytest.skip("sharding is across GPUs (the CPU-side part runs replicated only)")
    n, dim, n_queries, k = (500_000, 768, 1000, 100) if on_gpu else (20_000, 64, 200, 100)
    rng = np.random.default_rng(0)
    docs = _unit(rng.standard_normal((n, dim), dtype=np.float32))
    queries = _unit(docs[:n_queries] + 0.5 * rng.standard_normal((n_queries, dim), dtype=np.float32))
    ids = [str(i) for i in range(n)]
    reference = exact_search(queries, docs, ids, k)  # CPU IndexFlatIP, float32
    start = time.perf_counter()
    got = exact_search(queries, docs, ids, k, use_gpu=on_gpu, shard=shard, fp16=fp16)
    seconds = time.perf_counter() - start
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(got.doc_ids, reference.doc_ids)])
    where = f"{'GPU' if on_gpu else 'CPU'} {'sharded' if shard else 'replicated'}"
    setting = f"{where} {'float16' if fp16 else 'float32'}, {n:,} x {dim} docs, {n_queries:,} queries, top {k}"
    if fp16:
        ok = recall >= 0.999
        summary("FAISS flat vs exact CPU", setting, f"recall@{k} {recall:.5f}; build+search {seconds:.2f} s",
                "recall ≥ 0.999", ok)
        assert ok
    else:
        # ties aside: a document in one top-k and not the other must score (within float error) as the k-th
        kth = reference.scores[:, -1]
        scores = {i: dict(zip(r, s)) for i, (r, s) in enumerate(zip(reference.doc_ids, reference.scores))}
        untied = sum(1 for i, (a, b) in enumerate(zip(got.doc_ids, reference.doc_ids))
                     for d in set(b) - set(a) if scores[i][d] > kth[i] + 1e-5)
        assert np.allclose(np.sort(got.scores, axis=1), np.sort(reference.scores, axis=1), atol=1e-5)
        summary("FAISS flat vs exact CPU", setting, f"recall@{k} {recall:.5f}, {untied} untied differences; "
                f"build+search {seconds:.2f} s", "same top-k, ties aside", untied == 0)
        assert untied == 0


def test_llama_forward_mfu(summary):
    """LLaMA-2-7B-shaped, bfloat16, 16 x 512 tokens on the GPU; a tiny shape in float32 on the CPU."""
    from transformers import LlamaConfig, LlamaModel

    device, dtype, shape, batch, length = ("cuda", "bfloat16", LLAMA2_7B, 16, 512) if CUDA else \
        ("cpu", "float32", TINY, 8, 128)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaModel(LlamaConfig(**shape, attn_implementation="sdpa")).to(getattr(torch, dtype)).eval()
    ids = torch.randint(3, shape["vocab_size"], (batch, length), device=device)

    def forward() -> None:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        if device == "cuda":
            torch.cuda.synchronize()

    forward()  # warm-up
    rounds = 5
    start = time.perf_counter()
    for _ in range(rounds):
        forward()
    seconds = (time.perf_counter() - start) / rounds
    achieved = batch * flops_counter(model)(length) / seconds
    peak = peak_for(device, dtype)
    mfu = achieved / peak.flops_per_second
    summary("decoder forward MFU", f"{'LLaMA-2-7B' if CUDA else 'tiny'} shape, {dtype}, {batch} x {length} tokens "
            f"on {device}", f"{batch * length / seconds:,.0f} tokens/s, {achieved / 1e12:.2f} TFLOP/s, MFU "
            f"{mfu:.1%} ({peak.source})", "reported" if not CUDA else "MFU reported (no target)")
    assert 0 < mfu < 1.05  # above the peak would mean a counting error
    del model
    if CUDA:
        torch.cuda.empty_cache()


@needs_cuda
def test_cuda_out_of_memory_backs_off_and_gives_the_same_embeddings(summary, caplog):
    from llara_bench.models import REGISTRY

    encoder = REGISTRY.get("tiny-llama").load(device="cuda", dtype="float32", batch_size=512, token_budget=10**7)
    text = " ".join(["retrieval with large language models adapted by pretext tasks"] * 120)
    texts = [f"{i} {text}" for i in range(512)]  # about 1,000 tokens each: one batch of 512 rows would be tried
    free, _ = torch.cuda.mem_get_info()
    ballast = torch.empty(max(free - 384 * 2**20, 0), dtype=torch.uint8, device="cuda")  # leave 384 MiB
    try:
        with caplog.at_level(logging.WARNING, logger="llara_bench"):
            squeezed = encoder.encode(texts, "passage").vectors
    finally:
        del ballast
        torch.cuda.empty_cache()
    retries = [r for r in caplog.records if "out of GPU memory" in r.getMessage()]
    encoder.token_budget, encoder.batch_size = 4096, 8
    roomy = encoder.encode(texts, "passage").vectors
    difference = float(np.abs(squeezed - roomy).max())
    ok = bool(retries) and difference < 1e-4
    summary("CUDA OOM back-off", "tiny-llama, 512 texts of ~1,000 tokens, budget 10M tokens, 384 MiB free",
            f"{len(retries)} halvings; max |Δ| vs budget 4096: {difference:.2e}", "backs off, same embeddings", ok)
    assert retries and difference < 1e-4


@needs_cuda
def test_decoder_encodes_a_beir_folder_on_cuda_end_to_end(summary, tmp_path):
    from pathlib import Path

    from llara_bench.harness.retrieval import CacheOptions, EncoderOptions
    from llara_bench.harness.runner import RunConfig, run_suite
    from llara_bench.harness.suites import load_suite

    folder = Path(__file__).resolve().parents[2] / "harness" / "data" / "smoke"
    scores = {}
    for device in ("cuda", "cpu"):
        config = RunConfig(suite=load_suite("smoke"), output=tmp_path / device, models=["tiny-llama"],
                           datasets=[f"folder:{folder}"], encoder=EncoderOptions(device=device),
                           cache=CacheOptions(embedding_cache=False))
        (result,) = run_suite(config).results
        scores[device] = (result["metrics"]["nDCG@10"], result["timings"]["encode_corpus"]["items_per_second"],
                          result["model"]["extra"]["resolved"]["device"])
    ok = scores["cuda"][2] == "cuda" and abs(scores["cuda"][0] - scores["cpu"][0]) < 1e-3
    summary("decoder on cuda, BEIR folder", f"tiny-llama, folder:{folder.name} (235 docs, 40 queries)",
            f"nDCG@10 {scores['cuda'][0]:.4f} (CPU {scores['cpu'][0]:.4f}); {scores['cuda'][1]:,.0f} docs/s "
            f"(CPU {scores['cpu'][1]:,.0f})", "same nDCG@10 as CPU (±0.001)", ok)
    assert ok
