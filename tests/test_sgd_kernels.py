"""The compiled minibatch epoch (sparsenet._sgd_kernels) against the numpy reference path of train.py.

Tolerance: after 25 epochs of 300 steps (n = 1200, batch 20, 6000 steps in all) the two paths sum in
different orders (BLAS blocks vs a compiled loop, FMA), so they agree to rounding amplified by the
iteration: we require max |W_compiled − W_numpy| ≤ 1e-9 · max |W_numpy| (measured: ~1e-15), the same
for v and the per-epoch losses.  Each path alone is bit-identical run to run.
"""

import numpy as np
import pytest

pytest.importorskip("numba")

import sparsenet.train as train  # noqa: E402
from sparsenet import Dense, Threshold, TopFraction, make_planted  # noqa: E402
from sparsenet.baselines import _l1_prox_op  # noqa: E402

RTOL = 1e-9


def _problems(activation="relu2", P=2, n=1200, d=8, k=3):
    probs = [make_planted(n, d, k, activation=activation, thresh_gt=0.15, random_state=p) for p in range(P)]
    X = np.stack([p.X for p in probs])
    y = np.stack([p.y for p in probs])
    return probs, X, y


def _train(mode, monkeypatch, *, activation="relu2", G=3, groups=True, train_v=False, mask=False, prox=None,
           sparsifier=None, epochs=25, dtype=np.float64, seeds=None):
    monkeypatch.setattr(train, "_KERNELS", mode)
    probs, X, y = _problems(activation)
    P = len(probs)
    B = P * G
    rng = np.random.default_rng(1)
    di = np.repeat(np.arange(P), G)
    # A start near the truth (as tensor init gives), different per model.
    W0 = np.stack([probs[p].W for p in di]) + 0.1 * rng.normal(size=(B,) + probs[0].W.shape)
    v0 = np.stack([probs[p].v for p in di])
    seeds = [[int(p), 100] for p in di] if seeds is None else seeds
    kw = {}
    if mask:
        kw["mask"] = rng.random(W0.shape) < 0.7
    if prox is not None:
        kw["prox"] = prox
    res = train.train_iht_batched(
        X, y, W0, v0, sparsifiers=sparsifier or [Threshold(0.05), TopFraction(0.5), Dense()][:G] * P,
        epochs=epochs, learning_rate=np.linspace(1e-3, 3e-3, B), pretrain_epochs=3, train_v=train_v,
        activation=activation, data_index=di, X_test=X[:, :200], y_test=y[:, :200], dtype=dtype,
        random_states=[np.random.default_rng(s) for s in seeds], order_groups=di if groups else None, **kw)
    return res


def _close(a, b, rtol=RTOL):
    scale = max(np.max(np.abs(a)), 1e-300)
    assert np.max(np.abs(a - b)) <= rtol * scale, f"max diff {np.max(np.abs(a - b)):.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("activation", ["relu2", "relu", "tanh", "sigmoid", "leaky_relu", "softplus"])
@pytest.mark.parametrize("groups", [True, False])
def test_compiled_equals_numpy_after_25_epochs(activation, groups, monkeypatch):
    ref = _train("numpy", monkeypatch, activation=activation, groups=groups, train_v=True)
    got = _train("compiled", monkeypatch, activation=activation, groups=groups, train_v=True)
    assert np.any(ref.W != 0) and np.all(np.isfinite(ref.W))
    assert not np.array_equal(ref.v, ref.v[:1].repeat(len(ref.v), 0))  # v moved: the v update is exercised
    _close(ref.W, got.W)
    _close(ref.v, got.v)
    _close(ref.history["train_loss"], got.history["train_loss"])
    _close(ref.history["test_loss"], got.history["test_loss"])
    np.testing.assert_array_equal(ref.history["nnz"], got.history["nnz"])


@pytest.mark.parametrize("case", ["mask", "l1", "float32"])
def test_compiled_equals_numpy_options(case, monkeypatch):
    kw = {}
    rtol = RTOL
    if case == "mask":
        kw = {"mask": True}
    elif case == "l1":
        kw = {"prox": _l1_prox_op(np.full(6, 0.05)), "groups": False, "sparsifier": [Dense()] * 6}
    elif case == "float32":
        kw = {"dtype": np.float32}
        rtol = 1e-3
    ref = _train("numpy", monkeypatch, **kw)
    got = _train("compiled", monkeypatch, **kw)
    if case == "l1":
        assert np.count_nonzero(ref.W == 0) > 0  # the soft threshold zeroed some weights
    _close(ref.W, got.W, rtol)
    _close(ref.v, got.v, rtol)


def test_partial_last_batch(monkeypatch):
    # n = 1190 is not a multiple of the batch size 20: the last minibatch has 10 rows (step scaled by 20/10).
    monkeypatch.setattr(train, "_KERNELS", "numpy")
    prob = make_planted(1190, 6, 2, thresh_gt=0.15, random_state=3)
    W0 = prob.W + 0.1
    out = {}
    for mode in ("numpy", "compiled"):
        monkeypatch.setattr(train, "_KERNELS", mode)
        out[mode] = train.train_iht(prob.X, prob.y, W0, prob.v, sparsifier=None, epochs=5, train_v=True,
                                    random_state=0)
    _close(out["numpy"].W, out["compiled"].W)
    _close(out["numpy"].v, out["compiled"].v)


def test_both_loop_orders_agree():
    from sparsenet import _sgd_kernels as K

    rng = np.random.default_rng(0)
    U, n, d, k, G = 2, 200, 7, 3, 2
    X = rng.normal(size=(U * n, d + 1))
    order = np.stack([rng.permutation(n) + u * n for u in range(U)])
    W = 0.3 * rng.normal(size=(U, d, k * G))
    v = rng.normal(size=(U, k, G))
    c, vc = np.full((U, G), 0.01), np.full((U, G), 0.005)
    mask = (rng.random(W.shape) < 0.8).astype(float)
    l1 = np.full((U, G), 1e-3)
    out = []
    for kernel in (K.grouped_epoch, K.narrow_epoch):
        Wk, vk = W.copy(), v.copy()
        for code in range(6):
            kernel(X, np.zeros(0), d, order, Wk, vk, c, vc, code, 20, mask, l1, True)
        out.append((Wk, vk))
    assert np.any(out[0][0] != W)
    _close(out[0][0], out[1][0], 1e-12)
    _close(out[0][1], out[1][1], 1e-12)


def test_compiled_is_bit_identical_run_to_run(monkeypatch):
    a = _train("compiled", monkeypatch, train_v=True, mask=True)
    b = _train("compiled", monkeypatch, train_v=True, mask=True)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.v, b.v)
    np.testing.assert_array_equal(a.history["train_loss"], b.history["train_loss"])


def test_grouping_does_not_change_a_models_result(monkeypatch):
    # Equal orders run as one group of G models (grouped path, or detected in the per-model path):
    # the same bits either way, and what the model computes alone up to rounding.
    grouped = _train("compiled", monkeypatch, train_v=True, groups=True)
    detected = _train("compiled", monkeypatch, train_v=True, groups=False)
    np.testing.assert_array_equal(grouped.W, detected.W)
    probs, X, y = _problems()
    rng = np.random.default_rng(1)
    W0 = np.stack([probs[p].W for p in np.repeat(np.arange(2), 3)]) + 0.1 * rng.normal(size=(6,) + probs[0].W.shape)
    v0 = np.stack([probs[p].v for p in np.repeat(np.arange(2), 3)])
    b = 5  # problem 1, third model: Dense, learning rate linspace(1e-3, 3e-3, 6)[5]
    alone = train.train_iht(X[1], y[1], W0[b], v0[b], sparsifier=Dense(), epochs=25, train_v=True,
                            learning_rate=np.linspace(1e-3, 3e-3, 6)[b], pretrain_epochs=3,
                            random_state=np.random.default_rng([1, 100]))
    # alone (k = 3 columns) runs the narrow loop order, the group of 3 the wide one: equal to rounding
    _close(grouped.W[b], alone.W, 1e-12)


def test_environment_variable_selects_the_numpy_path(monkeypatch):
    calls = []
    monkeypatch.setattr(train, "_compiled_epoch", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(train, "_KERNELS", "numpy")
    _train("numpy", monkeypatch, epochs=1)
    assert calls == []
    _train("compiled", monkeypatch, epochs=1)
    assert calls


@pytest.mark.parametrize("name", ["relu2", "tanh"])
@pytest.mark.parametrize("k", [4, 5])
def test_problem_losses_equal_the_direct_formula(name, k):
    # One call for every data set (train and test rows): each model's MSE on its own data set, as
    # mean((φ(X W) v − y)²) in numpy; data set 1 has no model; n, n_test not multiples of the chunk;
    # odd k: the units are taken two at a time across neighbouring models.
    from sparsenet import _sgd_kernels as K
    from sparsenet.activations import ACTIVATIONS

    rng = np.random.default_rng(2)
    P, n, n_test, d = 3, 150, 70, 9
    X, y = rng.normal(size=(P, n, d)), rng.normal(size=(P, n))
    Xt, yt = rng.normal(size=(P, n_test, d)), rng.normal(size=(P, n_test))
    di = np.array([2, 0, 2, 2, 0, 2, 2])
    W, v = 0.5 * rng.normal(size=(len(di), d, k)), rng.normal(size=(len(di), k))
    models = np.argsort(di, kind="stable")
    starts = np.searchsorted(di[models], np.arange(P + 1))
    out, out_test = np.full(len(di), np.nan), np.full(len(di), np.nan)
    K.problem_losses(X, y, Xt, yt, W, v, models, starts, K.ACTIVATION_CODES[name], out, out_test)
    phi = ACTIVATIONS[name].function
    for b, p in enumerate(di):
        assert out[b] == pytest.approx(np.mean((phi(X[p] @ W[b]) @ v[b] - y[p]) ** 2), rel=1e-12)
        assert out_test[b] == pytest.approx(np.mean((phi(Xt[p] @ W[b]) @ v[b] - yt[p]) ** 2), rel=1e-12)
    # a model's loss does not depend on the models it is computed with (same bits alone)
    for b, p in enumerate(di):
        alone, alone_test = np.full(1, np.nan), np.full(1, np.nan)
        K.problem_losses(X[p:p + 1], y[p:p + 1], Xt[p:p + 1], yt[p:p + 1], W[b:b + 1], v[b:b + 1],
                         np.zeros(1, dtype=np.intp), np.array([0, 1]), K.ACTIVATION_CODES[name], alone, alone_test)
        assert alone[0] == out[b] and alone_test[0] == out_test[b]


@pytest.mark.parametrize("d, k, G, n, batch", [(1, 1, 1, 30, 1), (3, 2, 1, 50, 7), (6, 3, 5, 41, 3),
                                               (13, 5, 13, 47, 6), (5, 4, 17, 33, 20), (9, 1, 70, 25, 4)])
def test_compiled_equals_numpy_at_edge_shapes(d, k, G, n, batch, monkeypatch):
    # Remainders of every blocked loop: d not a multiple of 4, odd unit counts (narrow kernel),
    # odd/short batches and a last partial batch, k·G of 1 (narrow) up to 70 (grouped, padded).
    rng = np.random.default_rng(d * 100 + G)
    X, y = rng.normal(size=(2, n, d)), rng.normal(size=(2, n))
    di = np.repeat(np.arange(2), G)
    W0, v0 = 0.3 * rng.normal(size=(2 * G, d, k)), rng.normal(size=(2 * G, k))
    out = {}
    for mode in ("numpy", "compiled"):
        monkeypatch.setattr(train, "_KERNELS", mode)
        out[mode] = train.train_iht_batched(
            X, y, W0, v0, sparsifiers=Threshold(0.01), epochs=4, batch_size=batch, pretrain_epochs=1, train_v=True,
            data_index=di, X_test=X[:, :5], y_test=y[:, :5], order_groups=di,
            random_states=[np.random.default_rng(int(p)) for p in di])
    ref, got = out["numpy"], out["compiled"]
    assert np.any(ref.W != W0)
    _close(ref.W, got.W)
    _close(ref.v, got.v)
    _close(ref.history["train_loss"], got.history["train_loss"])
    _close(ref.history["test_loss"], got.history["test_loss"])


@pytest.mark.parametrize("groups", [None, [0, 0]])
def test_l1_prox_keeps_a_diverged_weight_nan(groups, monkeypatch):
    """A weight that overflows to NaN within an epoch stays NaN through the compiled L1 prox (numpy's
    soft threshold gives NaN): the run is flagged diverged on both paths, not zeroed and reported fine."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 6)), rng.standard_normal(40)
    W0, v0 = rng.standard_normal((2, 6, 3)), np.ones((2, 3))
    flags = []
    for mode in ("numpy", "compiled"):
        monkeypatch.setattr(train, "_KERNELS", mode)
        with np.errstate(all="ignore"):
            r = train.train_iht_batched(X, y, W0, v0, sparsifiers=None, epochs=3, batch_size=5, learning_rate=1.0,
                                        pretrain_epochs=0, prox=_l1_prox_op([1e-3, 1e-3]), random_states=[1, 1],
                                        order_groups=groups, on_divergence="flag")
        flags.append(r.diverged.tolist())
    assert flags[0] == [True, True]  # the reference: lr = 1 overflows
    assert flags[1] == flags[0]
