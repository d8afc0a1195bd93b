"""The rank tests and the bootstrap of the claims, in numpy with scipy's arithmetic.

Importing ``scipy.stats`` costs ~1.2 s of CPU, about a tenth of writing the whole report. The report
needs four of its functions, on a few dozen small samples; for the cases the report meets, these
functions repeat scipy 1.17's computation step for step and return the same floats (tested against
scipy on random samples, to the bit). A case they do not cover returns None, and the caller asks
scipy (imported then):

* :func:`wilcoxon_p`: signed-rank test with ``zero_method="zsplit"``, no continuity correction;
  ``method="auto"`` (exact null distribution without ties or zeros, all 2^n sign flips with them for
  n ≤ 13) or ``"approx"`` (normal approximation with the tie correction);
* :func:`kendall_tau_p`: Kendall τ-b with the normal approximation (samples with ties, or larger
  than 33);
* :func:`bootstrap_ci`: percentile bootstrap interval of a vectorized statistic, one sample or
  paired samples, from a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from sparsenet._validation import check_scalar

__all__ = ["wilcoxon_p", "kendall_tau_p", "bootstrap_ci"]


def _ndtr(x):
    from scipy.special import ndtr

    return ndtr(x)


def _normal_p(z, alternative):
    """scipy.stats' ``_get_pvalue`` with its standard normal."""
    if alternative == "less":
        return _ndtr(z)
    if alternative == "greater":
        return _ndtr(-z)
    return 2 * _ndtr(-np.abs(z))


def _average_ranks(a):
    """Average ranks (1-based) of ``a`` and the size of each group of ties (one entry per group)."""
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sizes = np.diff(np.r_[starts, a.size])
    ranks = np.empty(a.size)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return ranks, sizes


@lru_cache(maxsize=64)
def _wilcoxon_pmf(n: int) -> np.ndarray:
    """Null distribution of the signed-rank statistic r+ for n pairs (scipy's recursion)."""
    c = np.ones(1, dtype=np.float64)
    for k in range(1, n + 1):
        prev_c = c
        c = np.zeros(k * (k + 1) // 2 + 1, dtype=np.float64)
        m = len(prev_c)
        c[:m] = prev_c * 0.5
        c[-m:] += prev_c * 0.5
    return c


def _wilcoxon_cdf(k: int, n: int) -> float:
    pmf = _wilcoxon_pmf(n)
    if k <= n * (n + 1) / 4:
        return float(pmf[:k + 1].sum())
    return 1 - float(pmf[k + 1:].sum())


def _wilcoxon_sf(k: int, n: int) -> float:
    pmf = _wilcoxon_pmf(n)
    if k <= n * (n + 1) / 4:
        return float(pmf[k:].sum())
    return 1 - float(pmf[:k].sum())


def wilcoxon_p(d, alternative: str, method: str = "auto") -> float | None:
    """p-value of ``scipy.stats.wilcoxon(d, zero_method="zsplit", alternative=alternative,
    method=method)`` (``method`` "auto" or "approx"); None for a case not covered (n > 50 with
    "auto", a NaN or infinite value, one zero difference alone with "auto")."""
    d = np.asarray(d, dtype=float)
    n = d.size
    if n == 0 or n > 50 and method == "auto" or not np.isfinite(d).all():
        return None
    ranks, sizes = _average_ranks(np.abs(d))
    zero = d == 0
    r_zero_2 = np.sum(zero.astype(float) * ranks) / 2
    r_plus = np.sum((d > 0).astype(float) * ranks) + r_zero_2
    has_ties = bool(np.any(sizes > 1))
    if method == "auto":
        if not (has_ties or zero.any()):  # exact null distribution
            if alternative == "less":
                p = _wilcoxon_cdf(int(np.ceil(r_plus)), n)
            elif alternative == "greater":
                p = _wilcoxon_sf(int(np.floor(r_plus)), n)
            else:
                p = float(np.clip(2 * np.minimum(_wilcoxon_sf(int(np.floor(r_plus)), n),
                                                 _wilcoxon_cdf(int(np.ceil(r_plus)), n)), 0, 1))
            return p
        if n == 1:  # scipy's permutation test needs two values and raises
            return None
        if n <= 13:  # every sign flip: r+ of each (sums of half ranks, exact)
            flips = (np.arange(2 ** n)[:, None] >> np.arange(n)[::-1]) & 1
            signed = np.where(flips == 1, -d, d)
            null = ((signed > 0).astype(float) * ranks).sum(axis=-1) + r_zero_2
            gamma = abs(np.finfo(float).eps * 100 * r_plus)
            less = np.count_nonzero(null <= r_plus + gamma) / 2 ** n
            greater = np.count_nonzero(null >= r_plus - gamma) / 2 ** n
            p = {"less": less, "greater": greater}.get(alternative, min(less, greater) * 2)
            return float(np.clip(p, 0.0, 1.0))
    elif method != "approx":
        return None
    count = float(n)
    mn = count * (count + 1.) * 0.25
    se = count * (count + 1.) * (2. * count + 1.)
    tie_correct = float(np.sum(sizes.astype(float) ** 3 - sizes))
    se = np.sqrt((se - tie_correct / 2) / 24)
    z = (r_plus - mn) / se
    return float(_normal_p(z, alternative))


def kendall_tau_p(x, y) -> tuple[float, float] | None:
    """τ-b and two-sided p-value of ``scipy.stats.kendalltau(x, y)`` where scipy uses the normal
    approximation (ties, or more than 33 values); None otherwise (scipy's exact test)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    size = x.size
    if size < 3 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None

    def ties(values):
        cnt = np.unique(values, return_counts=True)[1].astype("int64")
        cnt = cnt[cnt > 1]
        return (int((cnt * (cnt - 1) // 2).sum()), int((cnt * (cnt - 1.) * (cnt - 2)).sum()),
                int((cnt * (cnt - 1.) * (2 * cnt + 5)).sum()))

    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    dis = int(np.count_nonzero(sx * sy < 0)) // 2  # discordant pairs
    cnt = np.unique(np.stack([x, y], axis=1), axis=0, return_counts=True)[1].astype("int64")
    ntie = int((cnt * (cnt - 1) // 2).sum())  # joint ties
    xtie, x0, x1 = ties(x)
    ytie, y0, y1 = ties(y)
    tot = (size * (size - 1)) // 2
    if xtie == tot or ytie == tot:
        return None
    if xtie == 0 and ytie == 0 and (size <= 33 or min(dis, tot - dis) <= 1):
        return None  # scipy's exact test
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    tau = con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    tau = np.minimum(1., max(-1., tau))
    m = size * (size - 1.)
    var = ((m * (2 * size + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (size - 2)))
    z = con_minus_dis / np.sqrt(var)
    return float(tau), float(_normal_p(z, "two-sided"))


def bootstrap_ci(samples, statistic, *, n_resamples: int, rng: np.random.Generator,
                 confidence: float = 0.95) -> tuple[float, float]:
    """``scipy.stats.bootstrap(samples, statistic, paired=True, vectorized=True, method="percentile",
    n_resamples=n_resamples, rng=rng).confidence_interval`` (one sample or paired samples; the same
    with ``paired=False`` for one sample): the resampled indices, the statistic along the last axis,
    and scipy's linear quantiles of the bootstrap distribution (NaN if it holds a NaN).

    Raises ValueError where scipy does (samples not all of one length, fewer than 2 values,
    ``n_resamples`` < 1), for samples not 1-D (scipy's 2-D case, one interval per row, is not
    repeated) and for ``confidence`` outside [0, 1] (scipy returns NaN)."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    n_resamples = check_scalar(n_resamples, "n_resamples", kind="int", low=1, owner="bootstrap_ci")
    confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0, owner="bootstrap_ci")
    shapes = [s.shape for s in samples]
    if not samples or any(len(shape) != 1 for shape in shapes):
        raise ValueError(f"The 'samples' of bootstrap_ci must be 1-D arrays (one or more). Got shapes "
                         f"{shapes} instead.")
    n = shapes[0][0]
    if any(shape != (n,) for shape in shapes):
        raise ValueError(f"The 'samples' of bootstrap_ci must have one length (paired). Got lengths "
                         f"{[shape[0] for shape in shapes]} instead.")
    if n < 2:
        raise ValueError(f"The 'samples' of bootstrap_ci must hold at least 2 values each. Got {n} instead.")
    i = rng.integers(0, n, size=(n_resamples, n), dtype="int64", endpoint=False)
    theta = np.asarray(statistic(*[s[..., i] for s in samples], axis=-1), dtype=float)
    alpha = np.asarray((1 - confidence) / 2, dtype=theta.dtype)
    p = np.stack((alpha, 1 - alpha), axis=-1)
    if np.isnan(theta).any():
        return math.nan, math.nan
    y = np.sort(theta, axis=-1)
    count = np.asarray(y.shape[-1], dtype=y.dtype)
    jg = p * count + (1 - p)
    j = jg // 1 - 1
    jp1 = jg // 1
    g = jg % 1
    g = np.where(j < 0, 0, g)
    j = np.clip(j, 0., count - 1)
    jp1 = np.clip(jp1, 0., count - 1)
    ci = (1 - g) * np.take(y, j.astype(np.int64)) + g * np.take(y, jp1.astype(np.int64))
    return float(ci[0]), float(ci[1])
