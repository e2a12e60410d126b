"""How numbers read in every output: a dash for a missing value, p-values floored at 0.0001, sizes."""

from __future__ import annotations

import math

DASH = "–"


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def number(v, spec: str = ".4f") -> str:
    return DASH if missing(v) else format(v, spec)


def pvalue(p) -> str:
    if missing(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def p_of(c) -> str:
    """A comparison's p: "< 1/(R+1)" (e.g. "< 0.0001" for 10,000 sign flips) when no resample reached the
    observed difference, where the +1 convention's value would read as a measurement."""
    return f"< {c.p_floor:.2g}" if c.p_at_floor else pvalue(c.p_value)


def p_adjusted_of(c) -> str:
    """A comparison's corrected p; an upper bound (≤) when its p is (`p_of`)."""
    return f"≤ {pvalue(c.p_adjusted)}" if c.p_at_floor else pvalue(c.p_adjusted)


def size_bytes(n) -> str:
    if not n:
        return DASH
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024


def parameters(n) -> str:
    if not n:
        return DASH
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)
