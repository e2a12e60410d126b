"""Paired significance over per-query scores: a randomisation (sign-flip) test, the paired t-test,
confidence intervals, Holm and Bonferroni corrections (statsmodels' ``multipletests``), win/tie/loss
counts, and every pair of models at once (as ranx's ``compare``).

The randomisation test follows ``scipy.stats.permutation_test(..., permutation_type="samples")``
with the mean difference as statistic: the same p-value convention (two-sided = twice the smaller
one-sided p, capped at 1; ``+1`` in numerator and denominator when sampling, none when every sign
vector is enumerated), and the same float tolerance. It is written here because scipy's version
takes ~19 s for one comparison on 7,000 queries; this one flips the signs of every comparison's
differences on one dataset with one matrix product, ~0.1 s. ``tests/test_report_stats.py`` checks
it against scipy. The corrections are statsmodels' own (a well-kept, widely cited implementation,
and its other methods are one name away); ranx's ``compare`` was not used: it computes its own
metrics (the harness's are ir_measures') and needs numba.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

TESTS = ("randomization", "t-test")
CORRECTIONS = ("holm", "bonferroni")
DEFAULT_RESAMPLES = 10_000
_CHUNK = 1024  # sign vectors per matrix product: bounds memory at n_queries × 1024 × 8 bytes


def randomization_pvalues(diffs: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Two-sided p-values of the paired sign-flip test, one per column of ``diffs`` (queries × comparisons).

    Every column is tested against the same sign vectors. When 2**n_queries <= n_resamples every
    sign vector is enumerated and the p-value is exact, as scipy does.
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.ndim == 1:
        diffs = diffs[:, None]
    n, m = diffs.shape
    observed = diffs.mean(axis=0)
    gamma = np.abs(observed) * np.finfo(np.float64).eps * 100  # scipy's tolerance for float ties
    total = diffs.sum(axis=0)
    less = np.zeros(m)
    greater = np.zeros(m)
    exact = _enumerates(n, n_resamples)

    def tally(bits: np.ndarray) -> None:
        # a sign vector s = 2b - 1 gives mean(s * d) = (2 b·d - sum(d)) / n
        null = (2.0 * (bits @ diffs) - total) / n
        less[:] += (null <= observed + gamma).sum(axis=0)
        greater[:] += (null >= observed - gamma).sum(axis=0)

    if exact:
        for chunk in _batched(itertools.product((0.0, 1.0), repeat=n), _CHUNK):
            tally(np.array(chunk))
        count, adjustment = 2 ** n, 0
    else:
        rng = np.random.default_rng(seed)
        for start in range(0, n_resamples, _CHUNK):
            rows = min(_CHUNK, n_resamples - start)
            tally(rng.integers(0, 2, size=(rows, n), dtype=np.uint8).astype(np.float64))
        count, adjustment = n_resamples, 1
    p_less = (less + adjustment) / (count + adjustment)
    p_greater = (greater + adjustment) / (count + adjustment)
    return np.minimum(1.0, 2 * np.minimum(p_less, p_greater))


def _batched(iterable, size):
    it = iter(iterable)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    return adjust(pvalues, "holm")


def bonferroni(pvalues) -> np.ndarray:
    return adjust(pvalues, "bonferroni")


def adjust(pvalues, correction: str) -> np.ndarray:
    """statsmodels' ``multipletests`` adjusted p-values over ``pvalues`` as one family (nan: no test, kept out)."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; expected one of {', '.join(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        out[tested] = multipletests(p[tested], method=correction)[1]
    return out


@dataclass(frozen=True)
class Comparison:
    """One model (A) against another (B, the baseline in the baseline view) on one dataset's per-query scores."""

    n: int
    mean: float  # A's mean over the paired queries
    baseline_mean: float  # B's
    delta: float  # mean(A - B)
    ci_low: float  # paired t interval of delta
    ci_high: float
    p_value: float
    p_adjusted: float
    wins: int
    ties: int
    losses: int
    p_floor: float | None = None  # 1/(resamples+1) for a sampled randomisation test: the smallest p it resolves
    family: int = 1  # comparisons corrected together (the correction's m)

    def significant(self, alpha: float) -> bool:
        return self.p_adjusted < alpha

    @property
    def p_at_floor(self) -> bool:
        """No resample was as extreme as the observed difference: p is an upper bound (shown "< 1/(R+1)")."""
        # two-sided: twice (0 + 1) / (R + 1)
        return self.p_floor is not None and self.p_value <= 2 * self.p_floor * (1 + 1e-9)


def compare(model_scores: list[np.ndarray], baseline: np.ndarray, *, test: str = "randomization",
            correction: str = "holm", confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
            seed: int = 0) -> list[Comparison]:
    """Compare each model's per-query scores with the baseline's (same queries, same order) as one family."""
    return compare_pairs([(s, baseline) for s in model_scores], test=test, correction=correction,
                         confidence=confidence, n_resamples=n_resamples, seed=seed)


def compare_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], *, test: str = "randomization",
                  correction: str = "holm", confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                  seed: int = 0) -> list[Comparison]:
    """Compare A with B for each (A, B) pair of per-query scores (same queries, same order); the pairs are one
    family for the correction (all pairs of models on a dataset, as ranx's ``compare``; or each model against
    the baseline)."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    if not pairs:
        return []
    a = np.column_stack([np.asarray(x, dtype=np.float64) for x, _ in pairs])
    b = np.column_stack([np.asarray(y, dtype=np.float64) for _, y in pairs])
    diffs = a - b
    n = diffs.shape[0]
    t_tests = [paired_t(a[:, j], b[:, j], confidence) for j in range(diffs.shape[1])]
    floor = None
    if test == "randomization" and n:
        pvalues = randomization_pvalues(diffs, n_resamples, seed)
        if not _enumerates(n, n_resamples):
            floor = 1 / (n_resamples + 1)
    else:
        pvalues = np.array([t[0] for t in t_tests])
    adjusted = adjust(pvalues, correction)
    return [Comparison(n=n, mean=_mean(a[:, j]), baseline_mean=_mean(b[:, j]), delta=_mean(diffs[:, j]),
                       ci_low=t_tests[j][1], ci_high=t_tests[j][2], p_value=float(pvalues[j]),
                       p_adjusted=float(adjusted[j]), wins=int((diffs[:, j] > 0).sum()),
                       ties=int((diffs[:, j] == 0).sum()), losses=int((diffs[:, j] < 0).sum()),
                       p_floor=floor, family=len(pairs))
            for j in range(diffs.shape[1])]


def _enumerates(n: int, n_resamples: int) -> bool:
    """True when every sign vector is enumerated (exact p) rather than sampled."""
    return n < 63 and 2 ** n <= n_resamples


def paired_t(scores: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """scipy's paired t-test of scores against baseline: (two-sided p, CI low, CI high) of the mean difference.

    Fewer than two queries give no test (nan); identical scores give p = 1 and the interval (0, 0),
    where scipy would return nan for the p-value.
    """
    d = scores - baseline
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan")
    if not d.any():
        return 1.0, 0.0, 0.0
    with warnings.catch_warnings():  # constant non-zero differences: scipy warns, and answers p = 0
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ttest_rel(scores, baseline)
        ci = result.confidence_interval(confidence)
    return float(result.pvalue), float(ci.low), float(ci.high)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")
