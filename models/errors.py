"""Errors shared by every package; each names what is wrong and what was expected."""

from __future__ import annotations


class LlaraBenchError(Exception):
    """Base class for errors the command line reports without a traceback."""


class ConfigError(LlaraBenchError, ValueError):
    """A suite or configuration file (or command-line value) that does not fit its schema."""


class NothingToIndex(LlaraBenchError):
    """A corpus that gives an index nothing (every document empty, or only stop words for BM25): every query
    would score 0, which is not a result."""


class UnknownNameError(LlaraBenchError, KeyError):
    """An unknown model, dataset or suite name, with close matches suggested."""

    def __init__(self, kind: str, name: str, known: list[str]):
        import difflib

        self.kind, self.name = kind, name
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(known)) if len(known) <= 30 else f"{len(known)} names"
        self.message = f"unknown {kind} {name!r}.{hint} Known: {listing}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class NonFiniteEmbeddings(LlaraBenchError):
    """An encoder returned NaN or infinite vectors: they would rank documents arbitrarily (FAISS puts NaN
    anywhere), so the run stops instead of scoring them."""

    @classmethod
    def check(cls, vectors, model: str, names=None, what: str = "text") -> None:
        """Raise for ``vectors`` (n, dim) with a row that is not finite, naming ``model`` and the first such
        row's name (``names[i]``, else its row number)."""
        import numpy as np

        finite = np.isfinite(vectors).all(axis=1)
        if finite.all():
            return
        first = int(np.argmin(finite))
        name = repr(names[first]) if names is not None else f"at row {first}"
        raise cls(f"{model}: the encoder returned NaN or infinite embeddings for {int((~finite).sum())} of "
                  f"{len(finite)} texts, the first for {what} {name}; nothing was cached or scored. Check the model's "
                  "weights, or run it in float32 (--dtype float32): float16 overflows easily")
