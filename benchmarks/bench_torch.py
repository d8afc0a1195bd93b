"""Case 4: what a user would write instead — the same minibatch IHT written plainly in PyTorch.

One model at a time on the CPU: minibatch SGD (batch 20, lr 1e-3, 25 epochs, relu², threshold IHT
after 5 dense epochs) with autograd and ``torch.optim.SGD``, at n = 6000, d = 20, k = 5.  Ratio =
PyTorch time per model ÷ ours per model when training B = 64 models batched (same epochs, same
protocol).  Target ≥ 100.  Skipped with a message when torch is not installed (optional dependency).
"""

import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import best_of, case, planted_xy  # noqa: E402

from sparsenet.sparsify import Threshold  # noqa: E402
from sparsenet.train import train_iht_batched  # noqa: E402

TARGET = 100.0
EPOCHS, BATCH, LR, PRETRAIN, THRESH = 25, 20, 1e-3, 5, 0.05


def torch_iht(torch, X, y, W0, v0, seed=0):
    """The plain PyTorch loop a user would write (autograd + optim.SGD, one model)."""
    g = torch.Generator().manual_seed(seed)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    W = torch.tensor(W0, requires_grad=True)
    v = torch.tensor(v0)
    opt = torch.optim.SGD([W], lr=LR)
    n = X.shape[0]
    for epoch in range(EPOCHS):
        if epoch >= PRETRAIN:
            with torch.no_grad():
                W[W.abs() <= THRESH] = 0.0
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            pred = torch.relu(X[idx] @ W).pow(2) @ v
            loss = ((pred - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        W[W.abs() <= THRESH] = 0.0
    return W.detach().numpy()


def run(n=6000, d=20, k=5, B=64, torch_repeats=2, repeats=3):
    name = f"PyTorch plain loop per model / ours batched per model (B={B}, {EPOCHS} epochs)"
    try:
        import torch
    except ImportError:
        msg = "torch is not installed (pip install torch==2.13.0); PyTorch comparison skipped"
        print(msg)
        return [case(name, None, TARGET, ">=", skipped=msg)]
    X, y, Wt = planted_xy(n, d, k)
    rng = np.random.default_rng(1)
    W0 = Wt[None] + 0.05 * rng.standard_normal((B, d, k))
    v0 = np.ones((B, k))

    def ours(order_groups):
        train_iht_batched(X, y, W0, v0, sparsifiers=Threshold(THRESH), epochs=EPOCHS, batch_size=BATCH,
                          learning_rate=LR, pretrain_epochs=PRETRAIN, random_states=list(range(B)),
                          order_groups=order_groups)

    t_torch = best_of(lambda: torch_iht(torch, X, y, W0[0], v0[0]), torch_repeats)
    rows = []
    # Headline: the sweep's shape (B variants of one trial share its data and minibatch order, as the
    # experiment runner trains them); second line: B fully independent shuffling streams.
    for label, groups in (("sharing one trial's order", np.zeros(B, dtype=int)), ("independent seeds", None)):
        t_ours = best_of(lambda: ours(groups), repeats) / B
        rows.append(case(f"{name}, {label}", t_torch / t_ours, TARGET, ">=",
                         {"torch_per_model_s": t_torch, "ours_per_model_s": t_ours, "torch": torch.__version__,
                          "torch_threads": torch.get_num_threads()}))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
