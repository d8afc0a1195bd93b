"""rank_tests against scipy.stats (the oracle): the same floats, to the bit, on random samples."""

import warnings

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


@pytest.mark.parametrize("kind", ["continuous", "ties", "constant", "two_levels", "nan", "inf"])
def test_bootstrap_equals_scipy_on_every_size_and_kind(kind):
    """As the claims call it (np.median of one sample; τ-b of paired samples), n = 2..40, the report's
    confidence and another: scipy's interval to the bit (NaN where scipy's is NaN)."""
    rng = np.random.default_rng(["continuous", "ties", "constant", "two_levels", "nan", "inf"].index(kind))
    checked = 0
    for n in range(2, 41, 2):
        d = rng.normal(size=n)
        if kind == "ties":
            d = np.round(d)
        elif kind == "constant":
            d = np.full(n, 0.3)
        elif kind == "two_levels":
            d = rng.integers(0, 2, n).astype(float)
        elif kind in ("nan", "inf"):
            d[rng.integers(n)] = np.nan if kind == "nan" else np.inf
        x = np.repeat(np.arange(4.0), -(-n // 4))[:n]
        for samples, statistic, confidence in (((d,), np.median, 0.95), ((x, d), _tau, 0.9)):
            seed = int(rng.integers(2 ** 32))
            ours = bootstrap_ci(samples, statistic, n_resamples=301, rng=np.random.default_rng(seed),
                                confidence=confidence)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning on NaN intervals
                ci = stats.bootstrap(samples, statistic, paired=True, n_resamples=301, method="percentile",
                                     confidence_level=confidence, rng=np.random.default_rng(seed)).confidence_interval
            theirs = (float(ci.low), float(ci.high))
            assert np.array_equal(ours, theirs, equal_nan=True), (n, statistic, ours, theirs)
            checked += 1
    assert checked == 40


@pytest.mark.parametrize("samples, kwargs, match", [
    ((np.arange(6.0), np.arange(8.0)), {}, "'samples' of bootstrap_ci must have one length"),
    ((np.arange(8.0), np.arange(6.0)), {}, "'samples' of bootstrap_ci must have one length"),
    ((np.array([1.0]),), {}, "'samples' of bootstrap_ci must hold at least 2 values"),
    ((np.arange(12.0).reshape(3, 4),), {}, "'samples' of bootstrap_ci must be 1-D"),
    ((np.arange(6.0),), {"n_resamples": 0}, r"'n_resamples' parameter of bootstrap_ci must be an int in the range \[1, inf\)"),
    ((np.arange(6.0),), {"confidence": 1.5}, r"'confidence' parameter of bootstrap_ci must be a float in the range \[0, 1\]"),
])
def test_bootstrap_rejects_what_scipy_rejects(samples, kwargs, match):
    """Bad input is a ValueError naming it (scipy raises on each, except a 2-D sample, which it takes as
    one sample per row, and a confidence beyond [0, 1], where it returns NaN), never an interval from
    part of the data, an IndexError or the quantiles of a flattened 2-D distribution."""
    kw = {"n_resamples": 50, "confidence": 0.95, **kwargs}
    statistic = np.median if len(samples) == 1 else _tau
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(samples, statistic, rng=np.random.default_rng(0), **kw)
    if samples[0].ndim > 1:  # scipy answers per row (our old code returned a pair of numbers from the flat array)
        ci = stats.bootstrap(samples, statistic, n_resamples=50, method="percentile", axis=-1,
                             rng=np.random.default_rng(0)).confidence_interval
        assert np.shape(ci.low) == (samples[0].shape[0],)
    elif kw["confidence"] <= 1:
        with pytest.raises(ValueError):
            stats.bootstrap(samples, statistic, paired=True, n_resamples=kw["n_resamples"], method="percentile",
                            confidence_level=kw["confidence"], axis=-1, rng=np.random.default_rng(0))


def _edge_samples():
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 6, 20, 50, 51, 60):
        yield np.zeros(n)  # all differences zero
        yield np.full(n, -1.5)  # all tied, one sign
        yield np.where(rng.random(n) < 0.5, -0.0, 2.0)  # signed zeros
        yield rng.normal(size=n)
    yield from (np.array([np.inf, 1.0, 2.0]), np.array([-np.inf, 1.0, 2.0, 3.0]), np.array([np.nan, 1.0]),
                np.array([]))


def test_wilcoxon_edge_cases_equal_scipy_or_are_left_to_it():
    """n = 1, all zeros, all ties, signed zeros, infinite and NaN values, empty, n past scipy's exact
    limit of 50: either scipy's p-value to the bit (NaN where scipy's is NaN) or None (scipy decides,
    and raises where it raises)."""
    checked = 0
    for d in _edge_samples():
        for alternative in ALTERNATIVES:
            for method in ("auto", "approx"):
                ours = wilcoxon_p(d, alternative, method)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        theirs = float(stats.wilcoxon(d, zero_method="zsplit", alternative=alternative,
                                                      method="asymptotic" if method == "approx" else method).pvalue)
                    except ValueError:
                        theirs = None
                if ours is None:
                    continue
                assert theirs is not None and np.array_equal(ours, theirs, equal_nan=True), (d, alternative, method)
                checked += 1
    assert checked > 150


def test_kendall_edge_cases_equal_scipy_or_are_left_to_it():
    """Constant samples, n = 1..3, infinite and NaN values, n = 60 with and without ties."""
    rng = np.random.default_rng(6)
    cases = [(np.arange(n, dtype=float), np.full(n, 2.0)) for n in (1, 2, 3, 10, 40)]
    cases += [(np.array([1.0, 2, np.inf, 3, 3]), np.array([1.0, 2, 3, 4, -np.inf])),
              (np.array([1.0, np.nan, 2, 3]), np.arange(4.0)),
              (rng.normal(size=60), rng.normal(size=60)), (np.round(rng.normal(size=60)), rng.normal(size=60))]
    checked = 0
    for x, y in cases:
        ours = kendall_tau_p(x, y)
        if ours is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.kendalltau(x, y)
        assert ours == (float(res.statistic), float(res.pvalue))
        checked += 1
    assert checked == 2
    with pytest.raises(ValueError):  # as scipy: lengths differ
        kendall_tau_p(np.arange(5.0), np.arange(4.0))
