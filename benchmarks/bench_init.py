"""Case 3: tensor initialization cost in passes over X, and its growth in d and n.

Ratio = ``tensor_init(X, y, k)`` wall time ÷ one ``X @ W`` product (n = 1e5, d = 1000, k = 50,
planted relu² problem from ``make_planted``; both timed in this run).  Target ≤ 30.  Growth:
time at 2d ÷ time at d and time at 2n ÷ time at n, each ≤ 2.3 (O(n·d·k) per pass).
``SPARSENET_BENCH_INIT_SCALE`` (e.g. 0.2) scales n for a quicker look.
"""

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import best_of, case  # noqa: E402

from sparsenet.data import make_planted  # noqa: E402
from sparsenet.tensor_init import tensor_init  # noqa: E402

TARGET, GROWTH_TARGET = 30.0, 2.3


def _time_init(n, d, k, repeats, seed=0):
    """(best tensor_init seconds, best X·W seconds, error message or None)."""
    prob = make_planted(n, d, k, random_state=seed, n_test=10)
    X, y = prob.X, prob.y
    W = np.random.default_rng(seed).standard_normal((d, k))
    t_xw = best_of(lambda: X @ W, 3)
    err = None
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tensor_init(X, y, k, random_state=seed)
        except ValueError as exc:  # still timed: the cost is what is measured
            err = str(exc)[:200]
        best = min(best, time.perf_counter() - t0)
        t_xw = min(t_xw, best_of(lambda: X @ W, 1))
    return best, t_xw, err


def run(n=None, d=1000, k=50, repeats=2):
    scale = float(os.environ.get("SPARSENET_BENCH_INIT_SCALE", 1.0))
    n = int(n or 100_000 * scale)
    t, t_xw, err = _time_init(n, d, k, repeats)
    t2d, _, err2d = _time_init(n, 2 * d, k, 1)
    t2n, _, err2n = _time_init(2 * n, d, k, 1)
    detail = {"tensor_init_s": t, "XW_s": t_xw, "tensor_init_2d_s": t2d, "tensor_init_2n_s": t2n,
              "errors": {key: e for key, e in (("d", err), ("2d", err2d), ("2n", err2n)) if e}}
    return [
        case(f"tensor_init / one X·W product (n={n:g}, d={d}, k={k})", t / t_xw, TARGET, "<=", detail),
        case(f"tensor_init growth: time at 2d / time at d (d={d})", t2d / t, GROWTH_TARGET, "<=", detail),
        case(f"tensor_init growth: time at 2n / time at n (n={n:g})", t2n / t, GROWTH_TARGET, "<=", detail),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
