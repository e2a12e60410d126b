"""Whether a dataset may be downloaded now: one answer, with its reason, for every source that downloads
(BEIR's zip files, ir_datasets' files).

Nothing is downloaded when the offline switches say so (`models.offline.offline`: LLARA_BENCH_OFFLINE,
HF_HUB_OFFLINE, ...) or inside `no_downloads` (``--plan-only``, which must cost nothing); a source that
would download raises `DownloadRefused`, one line naming the dataset, the reason and what to do.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from llara_bench.models.errors import LlaraBenchError
from llara_bench.models.offline import offline

OFFLINE = "downloads are off (LLARA_BENCH_OFFLINE / HF_HUB_OFFLINE)"

_refused: ContextVar[str | None] = ContextVar("llara_bench_downloads_refused", default=None)


class DownloadRefused(LlaraBenchError):
    """A dataset that is not here, when nothing may be downloaded."""


def refusal() -> str | None:
    """Why nothing may be downloaded now (`no_downloads`'s reason, else the offline switches), or None."""
    return _refused.get() or (OFFLINE if offline() else None)


@contextmanager
def no_downloads(reason: str) -> Iterator[None]:
    """Within the block, every source refuses to download, with `reason`."""
    token = _refused.set(reason)
    try:
        yield
    finally:
        _refused.reset(token)
