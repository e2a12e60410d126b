"""Where llara-bench caches what it builds or downloads (LLARA_BENCH_CACHE, default ~/.cache/llara-bench)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_root() -> Path:
    return Path(os.environ.get("LLARA_BENCH_CACHE", Path.home() / ".cache" / "llara-bench"))


def cached_build(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, built first if absent: ``build(path)`` fills ``path``, an empty scratch folder beside it
    that is then renamed into place, so an interrupted build leaves nothing half-written and concurrent
    builders do not collide (the first rename wins; the others use its folder)."""
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            build(scratch)
            os.replace(scratch, folder)
        except OSError:
            if not folder.is_dir():
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return folder
