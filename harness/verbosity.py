"""How much the command line prints.

- normal (default): results, the harness's own progress (a bar on a terminal, a log line at most every
  ``LOG_EVERY`` seconds otherwise) and its warnings; libraries' progress bars ("Loading weights", "Writing
  model shards", GGUF conversion) and their harmless warnings are silenced;
- verbose (``--verbose``): the libraries' bars and warnings as well;
- quiet (``--quiet``): results and errors only.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

LIBRARY_LOGGERS = ("transformers", "accelerate", "peft", "sentence_transformers", "huggingface_hub", "datasets",
                   "mteb", "beir", "bm25s", "faiss", "ir_datasets", "torch.distributed")
LIBRARY_MODULES = r"(transformers|accelerate|peft|sentence_transformers|huggingface_hub|datasets|mteb|beir|bm25s|" \
                  r"torch|ir_datasets|ir_measures|pytrec_eval|gguf)(\.|$)"
# seconds between progress log lines when the output is not a terminal (LLARA_BENCH_LOG_EVERY to change)
LOG_EVERY = float(os.environ.get("LLARA_BENCH_LOG_EVERY", "10"))

_level = "normal"


def level() -> str:
    return _level


def configure(verbose: bool = False, quiet: bool = False) -> None:
    """Set the level for this process: llara-bench's own log messages go to stderr (info and up; errors only
    when quiet); below verbose, the libraries are silenced (before or after they are imported)."""
    global _level
    _level = "verbose" if verbose else "quiet" if quiet else "normal"
    own = logging.getLogger("llara_bench")
    if not any(isinstance(h, _Stderr) for h in own.handlers):
        own.addHandler(_Stderr())
    own.setLevel(logging.ERROR if _level == "quiet" else logging.INFO)
    if _level == "verbose":
        return
    # read when the libraries are imported: Hugging Face bars (transformers' logging.tqdm included), tqdm bars
    # libraries draw directly (transformers' GGUF conversion), transformers' log level
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARY_MODULES)
    if "transformers" in sys.modules:  # already imported: its settings were read
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


class _Stderr(logging.Handler):
    """``message`` for information, ``warning: message`` / ``error: message`` above it, to the stderr of the
    moment (not the one at set-up, which a test runner may have swapped and closed since)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            sys.stderr.write((text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}")
                             + "\n")
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)
