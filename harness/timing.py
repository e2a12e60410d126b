"""Per-phase timing: wall seconds, items/s, tokens/s, FLOP/s (and MFU, set by the caller that knows the peak), peak
resident memory (and peak GPU memory)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import psutil

PHASES = ("load", "encode_corpus", "encode_queries", "index", "search", "evaluate")


@dataclass
class PhaseTiming:
    seconds: float
    items: int | None = None
    items_per_second: float | None = None
    tokens: int | None = None
    tokens_per_second: float | None = None
    padded_tokens: int | None = None
    flops: float | None = None  # forward FLOPs on the real tokens (models.compute)
    flops_per_second: float | None = None
    mfu: float | None = None  # flops_per_second ÷ the peak of the devices that ran it (embeddings.compute)
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class _PeakRss:
    """Samples this process's RSS on a thread (every `interval` s) and keeps the peak."""

    def __init__(self, interval: float = 0.01):
        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> "_PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


class Phase:
    """Handle yielded by `PhaseTimer.phase`: the body reports its item and token counts."""

    def __init__(self) -> None:
        self.items: int | None = None
        self.tokens: int | None = None
        self.padded_tokens: int | None = None
        self.flops: float | None = None

    def count(self, items: int | None = None, tokens: int | None = None, padded_tokens: int | None = None,
              flops: float | None = None) -> None:
        self.items, self.tokens, self.padded_tokens, self.flops = items, tokens, padded_tokens, flops or None


class PhaseTimer:
    def __init__(self) -> None:
        self.phases: dict[str, PhaseTiming] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        cuda = _cuda()
        if cuda:
            cuda.reset_peak_memory_stats()
        handle = Phase()
        with _PeakRss() as rss:
            start = time.perf_counter()
            yield handle
            seconds = time.perf_counter() - start
        rate = (lambda n: n / seconds if n is not None and seconds > 0 else None)
        self.phases[name] = PhaseTiming(
            seconds=seconds, items=handle.items, items_per_second=rate(handle.items), tokens=handle.tokens,
            tokens_per_second=rate(handle.tokens), padded_tokens=handle.padded_tokens, flops=handle.flops,
            flops_per_second=rate(handle.flops),
            peak_rss_bytes=rss.peak, peak_gpu_bytes=cuda.max_memory_allocated() if cuda else None)

    def to_dict(self) -> dict[str, dict]:
        return {name: t.to_dict() for name, t in self.phases.items()}


def _cuda():
    """torch.cuda when torch is already imported and sees a GPU (never imports torch itself)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda
    return None


def corpus_rates(result: dict) -> tuple[float | None, float | None]:
    """A result's corpus docs/s and tokens/s: of this run's encoding (or indexing); when every embedding came
    from the cache, of the encoding that made them (``embeddings.as_encoded``). The CLI, the report's tables
    and charts and the exports all take them from here."""
    phase = result["timings"].get("encode_corpus") or result["timings"].get("index") or {}
    if phase.get("items"):
        return phase.get("items_per_second"), phase.get("tokens_per_second")
    original = (result.get("embeddings") or {}).get("as_encoded") or {}
    if original.get("items") and original.get("seconds"):
        return original["items"] / original["seconds"], (original.get("tokens") or 0) / original["seconds"] or None
    return None, None
