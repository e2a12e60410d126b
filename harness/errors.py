"""Errors that tell the user which file, line or field is wrong and what was expected."""

from __future__ import annotations

from pathlib import Path

from llara_bench.models.errors import ConfigError, LlaraBenchError, UnknownNameError

__all__ = ["ConfigError", "DataFormatError", "LlaraBenchError", "UnknownNameError"]


class DataFormatError(LlaraBenchError, ValueError):
    """Malformed input data: names the file, the line (1-based) or field, and what was expected."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        if field is not None:
            where += f" (field {field!r})"
        super().__init__(f"{where}: {message}")
