"""What dense encoding costs in compute: the forward FLOPs a transformer spends on a text's real (non-pad)
tokens, and the peak they are measured against (model FLOP utilisation, MFU = achieved FLOP/s ÷ peak).

FLOPs of one sequence of L real tokens, forward only (PaLM's accounting, Chowdhery et al. 2022, appendix B):
``2 · N · L + 4 · layers · hidden · L²``, N the parameters without the input embedding table (every weight a
token's state is multiplied by), the second term the attention scores and the weighted values over the full
L × L square, as SDPA computes them. Padding is not counted: a padded batch's extra work is waste, not use.

The peak: on a GPU in bfloat16 or float16, the card's datasheet dense figure (``DATASHEET_TFLOPS``, or
``LLARA_BENCH_PEAK_TFLOPS``); otherwise (the CPU, or float32) torch's matmul throughput measured on that
device at that dtype: the best of a few square products, with the threads torch uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

# dense (no sparsity) bf16/fp16 tensor-core peaks, TFLOP/s, by a substring of torch.cuda.get_device_name()
# (first match wins: a more specific name before the one it contains)
DATASHEET_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10G": 70.0, "A10": 125.0}
MATMUL_SIZE = 2048  # rows = columns of the measured square product


@dataclass(frozen=True)
class Peak:
    flops_per_second: float
    source: str  # how it was obtained, for the record

    def to_dict(self) -> dict[str, Any]:
        return {"peak_flops_per_second": self.flops_per_second, "peak_source": self.source}


def forward_flops(n_params: int, n_layers: int, hidden: int, length: int) -> float:
    """Forward FLOPs of one sequence of ``length`` real tokens (see the module's docstring)."""
    return 2.0 * n_params * length + 4.0 * n_layers * hidden * length * length


def flops_counter(model) -> Callable[[int], float]:
    """``length -> FLOPs`` for a Hugging Face transformer (a bare ``AutoModel``: no output head to count)."""
    config = model.config
    embeddings = model.get_input_embeddings()
    n_params = sum(p.numel() for p in model.parameters()) - (embeddings.weight.numel() if embeddings else 0)
    n_layers, hidden = config.num_hidden_layers, config.hidden_size
    return lambda length: forward_flops(n_params, n_layers, hidden, length)


def peak_for(device: str, dtype: str) -> Peak:
    """The peak that ``device`` (``cpu``, ``cuda``, ``cuda:1``) at ``dtype`` is measured against."""
    import torch

    if os.environ.get("LLARA_BENCH_PEAK_TFLOPS"):
        return Peak(float(os.environ["LLARA_BENCH_PEAK_TFLOPS"]) * 1e12, "LLARA_BENCH_PEAK_TFLOPS")
    if device.startswith("cuda") and dtype in ("bfloat16", "float16"):
        name = torch.cuda.get_device_name(torch.device(device))
        tflops = next((tf for key, tf in DATASHEET_TFLOPS.items() if key in name), None)
        if tflops is not None:
            return Peak(tflops * 1e12, f"datasheet dense {dtype} peak of {name}")
    return measured_matmul_peak(device, dtype)


@lru_cache(maxsize=None)
def measured_matmul_peak(device: str, dtype: str, n: int = MATMUL_SIZE, repeats: int = 5) -> Peak:
    """torch's best throughput on ``n`` × ``n`` products at ``dtype`` (one warm-up, then the best of
    ``repeats``); measured once per process and device."""
    import torch

    on_gpu = device.startswith("cuda")
    generator = torch.Generator(device="cpu").manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(device=device, dtype=getattr(torch, dtype))
            for _ in range(2))
    best = float("inf")
    with torch.inference_mode():
        for i in range(repeats + 1):
            if on_gpu:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            torch.matmul(a, b)
            if on_gpu:
                torch.cuda.synchronize(device)
            if i:  # the first is the warm-up
                best = min(best, time.perf_counter() - start)
    threads = "" if on_gpu else f", {torch.get_num_threads()} threads"
    return Peak(2.0 * n ** 3 / best, f"measured torch.matmul {n}x{n} {dtype} on {device}{threads} "
                                     f"(best of {repeats})")
