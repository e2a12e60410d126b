"""`tiny-llara`: the embedded `tiny-llama` adapted with LLaRA (EBAE + EBAR, the released code's mode) on the
embedded smoke corpus, so that the first report a user sees sets the baseline beside its LLaRA variant.

It is built at first use (a few seconds on 2 cores) with `adaptation.stages.adapt` and cached beside
tiny-llama, under a key of everything that determines it: tiny-llama's own build key, the corpus, the
settings and the library versions. It is registered through the ``llara_bench.encoders`` entry point
(pyproject.toml), as any plug-in variant would be: `models` does not depend on `adaptation`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from llara_bench.adaptation.train import TrainSettings
from llara_bench.models.base import ModelMeta
from llara_bench.models.cache import cache_root, cached_build
from llara_bench.models.contracts import LLARA
from llara_bench.models.registry import ModelEntry, Registry, decoder_meta

BUILD_VERSION = 1
# The bag-of-words losses alone (next-token weight 0): on 235 short passages the next-token loss only
# memorises them (0.136 nDCG@10 with weight 0.1, 0.025 with the released weight 1 and 300 steps, against
# 0.161 without it; the untrained tiny-llama scores 0.029).
SETTINGS = TrainSettings(steps=600, batch_size=16, lr=2e-3, warmup_ratio=0.1, seed=0, log_every=50,
                         monitor_every=0)
ADAPT: dict[str, Any] = dict(mode="released", chunk_words=24, short_docs="halve", max_text_tokens=64,
                             next_token_weight=0.0)


def build_key() -> str:
    from llara_bench.models.tiny_llama import build_key as base_key

    blob = json.dumps({"version": BUILD_VERSION, "base": base_key(), "settings": asdict(SETTINGS), "adapt": ADAPT},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tiny_llara_path() -> Path:
    """The cached adapted folder, adapted first if absent."""
    return cached_build(cache_root() / "models" / f"tiny-llara-{build_key()}", build)


def build(folder: Path) -> None:
    """Adapt tiny-llama into the (empty) ``folder``; a failed build leaves no checkpoint behind."""
    import shutil

    from llara_bench.adaptation.stages import adapt, workdir_for
    from llara_bench.models.tiny_llama import corpus_docs, tiny_llama_path

    try:
        adapt(str(tiny_llama_path()), corpus_docs(), folder, SETTINGS, **ADAPT)
    finally:
        shutil.rmtree(workdir_for(folder), ignore_errors=True)


def tiny_llara_encoder(meta: ModelMeta, **kwargs: Any):
    from llara_bench.models.decoder import DecoderEncoder

    return DecoderEncoder(meta, str(tiny_llara_path()), **kwargs)


def register(registry: Registry) -> None:
    """The ``llara_bench.encoders`` entry point: adds `tiny-llara`."""
    registry.add_entry(ModelEntry("tiny-llara", "llara_bench.adaptation.smoke:tiny_llara_encoder", decoder_meta(
        "tiny-llara", "built by llara-bench (adaptation/smoke.py)", replace(LLARA, dtype="float32"), trained=True,
        dimension=64, max_length=1024,
        description=f"tiny-llama adapted with LLaRA (EBAE + EBAR bag-of-words losses, 8 tokens per head, "
                    f"{SETTINGS.steps} steps) on the smoke corpus, built at first use"),
        origin="entry-point:llara-bench (adaptation.smoke)"))
