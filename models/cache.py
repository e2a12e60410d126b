"""Where llara-bench caches what it builds or downloads (LLARA_BENCH_CACHE, default ~/.cache/llara-bench)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("LLARA_BENCH_CACHE", Path.home() / ".cache" / "llara-bench"))
