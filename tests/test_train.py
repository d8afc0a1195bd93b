import numpy as np
import pytest

from sparsenet.activations import ACTIVATIONS
from sparsenet.sparsify import Dense, Threshold, TopFraction
from sparsenet.train import full_batch_step, loss_and_grad, train_iht, train_iht_batched


def _direct_loss(X, y, W, v, act):
    pred = np.array([sum(v[j] * act(X[i] @ W[:, j]) for j in range(W.shape[1])) for i in range(X.shape[0])])
    return np.mean((pred - y) ** 2)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gradient_matches_finite_differences(name, rng):
    act = ACTIVATIONS[name]
    X = rng.standard_normal((1, 30, 4))
    y = rng.standard_normal((1, 30))
    W = rng.standard_normal((1, 4, 3))
    v = rng.standard_normal((1, 3))
    loss, gW, gv = loss_and_grad(X, y, W, v, act)
    assert loss[0] == pytest.approx(_direct_loss(X[0], y[0], W[0], v[0], act), rel=1e-12)
    h = 1e-6
    num_W = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += h
        Wm[idx] -= h
        num_W[idx] = (loss_and_grad(X, y, Wp, v, act)[0][0] - loss_and_grad(X, y, Wm, v, act)[0][0]) / (2 * h)
    num_v = np.zeros_like(v)
    for idx in np.ndindex(v.shape):
        vp, vm = v.copy(), v.copy()
        vp[idx] += h
        vm[idx] -= h
        num_v[idx] = (loss_and_grad(X, y, W, vp, act)[0][0] - loss_and_grad(X, y, W, vm, act)[0][0]) / (2 * h)
    np.testing.assert_allclose(gW, num_W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gv, num_v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [None, 7, 64])
def test_full_batch_step_equals_minibatch_formula(chunk, rng):
    X = rng.standard_normal((50, 5))
    y = rng.standard_normal(50)
    W = rng.standard_normal((3, 5, 2))
    v = rng.standard_normal((3, 2))
    act = ACTIVATIONS["relu2"]
    loss, gW, gv = full_batch_step(X, y, W, v, act, chunk_size=chunk)
    l2, gW2, gv2 = loss_and_grad(np.broadcast_to(X, (3, 50, 5)), np.broadcast_to(y, (3, 50)), W, v, act)
    np.testing.assert_allclose(loss, l2, rtol=1e-12)
    np.testing.assert_allclose(gW, gW2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gv, gv2, rtol=1e-10, atol=1e-12)


def test_batched_equals_one_by_one(rng):
    P, n, d, k, B = 2, 120, 5, 3, 4
    X = rng.standard_normal((P, n, d))
    y = rng.standard_normal((P, n))
    Xt = rng.standard_normal((P, 40, d))
    yt = rng.standard_normal((P, 40))
    W0 = 0.5 * rng.standard_normal((B, d, k))
    v0 = rng.choice([-1.0, 1.0], (B, k))
    sps = [Threshold(0.1), TopFraction(0.5), Dense(), Threshold(0.3)]
    lrs = np.array([1e-3, 2e-3, 5e-4, 1e-3])
    pre = np.array([1, 0, 2, 3])
    tv = np.array([False, True, True, False])
    idx = np.array([0, 1, 1, 0])
    res = train_iht_batched(X, y, W0, v0, sparsifiers=sps, epochs=4, batch_size=16, learning_rate=lrs,
                            pretrain_epochs=pre, train_v=tv, data_index=idx, X_test=Xt, y_test=yt,
                            random_states=[10, 11, 12, 13])
    for b in range(B):
        one = train_iht(X[idx[b]], y[idx[b]], W0[b], v0[b], sparsifier=sps[b], epochs=4, batch_size=16,
                        learning_rate=lrs[b], pretrain_epochs=pre[b], train_v=tv[b], X_test=Xt[idx[b]],
                        y_test=yt[idx[b]], random_state=10 + b)
        np.testing.assert_allclose(res.W[b], one.W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.v[b], one.v, rtol=1e-9, atol=1e-12)
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose(res.history[key][b], one.history[key], rtol=1e-9)
        np.testing.assert_array_equal(res.history["nnz"][b], one.history["nnz"])


def test_same_seed_bit_identical(tiny_problem):
    p = tiny_problem
    W0 = p.W + 0.1
    runs = [train_iht(p.X, p.y, W0, p.v, sparsifier=Threshold(0.05), epochs=3, X_test=p.X_test,
                      y_test=p.y_test, random_state=7) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].W, runs[1].W)
    np.testing.assert_array_equal(runs[0].v, runs[1].v)
    for key in runs[0].history:
        np.testing.assert_array_equal(runs[0].history[key], runs[1].history[key])
    other = train_iht(p.X, p.y, W0, p.v, sparsifier=Threshold(0.05), epochs=3, random_state=8)
    assert not np.array_equal(other.W, runs[0].W)


def test_history_initial_entry_and_shapes(tiny_problem):
    p = tiny_problem
    W0 = p.W * 1.1
    res = train_iht(p.X, p.y, W0, p.v, sparsifier=Dense(), epochs=3, X_test=p.X_test, y_test=p.y_test,
                    random_state=0)
    assert res.history["train_loss"].shape == (4,)
    act = p.activation
    assert res.history["train_loss"][0] == pytest.approx(np.mean((act(p.X @ W0) @ p.v - p.y) ** 2), rel=1e-12)
    assert res.history["test_loss"][0] == pytest.approx(np.mean((act(p.X_test @ W0) @ p.v - p.y_test) ** 2))
    assert res.history["nnz"][0] == np.count_nonzero(W0)
    assert res.n_iter_ == 3


def test_sparsify_last_makes_output_exactly_sparse(tiny_problem):
    p = tiny_problem
    W0 = p.W + 0.05
    res = train_iht(p.X, p.y, W0, p.v, sparsifier=TopFraction(0.4), epochs=2, random_state=0)
    assert np.count_nonzero(res.W) == round(0.4 * res.W.size)
    res = train_iht(p.X, p.y, W0, p.v, sparsifier=Threshold(0.2), epochs=2, random_state=0)
    nz = res.W[res.W != 0]
    assert np.all(np.abs(nz) > 0.2)
    assert res.history["nnz"][-1] == np.count_nonzero(res.W)
    # report protocol: no sparsification after the last epoch -> the SGD steps regrow small weights
    res2 = train_iht(p.X, p.y, W0, p.v, sparsifier=Threshold(0.2), epochs=2, random_state=0, sparsify_last=False)
    assert np.count_nonzero(res2.W) > np.count_nonzero(res.W)


def test_pretraining_only_is_dense(tiny_problem):
    p = tiny_problem
    res = train_iht(p.X, p.y, p.W + 0.05, p.v, sparsifier=Threshold(0.5), epochs=2, pretrain_epochs=2,
                    sparsify_last=False, random_state=0)
    assert np.count_nonzero(res.W) == res.W.size


def test_v_fixed_unless_trained(tiny_problem):
    p = tiny_problem
    v0 = p.v * 1.3
    res = train_iht(p.X, p.y, p.W, v0, sparsifier=Dense(), epochs=1, random_state=0)
    np.testing.assert_array_equal(res.v, v0)
    res = train_iht(p.X, p.y, p.W, v0, sparsifier=Dense(), epochs=1, train_v=True, random_state=0)
    assert not np.array_equal(res.v, v0)


def test_mask_holds_weights_at_zero(tiny_problem):
    p = tiny_problem
    mask = p.W != 0
    res = train_iht(p.X, p.y, p.W + 0.3, p.v, sparsifier=Dense(), epochs=2, mask=mask, random_state=0)
    assert np.all(res.W[~mask] == 0)
    assert np.all(res.W[mask] != 0)


def test_full_batch_gd_loss_non_increasing(tiny_problem):
    p = tiny_problem
    rng = np.random.default_rng(3)
    W0 = p.W + 0.3 * rng.standard_normal(p.W.shape)
    res = train_iht(p.X, p.y, W0, p.v, sparsifier=Dense(), epochs=30, batch_size=None, learning_rate=0.01,
                    pretrain_epochs=30)
    loss = res.history["train_loss"]
    assert np.all(np.diff(loss) <= 1e-12), loss
    assert loss[-1] < 0.5 * loss[0]


def test_converges_to_truth_near_init(tiny_problem):
    p = tiny_problem
    rng = np.random.default_rng(1)
    res = train_iht(p.X, p.y, p.W + 0.05 * rng.standard_normal(p.W.shape), p.v, sparsifier=Threshold(0.075),
                    epochs=40, batch_size=10, learning_rate=3e-3, pretrain_epochs=2, random_state=0)
    assert np.linalg.norm(res.W - p.W) / np.linalg.norm(p.W) < 1e-3


def test_float32(tiny_problem):
    p = tiny_problem
    res = train_iht(p.X, p.y, p.W, p.v, sparsifier=Dense(), epochs=1, dtype=np.float32, random_state=0)
    assert res.W.dtype == np.float32


def test_divergence_raises_with_advice(tiny_problem):
    p = tiny_problem
    with pytest.raises(ValueError, match="diverged.*smaller learning_rate"):
        train_iht(p.X, p.y, p.W * 3, p.v, sparsifier=Dense(), epochs=3, learning_rate=10.0, random_state=0)


def test_divergence_flag_freezes_only_that_model(tiny_problem):
    p = tiny_problem
    W0 = np.stack([p.W, p.W * 3])
    res = train_iht_batched(p.X, p.y, W0, np.stack([p.v, p.v]), sparsifiers=Dense(), epochs=2,
                            learning_rate=np.array([1e-3, 10.0]), on_divergence="flag", random_states=[0, 1])
    assert res.diverged.tolist() == [False, True]
    assert np.all(np.isfinite(res.W[0])) and np.all(np.isnan(res.W[1]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(X=np.ones((10, 3, 2))), "'X' must be 2-D"),
        (dict(y=np.ones(9)), r"'y' must have shape \(10,\)"),
        (dict(X=np.full((10, 3), np.nan)), "'X' contains NaN"),
        (dict(y=np.r_[np.ones(9), np.inf]), "'y' contains NaN"),
        (dict(W0=np.ones((4, 2))), "'W' must have 3 rows"),
        (dict(v0=np.ones(3)), r"'v' must have shape \(1, 2\)|'v' must have shape"),
        (dict(learning_rate=-1.0), r"'learning_rate' parameter of train_iht must be a float in the range \(0, inf\)"),
        (dict(epochs=-1), r"'epochs' parameter of train_iht must be an int in the range \[0, inf\)"),
        (dict(batch_size=0), "'batch_size' parameter"),
        (dict(pretrain_epochs=-2), "'pretrain_epochs' parameter"),
        (dict(sparsifier="top"), "'sparsifier' parameter"),
    ],
)
def test_bad_input_messages(kwargs, match):
    args = dict(X=np.ones((10, 3)), y=np.ones(10), W0=np.ones((3, 2)), v0=np.ones(2), sparsifier=Dense(), epochs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_iht(args.pop("X"), args.pop("y"), args.pop("W0"), args.pop("v0"), **args)


# --- fast paths (fused activations, preallocated minibatch workspace, chunked full batch) ---------

from sparsenet import train as _train  # noqa: E402
from sparsenet.activations import get_activation  # noqa: E402
from sparsenet._validation import check_random_state  # noqa: E402


@pytest.mark.parametrize("act", [*sorted(ACTIVATIONS), "user"])
def test_fused_kernel_equals_function_and_derivative(act, rng):
    act = get_activation(np.sin, derivative=np.cos, name="sin") if act == "user" else ACTIVATIONS[act]
    Z = rng.standard_normal((7, 3, 4)) * 2
    Z[0, 0, :2] = 0.0  # the kink: left derivative
    D, A = Z.copy(), np.empty_like(Z)
    s = _train._fused(act)(D, A)
    np.testing.assert_allclose(A, act.function(Z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(s * D, act.derivative(Z), rtol=1e-14, atol=1e-15)


def test_fused_kernel_not_used_for_a_lookalike():
    fake = get_activation(np.tanh, derivative=lambda z: np.zeros_like(z), name="relu2")
    D, A = np.ones((2, 2)), np.empty((2, 2))
    assert _train._fused(fake)(D, A) == 1.0
    np.testing.assert_array_equal(D, 0.0)


def _reference_iht(X, y, W0, v0, sparsifier, epochs, batch_size, lr, pre, train_v, seed, act):
    """Plain per-step loop over loss_and_grad: the definition the fast path must reproduce."""
    rng = check_random_state(seed)
    W, v = W0.copy()[None], v0.copy()[None]
    n = X.shape[0]
    for e in range(epochs):
        if e >= pre:
            W[0] = sparsifier(W[0])
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            rows = order[s:s + batch_size]
            _, gW, gv = loss_and_grad(X[rows][None], y[rows][None], W, v, act)
            W -= lr * gW
            if train_v:
                v -= lr * gv
    return sparsifier(W[0]), v[0]


@pytest.mark.parametrize("name", ["relu2", "tanh", "softplus"])
@pytest.mark.parametrize("joint", [True, False])
def test_minibatch_fast_path_equals_reference_loop(name, joint, rng, monkeypatch):
    # joint: X copied into one [X | y] array; otherwise X and y gathered separately (the default)
    monkeypatch.setattr(_train, "_JOINT_BYTES", 1 << 30 if joint else 0)
    n, d, k = 53, 4, 3  # 53 = 3 batches of 16 + a partial batch of 5
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    W0, v0 = 0.5 * rng.standard_normal((d, k)), rng.standard_normal(k)
    sp = Threshold(0.1)
    res = train_iht(X, y, W0, v0, sparsifier=sp, epochs=3, batch_size=16, learning_rate=1e-2, pretrain_epochs=1,
                    train_v=True, activation=name, random_state=5)
    W, v = _reference_iht(X, y, W0, v0, sp, 3, 16, 1e-2, 1, True, 5, ACTIVATIONS[name])
    np.testing.assert_allclose(res.W, W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(res.v, v, rtol=1e-10, atol=1e-13)


def test_minibatch_split_gather_bit_identical(rng, monkeypatch):
    X, y = rng.standard_normal((2, 40, 3)), rng.standard_normal((2, 40))
    W0, v0 = rng.standard_normal((3, 3, 2)), rng.standard_normal((3, 2))
    kw = dict(sparsifiers=Threshold(0.2), epochs=2, batch_size=7, train_v=True, data_index=[1, 0, 1],
              random_states=[1, 2, 3])
    monkeypatch.setattr(_train, "_JOINT_BYTES", 1 << 30)  # [X | y] copied into one array
    a = train_iht_batched(X, y, W0, v0, **kw)
    monkeypatch.setattr(_train, "_JOINT_BYTES", 0)
    b = train_iht_batched(X, y, W0, v0, **kw)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.v, b.v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_batch_step_chunks_and_grad_v_switch(dtype, rng):
    X = rng.standard_normal((300, 6)).astype(dtype)
    y = rng.standard_normal(300).astype(dtype)
    W = rng.standard_normal((2, 6, 3)).astype(dtype)
    v = rng.standard_normal((2, 3)).astype(dtype)
    act = ACTIVATIONS["tanh"]
    loss, gW, gv = full_batch_step(X, y, W, v, act, chunk_size=300)
    assert loss.dtype == dtype and gW.dtype == dtype and gv.dtype == dtype
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)
    for chunk in (None, 1, 31):
        l2, gW2, gv2 = full_batch_step(X, y, W, v, "tanh", chunk_size=chunk, want_grad_v=False)
        assert gv2 is None
        np.testing.assert_allclose(l2, loss, **tol)
        np.testing.assert_allclose(gW2, gW, **tol)
    l3, none_W, none_v = full_batch_step(X, y, W, v, act, want_grad=False)
    assert none_W is None and none_v is None
    np.testing.assert_allclose(l3, loss, **tol)


def test_full_batch_training_float32_matches_float64(tiny_problem):
    p = tiny_problem
    kw = dict(sparsifier=Threshold(0.05), epochs=5, batch_size=None, learning_rate=0.01, pretrain_epochs=2,
              train_v=True)
    r32 = train_iht(p.X, p.y, p.W + 0.1, p.v, dtype=np.float32, chunk_size=64, **kw)
    r64 = train_iht(p.X, p.y, p.W + 0.1, p.v, **kw)
    assert r32.W.dtype == np.float32
    np.testing.assert_allclose(r32.history["train_loss"], r64.history["train_loss"], rtol=1e-4)


def test_blas_thread_limit_does_not_change_results(tiny_problem, monkeypatch):
    p = tiny_problem
    W0 = np.stack([p.W + 0.1, p.W - 0.1])
    kw = dict(sparsifiers=Threshold(0.05), epochs=2, batch_size=8, random_states=[0, 1])
    a = train_iht_batched(p.X, p.y, W0, np.stack([p.v, p.v]), **kw)
    monkeypatch.setattr(_train, "_ONE_BLAS_THREAD", False)
    b = train_iht_batched(p.X, p.y, W0, np.stack([p.v, p.v]), **kw)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-12)


def _grouped_case(rng, dtype):
    P, n, d, k = 2, 53, 4, 3  # 53 = 3 batches of 16 + a partial batch of 5
    X, y = rng.standard_normal((P, n, d)), rng.standard_normal((P, n))
    groups = np.array([5, 2, 5, 5, 2, 7, 2, 5, 9])  # unequal sizes (4, 3, 1, 1), labels not 0..U-1
    idx = np.array([0, 1, 0, 0, 1, 1, 1, 0, 0])
    B = len(groups)
    W0, v0 = 0.4 * rng.standard_normal((B, d, k)), rng.choice([-1.0, 1.0], (B, k))
    tv = np.array([True, False, False, True, True, False, False, True, True])
    sps = [Threshold(0.1), TopFraction(0.5), Dense(), Threshold(0.2), Dense(), Threshold(0.05),
           TopFraction(0.7), Threshold(0.15), Dense()]
    masks = rng.random((B, d, k)) < 0.8
    seeds = {5: 11, 2: 12, 7: 13, 9: 14}
    lrs = np.linspace(1e-3, 4e-3, B)
    kw = dict(epochs=3, batch_size=16, pretrain_epochs=1, dtype=dtype)
    res = train_iht_batched(X, y, W0, v0, sparsifiers=sps, learning_rate=lrs, train_v=tv, data_index=idx,
                            mask=masks, random_states=[seeds[g] for g in groups], order_groups=groups, **kw)
    ones = [train_iht(X[idx[b]], y[idx[b]], W0[b], v0[b], sparsifier=sps[b], learning_rate=lrs[b], train_v=tv[b],
                      mask=masks[b], random_state=seeds[groups[b]], **kw) for b in range(B)]
    return res, ones, masks


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("joint", [True, False])
def test_order_groups_equal_training_each_alone_with_the_group_seed(dtype, joint, rng, monkeypatch):
    monkeypatch.setattr(_train, "_JOINT_BYTES", 1 << 30 if joint else 0)  # [X | y] in one array, or not
    res, ones, masks = _grouped_case(rng, dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-13)
    for b, one in enumerate(ones):
        assert res.W.dtype == one.W.dtype == dtype
        np.testing.assert_allclose(res.W[b], one.W, **tol)
        np.testing.assert_allclose(res.v[b], one.v, **tol)
        np.testing.assert_allclose(res.history["train_loss"][b], one.history["train_loss"], rtol=1e-4 if
                                   dtype == np.float32 else 1e-10)
    np.testing.assert_array_equal(res.W[~masks], 0.0)  # the masks hold in the grouped layout too


def test_order_groups_share_the_order_and_prox_falls_back(rng):
    n, d, k, B = 40, 3, 2, 4
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    W0 = np.repeat(0.3 * rng.standard_normal((1, d, k)), B, axis=0)
    v0 = np.ones((B, k))
    kw = dict(sparsifiers=None, epochs=2, batch_size=7, learning_rate=1e-2)
    # Same group, same start: identical models whatever the other members' seeds.
    res = train_iht_batched(X, y, W0, v0, random_states=[3, 4, 5, 6], order_groups=[0, 0, 1, 1], **kw)
    np.testing.assert_allclose(res.W[1], res.W[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.W[3], res.W[2], rtol=1e-12, atol=1e-15)
    alone = train_iht(X, y, W0[2], v0[2], sparsifier=None, epochs=2, batch_size=7, learning_rate=1e-2,
                      random_state=5)
    np.testing.assert_allclose(res.W[3], alone.W, rtol=1e-12, atol=1e-15)
    # A prox runs on the general path, with the groups' orders.
    prox = lambda W, step: np.sign(W) * np.maximum(np.abs(W) - 1e-3 * step, 0.0)  # noqa: E731
    res_p = train_iht_batched(X, y, W0, v0, random_states=[3, 4, 5, 6], order_groups=[0, 0, 1, 1], prox=prox, **kw)
    alone_p = train_iht(X, y, W0[3], v0[3], sparsifier=None, epochs=2, batch_size=7, learning_rate=1e-2,
                        random_state=5, prox=prox)
    np.testing.assert_allclose(res_p.W[3], alone_p.W, rtol=1e-12, atol=1e-15)


def test_order_groups_bad_input(rng):
    X, y = rng.standard_normal((2, 30, 3)), rng.standard_normal((2, 30))
    W0, v0 = rng.standard_normal((3, 3, 2)), rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="order_groups"):
        train_iht_batched(X, y, W0, v0, sparsifiers=None, epochs=1, order_groups=[0, 0])
    with pytest.raises(ValueError, match="share 'data_index'"):
        train_iht_batched(X, y, W0, v0, sparsifiers=None, epochs=1, data_index=[0, 1, 1], order_groups=[0, 0, 1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(train_v="no"), "'train_v' parameter of train_iht must be a bool"),
        (dict(train_v=2), "'train_v' parameter"),
        (dict(learning_rate="a"), "'learning_rate' parameter of train_iht must be a number"),
        (dict(learning_rate=True), "'learning_rate' parameter"),
        (dict(pretrain_epochs="2"), "'pretrain_epochs' parameter"),
        (dict(X_test=np.ones((5, 3))), "Give both 'X_test' and 'y_test'"),
        (dict(y_test=np.ones(5)), "Give both 'X_test' and 'y_test'"),
        (dict(mask=np.ones((2, 2), dtype=bool)), r"'mask' parameter must have shape \(3, 2\)"),
        (dict(dtype=int), "'dtype' parameter of train_iht must be numpy.float32 or numpy.float64"),
    ],
)
def test_more_bad_input_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_iht(np.ones((10, 3)), np.ones(10), np.ones((3, 2)), np.ones(2), sparsifier=Dense(), epochs=1, **kwargs)


def test_batched_bad_seeds_and_data_index():
    X, y, W0, v0 = np.ones((10, 3)), np.ones(10), np.ones((2, 3, 2)), np.ones((2, 2))
    with pytest.raises(ValueError, match="'random_states' parameter must be a list"):
        train_iht_batched(X, y, W0, v0, sparsifiers=Dense(), epochs=1, random_states=3)
    with pytest.raises(ValueError, match="'data_index' parameter"):
        train_iht_batched(X, y, W0, v0, sparsifiers=Dense(), epochs=1, data_index=[0.5, 0])


def test_zero_epochs_still_returns_exactly_sparse_w(rng):
    W0 = rng.standard_normal((6, 3))
    res = train_iht(rng.standard_normal((20, 6)), rng.standard_normal(20), W0, np.ones(3),
                    sparsifier=Threshold(0.5), epochs=0)
    np.testing.assert_array_equal(res.W, np.where(np.abs(W0) > 0.5, W0, 0.0))


@pytest.mark.parametrize("epochs, pretrain", [(3, 1), (0, 0), (3, 5)])  # during training / final projection only
@pytest.mark.parametrize(
    "bad, match",
    [(lambda W: W[:1], r"weights' shape \(6, 3\). Got shape \(1, 3\) instead \(model 0\)"),
     (lambda W: W * np.nan, r"must return finite numbers. Got NaN or inf instead \(model 0\)")],
)
def test_user_sparsifier_bad_output_is_refused(tiny_problem, epochs, pretrain, bad, match):
    p = tiny_problem
    with pytest.raises(ValueError, match=match):
        train_iht(p.X, p.y, p.W + 0.1, p.v, sparsifier=bad, epochs=epochs, pretrain_epochs=pretrain, random_state=0)


# --- loss_history=False: losses at epoch 0 and the last only, divergence still checked every epoch ----


def _history_case(path, seed, n, d, k, P, B):
    """A training call on ``path`` ("minibatch", "grouped", "full") with P data sets and B models."""
    g = np.random.default_rng(seed)
    X, y = g.standard_normal((P, n, d)), g.standard_normal((P, n))
    Xt, yt = g.standard_normal((P, 50, d)), g.standard_normal((P, 50))
    W0, v0 = 0.4 * g.standard_normal((B, d, k)), g.standard_normal((B, k))
    idx = np.arange(B) % P
    kw = dict(sparsifiers=[TopFraction(0.6), Threshold(0.1), Dense()] * B, epochs=4, pretrain_epochs=1,
              learning_rate=np.linspace(1e-3, 3e-3, B), train_v=np.arange(B) % 2 == 0, data_index=idx,
              X_test=Xt, y_test=yt, random_states=list(range(B)), on_divergence="flag",
              batch_size=None if path == "full" else 16)
    kw["sparsifiers"] = kw["sparsifiers"][:B]
    if path == "grouped":
        kw["order_groups"] = idx
    return (X, y, W0, v0), kw


@pytest.mark.parametrize("kernels", ["compiled", "numpy"])
@pytest.mark.parametrize("path", ["minibatch", "grouped", "full"])
@pytest.mark.parametrize("seed, n, d, k, P, B", [(0, 300, 6, 3, 2, 5), (1, 90, 5, 2, 1, 3), (2, 600, 21, 4, 3, 7)])
def test_loss_history_off_gives_the_same_models_and_end_losses(kernels, path, seed, n, d, k, P, B, monkeypatch):
    monkeypatch.setattr(_train, "_KERNELS", kernels)
    args, kw = _history_case(path, seed, n, d, k, P, B)
    full = train_iht_batched(*args, **kw)
    lean = train_iht_batched(*args, loss_history=False, **kw)
    assert not full.diverged.any() and not lean.diverged.any()
    np.testing.assert_array_equal(lean.W, full.W)
    np.testing.assert_array_equal(lean.v, full.v)
    np.testing.assert_array_equal(lean.history["nnz"], full.history["nnz"])  # nnz still every epoch
    for name in ("train_loss", "test_loss"):
        assert np.all(np.isfinite(full.history[name]))
        np.testing.assert_array_equal(lean.history[name][:, [0, -1]], full.history[name][:, [0, -1]])
        assert np.all(np.isnan(lean.history[name][:, 1:-1]))


def test_loss_history_off_single_model(tiny_problem):
    p = tiny_problem
    kw = dict(sparsifier=Threshold(0.1), epochs=3, random_state=0, X_test=p.X_test, y_test=p.y_test)
    full = train_iht(p.X, p.y, p.W, p.v, **kw)
    lean = train_iht(p.X, p.y, p.W, p.v, loss_history=False, **kw)
    np.testing.assert_array_equal(lean.W, full.W)
    np.testing.assert_array_equal(lean.history["test_loss"][[0, -1]], full.history["test_loss"][[0, -1]])
    assert np.isnan(lean.history["train_loss"][1:-1]).all()


@pytest.mark.parametrize("kernels", ["compiled", "numpy"])
def test_loss_history_off_still_detects_divergence_every_epoch(tiny_problem, kernels, monkeypatch):
    monkeypatch.setattr(_train, "_KERNELS", kernels)
    p = tiny_problem
    # raise: caught at an intermediate epoch (by the probe rows), not only after the last of 6
    with pytest.raises(ValueError, match=r"diverged at epoch [1-5] \(train loss on the first 256 rows.*smaller"):
        train_iht(p.X, p.y, p.W * 3, p.v, sparsifier=Dense(), epochs=6, learning_rate=10.0, random_state=0,
                  loss_history=False)
    # flag: the diverged model is frozen (NaN), the other one trains as with the full history
    W0, v0 = np.stack([p.W, p.W * 3]), np.stack([p.v, p.v])
    kw = dict(sparsifiers=Dense(), epochs=6, learning_rate=np.array([1e-3, 10.0]), on_divergence="flag",
              random_states=[0, 1])
    full = train_iht_batched(p.X, p.y, W0, v0, **kw)
    lean = train_iht_batched(p.X, p.y, W0, v0, loss_history=False, **kw)
    assert lean.diverged.tolist() == full.diverged.tolist() == [False, True]
    assert np.all(np.isnan(lean.W[1])) and np.all(np.isnan(lean.v[1]))
    np.testing.assert_array_equal(lean.W[0], full.W[0])
    # frozen at zero from the epoch of detection on: nnz 0 before the last epoch
    assert lean.history["nnz"][1, -2] == 0


def test_loss_history_must_be_bool(tiny_problem):
    p = tiny_problem
    with pytest.raises(ValueError, match="'loss_history' parameter of train_iht must be a bool. Got 'no'"):
        train_iht(p.X, p.y, p.W, p.v, sparsifier=Dense(), epochs=1, loss_history="no")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grouped_sparsification_equals_each_models_own_call(dtype):
    """_sparsify applies the models of one shipped sparsifier kind as one array operation: the same bits
    as calling each model's sparsifier on its own W (thresholds at float32-rounding boundaries, ties at
    the top-p cut-off, Dense, a user callable, models not selected or diverged left alone)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    B, d, k = 40, 6, 3
    W = rng.standard_normal((B, d, k)).astype(dtype)
    W[:, 0, :] = dtype(0.15)  # exactly the float32 rounding of a threshold of 0.15
    W[::3, 1, :] = 0.5  # ties at the top-p cut-off
    sps = []
    for b in range(B):
        kind = b % 5
        sps.append(Threshold([0.15, 0.3, 0.0][b % 3]) if kind in (0, 1) else TopFraction([0.5, 0.25][b % 2])
                   if kind in (2, 3) else Dense() if b % 2 else (lambda w: np.where(w > 0, w, 0.0)))
    selected = rng.random(B) < 0.8
    diverged = rng.random(B) < 0.1
    inp = SimpleNamespace(W=W.copy(), sparsifiers=sps)
    _train._sparsify(inp, selected, diverged, _train._sparsifier_groups(sps))
    for b in range(B):
        expect = np.asarray(sps[b](W[b])) if selected[b] and not diverged[b] else W[b]
        np.testing.assert_array_equal(inp.W[b], expect.astype(dtype), err_msg=f"model {b}: {sps[b]!r}")
    assert inp.W.dtype == dtype


def test_grouped_sparsification_refuses_an_infinite_output_naming_the_model():
    from types import SimpleNamespace

    W = np.ones((4, 3, 2))
    W[2, 1, 1] = np.inf
    inp = SimpleNamespace(W=W, sparsifiers=[Threshold(0.1)] * 4)
    with pytest.raises(ValueError, match=r"must return finite numbers\. Got NaN or inf instead \(model 2\)"):
        _train._sparsify(inp, np.ones(4, bool), np.zeros(4, bool), _train._sparsifier_groups(inp.sparsifiers))
