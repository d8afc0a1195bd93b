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


def test_median_interval_matches_the_textbook_order_statistics():
    # Distribution-free 95 % intervals for a median (e.g. Conover, Practical Nonparametric Statistics,
    # table A3): n = 6 -> (x1, x6), 96.9 %; n = 10 -> (x2, x9), 97.9 %; n = 20 -> (x6, x15), 95.9 %;
    # with n = 5 even (x1, x5) covers only 1 - 2/32 = 93.75 %.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import median_interval

    rng = __import__("numpy").random.default_rng(0)
    for n, (r, s), coverage in [(6, (1, 6), 0.96875), (10, (2, 9), 0.978515625), (20, (6, 15), 0.958610535),
                                (5, (1, 5), 0.9375)]:
        x = rng.permutation(n) + 1.0  # the order statistics are 1..n, shuffled
        low, high, cov = median_interval(x)
        assert (low, high) == (r, s)
        assert abs(cov - coverage) < 1e-8
