"""One definition of "offline", read from the environment each time it is asked (a user or a test may set the
variables after import), with the true values Hugging Face's libraries accept: 1, true, yes, on (any case).

Here in ``models``, which imports neither harness nor adaptation, so that all three ask the same question.
"""

from __future__ import annotations

import os

from huggingface_hub.constants import ENV_VARS_TRUE_VALUES


def _true(value: str | None) -> bool:
    return (value or "").upper() in ENV_VARS_TRUE_VALUES


def hub_offline() -> bool:
    """The Hugging Face Hub will not be asked: a load uses the snapshot already cached. Read as huggingface_hub
    reads it (HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE when that is unset), but now rather than at its import."""
    return _true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))


def offline() -> bool:
    """Downloads are off: LLARA_BENCH_OFFLINE, or Hugging Face's switch for the Hub or for its datasets."""
    return _true(os.environ.get("LLARA_BENCH_OFFLINE")) or _true(os.environ.get("HF_DATASETS_OFFLINE")) \
        or hub_offline()
