"""Memory: peak resident memory of one large-problem epoch (float32, n=1e6, d=1000, k=50) ÷ size of X.

Runs in a child process so that ``ru_maxrss`` (the peak resident set) belongs to this measurement
only: the child makes X (float32, generated in place), then trains one full-batch IHT epoch with
``train_iht(..., batch_size=None, dtype=np.float32)``.  Reported: peak RSS ÷ X.nbytes (target < 2.5;
this includes X itself, the interpreter and numpy) and, from tracemalloc, the extra bytes the epoch
allocated at its peak.  ``SPARSENET_BENCH_MEMORY_N`` overrides n (e.g. on a machine with less RAM).
"""

import json
import os
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(__file__))
from _common import case  # noqa: E402

TARGET = 2.5

_CHILD = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    import numpy as np
    from sparsenet.sparsify import Threshold
    from sparsenet.train import train_iht
    n, d, k = (int(a) for a in sys.argv[1:4])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    W0 = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(np.float32)
    y = np.empty(n, dtype=np.float32)
    for s in range(0, n, 65536):  # targets in chunks: no n×k temporary of the whole data
        y[s:s + 65536] = (np.maximum(X[s:s + 65536] @ W0, 0) ** 2).sum(axis=1)
    W0 += np.float32(0.1 / np.sqrt(d)) * rng.standard_normal((d, k), dtype=np.float32)
    v0 = np.ones(k, dtype=np.float32)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    res = train_iht(X, y, W0, v0, sparsifier=Threshold(0.01), epochs=1, batch_size=None, learning_rate=1e-3,
                    pretrain_epochs=0, dtype=np.float32)
    wall = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"n": n, "d": d, "k": k, "X_bytes": X.nbytes, "peak_rss_bytes": peak,
                      "rss_before_epoch_bytes": rss_before, "epoch_traced_peak_bytes": traced_peak,
                      "epoch_wall_s": wall, "finite": bool(np.isfinite(res.W).all())}))
""")


def run(n=None, d=1000, k=50, timeout=1200):
    n = int(n or os.environ.get("SPARSENET_BENCH_MEMORY_N", 1_000_000))
    name = f"peak RSS of one float32 full-batch epoch / size of X (n={n:g}, d={d}, k={k})"
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(d), str(k)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return [case(name, None, TARGET, "<=", skipped=f"timed out after {timeout} s")]
    if proc.returncode != 0:
        msg = f"child failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}"
        return [case(name, None, TARGET, "<=", skipped=msg)]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["epoch_extra_over_X"] = info["epoch_traced_peak_bytes"] / info["X_bytes"]
    return [case(name, info["peak_rss_bytes"] / info["X_bytes"], TARGET, "<=", info)]


if __name__ == "__main__":
    for row in run():
        print(row)
