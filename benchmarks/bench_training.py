"""Per-model IHT training at the report's setting against its FLOP limit, and compiled vs numpy epochs.

Setting (Section 5.1 of the report): n = 6000, d = 20, k = 5, n_test = 1000, 25 epochs of minibatch
SGD with batch 20, the train and test losses recorded after every epoch.  Sweep-shaped: P = 10
problems × G = 19 models sharing each problem's minibatch order (one trial of fig04: every method
and threshold), trained by one :func:`sparsenet.train.train_iht_batched` call, one BLAS thread.

FLOPs per model: 25 epochs × n × 4·d·k (forward and backward products of every step) plus
26 × (n + n_test) × 2·d·k (the per-epoch losses) = 9.6e7.  The FLOP limit is that count divided by
this core's rate on a large float64 GEMM (2000³, one thread) measured in the same run; the ratio
training time ÷ FLOP limit is reported (target ≤ 2) beside the GEMM rate itself.  The same call
with the numpy reference path (``SPARSENET_KERNELS=numpy``) gives the compiled/numpy ratio.

Both sides run on one thread, so both are timed in CPU seconds of this process (``time.process_time``,
best of the repeats, the calls interleaved): on a quiet machine that is the wall time, on a shared
one it leaves out the time other processes hold the core (wall times are printed too).
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import case  # noqa: E402

TARGET = 2.0


def cpu_interleaved(fns, repeats, warmup=1):
    """Best CPU time and best wall time of each callable in ``fns`` (name -> fn), timed round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    cpu = {name: np.inf for name in fns}
    wall = {name: np.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name] = min(cpu[name], time.process_time() - t0)
            wall[name] = min(wall[name], time.perf_counter() - w0)
    return cpu, wall


def gemm_rate(size=2000, repeats=3):
    """float64 GEMM FLOP/s of one core (best of ``repeats``, CPU time and wall time)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    with threadpool_limits(1):
        cpu, wall = cpu_interleaved({"gemm": lambda: A @ B}, repeats)
    return 2.0 * size**3 / cpu["gemm"], 2.0 * size**3 / wall["gemm"]


def compile_seconds():
    """CPU seconds of a worker's warm-up (imports + compiled epochs) with an empty numba cache (what a
    fresh machine pays once) and again with the cache it left (what every later process pays)."""
    import subprocess
    import tempfile

    code = ("import time; t = time.process_time(); from sparsenet.experiments.runner import warm_up; warm_up(); "
            "print(time.process_time() - t)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold_cache_s", "warm_cache_s"):
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
            out[label] = float(proc.stdout.split()[-1])
    return out


def run(P=10, G=19, n=6000, d=20, k=5, n_test=1000, epochs=25, repeats=3):
    import sparsenet.train as train
    from sparsenet import Threshold, make_planted

    probs = [make_planted(n, d, k, thresh_gt=0.15, n_test=n_test, random_state=p) for p in range(P)]
    X, y = np.stack([p.X for p in probs]), np.stack([p.y for p in probs])
    Xt, yt = np.stack([p.X_test for p in probs]), np.stack([p.y_test for p in probs])
    B = P * G
    di = np.repeat(np.arange(P), G)
    rng = np.random.default_rng(1)
    W0 = np.stack([probs[p].W for p in di]) + 0.05 * rng.standard_normal((B, d, k))
    v0 = np.stack([probs[p].v for p in di])
    sps = [Threshold(t) for t in np.linspace(0.0, 0.2, G)] * P

    def fit(mode):
        def call():
            train._KERNELS = mode
            train.train_iht_batched(X, y, W0, v0, sparsifiers=sps, epochs=epochs, batch_size=20, learning_rate=1e-3,
                                    pretrain_epochs=5, data_index=di, X_test=Xt, y_test=yt, order_groups=di,
                                    random_states=[np.random.default_rng([int(p), 100]) for p in di])
        return call

    try:
        best, wall = cpu_interleaved({"compiled": fit("compiled"), "numpy": fit("numpy")}, repeats)
    finally:
        train._KERNELS = os.environ.get("SPARSENET_KERNELS", "compiled")
    rate, rate_wall = gemm_rate()
    flops = epochs * n * 4 * d * k + (epochs + 1) * (n + n_test) * 2 * d * k
    per_model = best["compiled"] / B
    limit = flops / rate
    detail = {"models": B, "per_model_s": per_model, "flop_limit_s": limit, "flops_per_model": flops,
              "gemm_gflops_one_core": rate / 1e9, "achieved_gflops": flops / per_model / 1e9,
              "numpy_per_model_s": best["numpy"] / B, "timer": "process_time",
              "wall_per_model_s": wall["compiled"] / B, "gemm_gflops_one_core_wall": rate_wall / 1e9}
    detail.update(compile_seconds())
    print(f"   worker warm-up CPU: {detail['cold_cache_s']:.2f} s with an empty numba cache, "
          f"{detail['warm_cache_s']:.2f} s with it filled")
    print(f"   CPU time: GEMM {rate / 1e9:.1f} GFLOP/s on one core; training {per_model * 1e3:.2f} ms/model "
          f"({flops / per_model / 1e9:.2f} GFLOP/s) vs FLOP limit {limit * 1e3:.2f} ms; numpy path "
          f"{best['numpy'] / B * 1e3:.2f} ms/model")
    print(f"   wall time: GEMM {rate_wall / 1e9:.1f} GFLOP/s; training {wall['compiled'] / B * 1e3:.2f} ms/model "
          f"(ratio {wall['compiled'] / B / (flops / rate_wall):.2f})")
    return [
        case("IHT training per model ÷ FLOP limit (n=6000, d=20, k=5, 25 epochs, 190 models)", per_model / limit,
             TARGET, "<=", detail),
        case("compiled epochs ÷ numpy epochs (same call)", best["compiled"] / best["numpy"], 1.0, "<=", detail),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
