"""rank_tests against scipy.stats (the oracle): the same floats, to the bit, on random samples."""

import numpy as np
import pytest
from scipy import stats

from sparsenet.experiments.rank_tests import bootstrap_ci, kendall_tau_p, wilcoxon_p

ALTERNATIVES = ("two-sided", "greater", "less")


def _samples(rng, n, kind):
    if kind == "continuous":
        return rng.normal(size=n)
    if kind == "ties":
        return np.round(rng.normal(size=n), 1)
    return rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 3.0], size=n)  # zeros and ties


@pytest.mark.parametrize("kind", ["continuous", "ties", "zeros"])
def test_wilcoxon_equals_scipy(kind):
    rng = np.random.default_rng(len(kind))
    checked = 0
    for n in (1, 2, 3, 5, 8, 9, 13, 20, 45, 50):
        for _ in range(6):
            d = _samples(rng, n, kind)
            if not np.any(d != 0):
                continue
            for alternative in ALTERNATIVES:
                # (scipy's permutation test, "auto" with ties past 8 values, takes seconds a call)
                for method in ("auto", "approx") if kind == "continuous" or n <= 8 else ("approx",):
                    ours = wilcoxon_p(d, alternative, method)
                    if ours is None:
                        continue
                    theirs = float(stats.wilcoxon(d, zero_method="zsplit", alternative=alternative,
                                                  method="asymptotic" if method == "approx" else method).pvalue)
                    assert ours == theirs or (np.isnan(ours) and np.isnan(theirs)), (d, alternative, method)
                    checked += 1
    assert checked > 150


def test_wilcoxon_leaves_uncovered_cases_to_scipy():
    assert wilcoxon_p(np.arange(1.0, 60.0), "two-sided", "auto") is None  # n > 50: scipy decides
    assert wilcoxon_p([1.0, np.nan, 2.0], "less") is None


@pytest.mark.parametrize("n, levels", [(25, 10), (30, 3), (45, 1000), (40, 10 ** 9), (20, 4)])
def test_kendall_equals_scipy(n, levels):
    rng = np.random.default_rng(n)
    for _ in range(10):
        x = np.repeat(np.arange(5.0), -(-n // 5))[:n] if levels < 10 ** 9 else rng.normal(size=n)
        y = np.round(rng.random(n) * levels) / levels
        ours = kendall_tau_p(x, y)
        res = stats.kendalltau(x, y)
        if ours is None:  # only where scipy runs its exact test
            assert n <= 33 and len(set(x)) == n and len(set(y)) == n
            continue
        assert ours == (float(res.statistic), float(res.pvalue))


def test_kendall_exact_cases_are_left_to_scipy():
    assert kendall_tau_p(np.arange(10.0), np.arange(10.0)[::-1] + 0.5) is None


def _tau(x, y, axis=-1):
    from sparsenet.experiments.claims import _tau_b

    return _tau_b(x, y, axis=axis)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(size=15 + 10 * seed), 2)
    ours = bootstrap_ci((d,), np.median, n_resamples=500, rng=np.random.default_rng(seed))
    ci = stats.bootstrap((d,), np.median, n_resamples=500, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    assert ours == (float(ci.low), float(ci.high))
    x = np.repeat(np.arange(5.0), 5)
    v = np.round(rng.random(25), 1)
    ours = bootstrap_ci((x, v), _tau, n_resamples=400, rng=np.random.default_rng(seed))
    ci = stats.bootstrap((x, v), _tau, paired=True, vectorized=True, n_resamples=400, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    assert ours == (float(ci.low), float(ci.high))


def test_wilcoxon_sign_flips_up_to_13_values():
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0, 3.0, -4.0, 5.0, 6.0, 0.5])
    for alternative in ALTERNATIVES:
        assert wilcoxon_p(d, alternative, "auto") == float(
            stats.wilcoxon(d, zero_method="zsplit", alternative=alternative).pvalue)
