"""The report's statistics against scipy: randomisation test, paired t-test and interval; Holm/Bonferroni."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from llara_bench.reports.stats import bonferroni, compare, holm, paired_t, randomization_pvalues


def _scipy_randomization(model, base, n_resamples=10_000, seed=0):
    return stats.permutation_test((model, base), lambda x, y, axis: np.mean(x - y, axis=axis),
                                  permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                                  alternative="two-sided", random_state=seed).pvalue


def _pair(n, shift, seed, grades=False):
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    model = np.clip(base + rng.normal(shift, 0.25, n), 0, 1)
    if grades:  # metric-like scores with many exact ties (nDCG of a 3-doc ranking, say)
        base, model = np.round(base * 4) / 4, np.round(model * 4) / 4
    return model, base


@pytest.mark.parametrize("n,shift,grades", [(8, 0.1, False), (11, 0.0, True), (13, 0.15, False), (12, 0.3, True)])
def test_exact_randomization_equals_scipy(n, shift, grades):
    # 2**n <= 10,000 sign vectors: both enumerate every one, so the p-values must be identical
    model, base = _pair(n, shift, seed=n, grades=grades)
    assert randomization_pvalues(model - base)[0] == pytest.approx(_scipy_randomization(model, base), abs=1e-12)


def test_exact_randomization_equals_brute_force():
    # an independent enumeration, written out the slow way
    model, base = _pair(9, 0.2, seed=3)
    d = model - base
    observed = d.mean()
    null = np.array([np.mean(np.array(signs) * d) for signs in itertools.product((-1, 1), repeat=len(d))])
    p_less, p_greater = np.mean(null <= observed + 1e-12), np.mean(null >= observed - 1e-12)
    assert randomization_pvalues(d)[0] == pytest.approx(min(1.0, 2 * min(p_less, p_greater)), abs=1e-12)


@pytest.mark.parametrize("n,shift,grades", [(40, 0.05, True), (300, 0.02, False), (300, 0.0, False),
                                            (1000, 0.015, True)])
def test_sampled_randomization_agrees_with_scipy(n, shift, grades):
    # different random sign vectors: the two estimates of the same p differ by Monte Carlo error only
    model, base = _pair(n, shift, seed=n + 1, grades=grades)
    ours = randomization_pvalues(model - base, n_resamples=20_000)[0]
    theirs = _scipy_randomization(model, base, n_resamples=20_000)
    se = np.sqrt(max(theirs * (1 - theirs), 1e-4) / 20_000) * 2  # two-sided p is twice a one-sided estimate
    assert abs(ours - theirs) < 4 * se + 1e-4, (ours, theirs)


def test_randomization_columns_are_independent_tests_on_shared_signs():
    model_a, base = _pair(200, 0.05, seed=7)
    model_b = np.clip(base - 0.03, 0, 1)
    both = randomization_pvalues(np.column_stack([model_a - base, model_b - base]))
    assert both[0] == randomization_pvalues(model_a - base)[0]
    assert both[1] == randomization_pvalues(model_b - base)[0]


def test_randomization_is_seeded_and_bounded():
    model, base = _pair(500, 0.0, seed=11)
    assert randomization_pvalues(model - base, seed=1)[0] == randomization_pvalues(model - base, seed=1)[0]
    p = randomization_pvalues(np.full(500, 0.2), n_resamples=999)[0]
    assert p == pytest.approx(2 / 1000)  # nothing as extreme as the observed: the +1 floor, doubled
    assert randomization_pvalues(np.zeros(50))[0] == 1.0


@pytest.mark.parametrize("n,shift", [(5, 0.1), (40, 0.05), (300, -0.02)])
def test_paired_t_equals_scipy(n, shift):
    model, base = _pair(n, shift, seed=n)
    p, low, high = paired_t(model, base, 0.95)
    expected = stats.ttest_rel(model, base)
    ci = expected.confidence_interval(0.95)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)
    assert (low, high) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))
    assert low < (model - base).mean() < high


def test_paired_t_degenerate_cases():
    same = np.array([0.5, 0.25, 1.0])
    assert paired_t(same, same) == (1.0, 0.0, 0.0)  # scipy gives nan here
    assert all(np.isnan(v) for v in paired_t(np.array([1.0]), np.array([0.0])))


def test_holm_and_bonferroni_by_hand():
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bonferroni([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == pytest.approx([0.2])


def test_holm_is_never_above_bonferroni_and_never_below_raw():
    p = np.random.default_rng(0).random(12) ** 3
    assert np.all(holm(p) <= bonferroni(p) + 1e-15)
    assert np.all(holm(p) >= p)


def test_compare_counts_and_corrects_as_one_family():
    base = np.array([0.0, 0.5, 1.0, 0.5, 0.25, 0.75])
    better = np.array([0.5, 0.5, 1.0, 1.0, 0.5, 0.75])
    worse = np.array([0.0, 0.25, 0.5, 0.5, 0.0, 0.5])
    found = compare([better, worse], base, test="t-test", correction="holm")
    assert [(c.wins, c.ties, c.losses) for c in found] == [(3, 3, 0), (0, 2, 4)]
    assert found[0].delta == pytest.approx((better - base).mean())
    raw = [stats.ttest_rel(better, base).pvalue, stats.ttest_rel(worse, base).pvalue]
    assert [c.p_value for c in found] == pytest.approx(raw)
    assert [c.p_adjusted for c in found] == pytest.approx(holm(raw))
    rand = compare([better, worse], base)  # randomisation by default; intervals stay the t interval
    assert [c.p_value for c in rand] == pytest.approx(randomization_pvalues(np.column_stack([better - base,
                                                                                             worse - base])))
    assert (rand[0].ci_low, rand[0].ci_high) == (found[0].ci_low, found[0].ci_high)
