"""Encoders loaded on first use, so that a rerun whose embeddings are all cached never loads a model.

The embedding cache key needs a dense encoder's metadata *as loaded* (the resolved folder and Hub commit,
the contract with capped lengths, the dtype, the dimension). After a load it is memoised under the cache,
keyed by everything the load depends on that is known beforehand: the registry entry (target, declared
metadata, kwargs), the overrides (device, dtype, batch sizes), the GPUs the driver shows, library
versions, the source of llara-bench's ``models`` package, and the files of each local folder the entry
names. A memo is used only when what it describes cannot have moved: each folder it resolved to still
has the same files (size and mtime), and none is a Hugging Face Hub snapshot unless HF_HUB_OFFLINE is
set (online, "main" may have moved since).

The memo only decides whether loading can be skipped; anything that is encoded is encoded by the loaded
model, under the key of its metadata as loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from llara_bench.harness.embedding_cache import folder_signature
from llara_bench.harness.provenance import library_versions
from llara_bench.harness.results import write_atomic
from llara_bench.harness.timing import PhaseTimer, PhaseTiming
from llara_bench.models import DenseEncoder, LexicalRetriever, ModelEntry, ModelMeta
from llara_bench.models.cache import cache_root
from llara_bench.models.loading import snapshot_revision
from llara_bench.models.offline import hub_offline

log = logging.getLogger(__name__)


class LazyEncoder:
    """Stands in for a registry entry's encoder; `get` loads it (timed as the "load" phase)."""

    def __init__(self, entry: ModelEntry, overrides: dict[str, Any], load: Callable[[], Any], memo: bool = True):
        self.entry = entry
        self._load = load
        self._encoder: Any = None
        self.load_timing: PhaseTiming | None = None
        self._memo = _memo_path(entry, overrides) if memo and entry.meta.kind == "dense" else None
        self._meta = _read_memo(self._memo) if self._memo else None

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    @property
    def meta(self) -> ModelMeta:
        """The metadata as loaded: from the memo while the model is not loaded, else the encoder's own."""
        return self._meta if self._meta is not None else self.get().meta

    def get(self) -> Any:
        if self._encoder is None:
            if self.entry.meta.kind == "dense":  # a model's load can take a while, with no progress of its own
                log.info("%s: loading", self.entry.name)
            timer = PhaseTimer()
            with timer.phase("load"):
                encoder = self._load()
            expected = DenseEncoder if self.entry.meta.kind == "dense" else LexicalRetriever
            if not isinstance(encoder, expected):
                raise TypeError(f"encoder {self.entry.name!r} ({type(encoder).__name__}) is declared "
                                f"{self.entry.meta.kind} but is not a {expected.__name__}")
            self._encoder, self.load_timing, self._meta = encoder, timer.phases["load"], encoder.meta
            if self._memo:
                _write_memo(self._memo, encoder.meta)
        return self._encoder

    def take_load_timing(self) -> PhaseTiming | None:
        """The load's timing the first time it is asked for after the load, then None: a model loaded once is
        counted once, with the result of the dataset that loaded it."""
        timing, self.load_timing = self.load_timing, None
        return timing

    def encode(self, *args: Any, **kwargs: Any):
        return self.get().encode(*args, **kwargs)


def _memo_path(entry: ModelEntry, overrides: dict[str, Any]) -> Path:
    target = entry.target if isinstance(entry.target, str) else \
        f"{getattr(entry.target, '__module__', '?')}:{getattr(entry.target, '__qualname__', '?')}"
    named = [entry.meta.source, *entry.kwargs.values()]
    identity = {
        "entry": entry.name, "target": target, "meta": entry.meta.to_dict(), "kwargs": entry.kwargs,
        "overrides": overrides, "device": overrides.get("device") or _visible_gpus(),
        "libraries": library_versions(), "models_package": _models_source_digest(),
        "folders": {str(v): folder_signature(v) for v in named if folder_signature(v) is not None},
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return cache_root() / "embeddings" / "encoders" / f"{hashlib.sha256(blob).hexdigest()[:32]}.json"


def _visible_gpus() -> dict:
    """What decides the default device (cuda when torch sees a GPU), read without importing torch (which
    takes longer than a whole cached rerun): the NVIDIA driver's GPUs and CUDA_VISIBLE_DEVICES. torch's
    own build (CPU or CUDA) is in the library versions."""
    driver = Path("/proc/driver/nvidia/gpus")
    return {"nvidia_gpus": sorted(p.name for p in driver.iterdir()) if driver.is_dir() else [],
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _models_source_digest() -> str:
    """sha256 of the ``models`` package's source: a change to how encoders load invalidates every memo."""
    from llara_bench import models

    digest = hashlib.sha256()
    root = Path(models.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _resolved_folders(meta: ModelMeta) -> list[str]:
    resolved = (meta.extra or {}).get("resolved", {})
    return [v for v in resolved.values() if isinstance(v, str) and Path(v).is_dir()]


def _write_memo(path: Path, meta: ModelMeta) -> None:
    memo = {"meta": meta.to_dict(), "folders": {f: folder_signature(f) for f in _resolved_folders(meta)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(memo, default=str).encode())


def _read_memo(path: Path) -> ModelMeta | None:
    try:
        memo = json.loads(path.read_text())
        meta = ModelMeta.from_dict(memo["meta"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or unreadable: load the model
    for folder, signature in memo["folders"].items():
        if folder_signature(folder) != signature or (snapshot_revision(Path(folder)) and not hub_offline()):
            return None
    return meta
