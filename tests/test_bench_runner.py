"""benchmarks/run_all.py: a wrong name is refused before any benchmark runs or results.json changes."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_benchmark_leaves_results_untouched():
    results = ROOT / "benchmarks" / "results.json"
    before = results.read_bytes() if results.exists() else None
    for argv in (["trainin"], ["training", "--nope"]):
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), *argv],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "==" not in proc.stdout  # no benchmark started
    assert (results.read_bytes() if results.exists() else None) == before


def test_help_lists_the_benchmarks():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for name in ("epoch", "training", "reproduce"):
        assert name in proc.stdout


def test_median_bounds_are_the_sign_test_order_statistics():
    # oracle: the exact binomial tail by enumeration (math.comb), not scipy
    import math

    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import median_bounds

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 6, 10, 19, 20, 40):
        cdf = [sum(math.comb(n, i) for i in range(j + 1)) / 2**n for j in range(n)]
        s = next((s for s in range(1, n + 1) if cdf[s - 1] >= 0.95), n)
        x = rng.permutation(n) + 1.0  # the order statistics are 1..n, shuffled
        low, high, cov = median_bounds(x)
        assert (low, high) == (n + 1 - s, s) and abs(cov - cdf[s - 1]) < 1e-12
    # e.g. 19 runs: the 14th fastest bounds the median from above at 96.8 % (14 of 19 below: p = 0.032)
    assert median_bounds(np.arange(1.0, 20.0))[1] == 14.0
