"""Case 1: one full-batch gradient step vs the two bare products X·W and Xᵀ·G (n=1e5, d=1000, k=50).

The step is :func:`sparsenet.train.full_batch_step` (loss, ∇W, streaming X in row chunks) plus the
update W ← W − η∇W; the limit is ``X @ W`` plus ``X.T @ G`` for G of shape (n, k), the two products
no implementation can avoid.  float32 and float64.  Target ≤ 1.3.
"""

import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import case, interleaved, planted_xy  # noqa: E402

from sparsenet.activations import ACTIVATIONS  # noqa: E402
from sparsenet.train import full_batch_step  # noqa: E402

TARGET = 1.3


def run(n=100_000, d=1000, k=50, repeats=5):
    rows = []
    act = ACTIVATIONS["relu2"]
    for dtype in (np.float32, np.float64):
        X, y, Wt = planted_xy(n, d, k, dtype=dtype)
        rng = np.random.default_rng(1)
        W = (Wt + 0.1 * rng.standard_normal(Wt.shape) / np.sqrt(d)).astype(dtype)[None]
        v = np.ones((1, k), dtype=dtype)
        G = rng.standard_normal((n, k)).astype(dtype)
        W0 = W[0]

        def bare():
            X @ W0
            X.T @ G

        def step():
            _, gW, _ = full_batch_step(X, y, W, v, act, want_grad_v=False)
            W[...] -= 1e-3 * gW  # noqa: B023 - timing closure

        best = interleaved({"bare": bare, "step": step}, repeats)
        name = np.dtype(dtype).name
        rows.append(case(f"epoch vs limit ({name}, n={n:g}, d={d}, k={k})", best["step"] / best["bare"], TARGET, "<=",
                         {"step_s": best["step"], "bare_products_s": best["bare"]}))
        del X, G
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
