"""Forward throughput of a LLaMA-2-7B-shaped encoder (random weights: speed depends on shape, not on
training), bfloat16 against float32 (the baseline), in tokens/s and model FLOP utilisation (MFU).

On a GPU: the real LLaMA-2-7B shape (4096 hidden, 32 layers, 11008 MLP, 32,000 vocabulary), batches of
16 passages × 512 tokens (small enough that the float32 baseline's 27 GB of weights leave room for the
activations). Without a GPU it is skipped under `tox -e bench`; in plain test runs it runs a tiny shape
on the CPU once, as a check of the code path (no MFU: there is no meaningful CPU peak to divide by).

MFU = achieved FLOP/s ÷ the GPU's dense bf16 peak, with the forward FLOPs of ``models.compute`` (2 ×
parameters without the embedding table + 4 × layers × hidden × sequence length, per token); the peak is
``models.compute.peak_for``'s (LLARA_BENCH_PEAK_TFLOPS, else the datasheet table by device name).
"""

from __future__ import annotations

import time

import pytest
import torch

from llara_bench.models.compute import flops_counter, peak_for

LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
TINY = dict(vocab_size=32000, hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=512)


@pytest.fixture(scope="module")
def setup(request):
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not request.config._benchmarksession.disabled:
        pytest.skip("the LLaMA-2-7B throughput benchmark needs a GPU (it runs once, tiny, on CPU in plain test runs)")
    config, batch, seq_len = (LLAMA2_7B, 16, 512) if on_gpu else (TINY, 4, 64)
    return config, batch, seq_len, "cuda" if on_gpu else "cpu"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_llama_forward(benchmark, setup, dtype):
    from transformers import LlamaConfig, LlamaModel

    config, batch, seq_len, device = setup
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32
    with torch.device(device):
        model = LlamaModel(LlamaConfig(**config, attn_implementation="sdpa")).to(getattr(torch, dtype)).eval()
    ids = torch.randint(3, config["vocab_size"], (batch, seq_len), device=device)
    mask = torch.ones_like(ids)

    def forward():
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1]
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    count = flops_counter(model)
    forward()  # warm-up (kernels, allocator)
    start = time.perf_counter()
    out = benchmark.pedantic(forward, rounds=5 if device == "cuda" else 1, iterations=1, warmup_rounds=0)
    seconds = benchmark.stats.stats.mean if benchmark.stats else time.perf_counter() - start  # disabled: one call
    assert out.shape == (batch, config["hidden_size"]) and torch.isfinite(out.float()).all()
    tokens_per_second = batch * seq_len / seconds
    flops = batch * count(seq_len) / seconds
    peak = peak_for(device, dtype).flops_per_second if device == "cuda" and dtype == "bfloat16" else None
    benchmark.extra_info.update({
        "comparison": f"LLaMA forward, {'LLaMA-2-7B' if config is LLAMA2_7B else 'tiny'} shape, "
                      f"{batch} x {seq_len} tokens, {device}", "baseline": dtype == "float32",
        "tokens_per_second": round(tokens_per_second, 1), "tflops": round(flops / 1e12, 2),
        "mfu": round(flops / peak, 4) if peak else None})
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
