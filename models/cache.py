"""Where llara-bench caches what it builds or downloads (LLARA_BENCH_CACHE, default ~/.cache/llara-bench)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from llara_bench.models.files import move_into_place, scratch_beside


def cache_root() -> Path:
    return Path(os.environ.get("LLARA_BENCH_CACHE", Path.home() / ".cache" / "llara-bench"))


def cached_build(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, built first if absent: ``build(path)`` fills ``path``, an empty scratch folder beside it
    that is then renamed into place, so an interrupted build leaves nothing half-written and concurrent
    builders do not collide (the first rename wins; the others use its folder)."""
    if not folder.is_dir():
        with scratch_beside(folder) as scratch:
            build(scratch)
            move_into_place(scratch, folder, existing="keep")
    return folder
