"""Case 2: minibatch IHT epochs at the report's size for B = 64 models at once vs B = 1.

n = 6000, d = 20, k = 5, batch 20, relu², Threshold IHT, the report's protocol (25 epochs, 5 dense
pre-training epochs, per-epoch train loss recorded): per-model time of ``train_iht_batched`` with 64
models divided by its time with one model.  Target ≤ 0.1.

Headline: the sweep-shaped case -- 64 variants (64 thresholds) of ONE trial, sharing its data set
and its minibatch order (``order_groups``, as the experiment runner trains them).  Second line: 64
fully independent models (64 different shuffling seeds, one gather and three tiny products each per
step), for reference.
"""

import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import case, interleaved, planted_xy  # noqa: E402

from sparsenet.sparsify import Threshold  # noqa: E402
from sparsenet.train import train_iht_batched  # noqa: E402

TARGET = 0.1


def _trainer(X, y, W0, v0, epochs, shared):
    B = W0.shape[0]
    if shared:  # one trial's variants: 64 thresholds, one seed, one order
        sps = [Threshold(t) for t in np.linspace(0.02, 0.1, B)]
        kw = dict(random_states=[0] * B, order_groups=np.zeros(B, dtype=int))
    else:  # independent models: own seed, own order
        sps = Threshold(0.05)
        kw = dict(random_states=list(range(B)))

    def fit():
        return train_iht_batched(X, y, W0, v0, sparsifiers=sps, epochs=epochs, batch_size=20,
                                 learning_rate=1e-3, pretrain_epochs=5, **kw)

    return fit


def per_model_times(n=6000, d=20, k=5, B=64, epochs=25, repeats=5):
    X, y, Wt = planted_xy(n, d, k)
    rng = np.random.default_rng(1)
    W0 = Wt[None] + 0.05 * rng.standard_normal((B, d, k))
    v0 = np.ones((B, k))
    best = interleaved({"one": _trainer(X, y, W0[:1], v0[:1], epochs, False),
                        "shared": _trainer(X, y, W0, v0, epochs, True),
                        "independent": _trainer(X, y, W0, v0, epochs, False)}, repeats)
    return best["one"] / epochs, best["shared"] / (B * epochs), best["independent"] / (B * epochs)


def run(n=6000, d=20, k=5, B=64, epochs=25, repeats=5):
    one, shared, indep = per_model_times(n, d, k, B, epochs, repeats)
    size = f"(n={n}, d={d}, k={k}, batch 20)"
    return [
        case(f"batched minibatch epoch per model, B={B} sharing one trial's order / B=1 {size}", shared / one,
             TARGET, "<=", {"epoch_B1_s": one, "epoch_per_model_B64_shared_s": shared}),
        case(f"batched minibatch epoch per model, B={B} independent seeds / B=1 {size}", indep / one,
             TARGET, "<=", {"epoch_B1_s": one, "epoch_per_model_B64_independent_s": indep}),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
