"""Shared helpers of the benchmarks: best-of timing, interleaved comparisons, machine description.

Every ratio is measured inside one process run: the two sides of a ratio are timed alternately
(A, B, A, B, ...) and each side keeps its best time, so that a burst of load from other processes
on this shared 2-core machine hits both sides instead of one.
"""

import datetime
import os
import platform
import time

import numpy as np


def best_of(fn, repeats):
    """Smallest wall time (seconds) of ``repeats`` calls of ``fn()``."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved(fns, repeats, warmup=1):
    """Best wall time of each callable in ``fns`` (dict name -> fn), timed round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: np.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def median_bounds(values, confidence=0.95):
    """One-sided distribution-free confidence bounds for the median of ``values`` (i.i.d. repeats).

    The upper bound is the order statistic x_(s) with the smallest s such that P(Bin(n, ½) < s) ≥
    ``confidence`` (the median is below it with at least that probability: a sign test); the lower
    bound is x_(n+1-s).  Returns (lower, upper, coverage); with too few values for ``confidence`` the
    bounds are the extremes and ``coverage`` says what they cover (5 repeats: min and max, 96.9 %).
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    s = next((s for s in range(1, n + 1) if binom.cdf(s - 1, n, 0.5) >= confidence), n)
    return float(x[n - s]), float(x[s - 1]), float(binom.cdf(s - 1, n, 0.5))


def case(name, measured, target, op, detail=None, skipped=None, met=None):
    """One benchmark row: ``op`` is "<=" or ">="; ``measured`` None when skipped.  ``met`` (True, False,
    or "inconclusive") overrides the comparison of ``measured`` with ``target``, e.g. for a verdict
    from an interval over repeats."""
    if met is None and measured is not None and np.isfinite(measured):
        met = bool(measured <= target) if op == "<=" else bool(measured >= target)
    return {"case": name, "measured": None if measured is None else float(measured), "target": f"{op} {target:g}",
            "met": met, "detail": detail or {}, "skipped": skipped}


def machine():
    """Cores, CPU, numpy/BLAS description (numpy.show_config and threadpoolctl when available)."""
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = {key: blas.get(key) for key in ("name", "version", "openblas configuration")}
    except Exception as exc:  # pragma: no cover - depends on the numpy build
        info["numpy_blas"] = f"unavailable ({exc})"
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{key: p.get(key) for key in ("internal_api", "version", "num_threads", "architecture")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def planted_xy(n, d, k, dtype=np.float64, seed=0):
    """Gaussian X, a random dense W and relu² targets (timing data; no recovery is measured)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=dtype)
    W = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(dtype)
    y = (np.maximum(X @ W, 0) ** 2).sum(axis=1).astype(dtype)
    return X, y, W
