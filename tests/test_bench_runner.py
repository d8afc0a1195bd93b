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
