"""netfit: gradient by finite differences, L-BFGS fits against closed forms and scikit-learn, the path."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sparsenet.activations import get_activation
from sparsenet.netfit import Network, fit_network, objective, path_fractions, prune, saliency, sparsity_path
from sparsenet.sparsify import Threshold, TopFraction


def random_net(rng, d, k, m):
    return Network(W=rng.normal(size=(d, k)), c=rng.normal(size=k), V=rng.normal(size=(k, m)),
                   B=rng.normal(size=(d, m)), b=rng.normal(size=m))


def ones_like(net, value=True):
    return Network(*(np.full(a.shape, value) for a in (net.W, net.c, net.V, net.B, net.b)))


@pytest.mark.parametrize("loss, m", [("squared", 1), ("squared", 2), ("logistic", 1), ("multinomial", 3)])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu2"])
def test_gradient_matches_finite_differences(loss, m, activation):
    rng = np.random.default_rng(0)
    n, d, k = 30, 4, 3
    X = rng.normal(size=(n, d))
    if loss == "squared":
        Y = rng.normal(size=(n, m))
    elif loss == "logistic":
        Y = rng.integers(0, 2, size=(n, 1)).astype(float)
    else:
        Y = np.eye(m)[rng.integers(0, m, size=n)]
    net = random_net(rng, d, k, m)
    act = get_activation(activation)
    _, grad = objective(net, X, Y, act, loss=loss, alpha=0.3)
    theta = net.ravel()
    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        numeric[i] = (objective(net.like(theta + e), X, Y, act, loss=loss, alpha=0.3)[0]
                      - objective(net.like(theta - e), X, Y, act, loss=loss, alpha=0.3)[0]) / (2 * h)
    assert_allclose(grad.ravel(), numeric, rtol=1e-5, atol=1e-7)


def linear_only(d, m=1):
    """Free mask of a network reduced to its skip term and output bias (W, c, V frozen at 0)."""
    return Network(W=np.zeros((d, 1), bool), c=np.zeros(1, bool), V=np.zeros((1, m), bool),
                   B=np.ones((d, m), bool), b=np.ones(m, bool))


def zero_net(d, m=1):
    return Network(W=np.zeros((d, 1)), c=np.zeros(1), V=np.zeros((1, m)), B=np.zeros((d, m)), b=np.zeros(m))


def test_skip_only_fit_equals_ridge_closed_form():
    """With W frozen at 0 the objective is ridge regression: ½·mean(r²) + ½·α‖B‖², intercept unpenalized."""
    rng = np.random.default_rng(1)
    n, d, alpha = 200, 5, 0.05
    X = rng.normal(size=(n, d)) + 2.0
    y = X @ rng.normal(size=d) + 1.5 + 0.3 * rng.normal(size=n)
    net, info = fit_network(X, y[:, None], zero_net(d), linear_only(d), get_activation("relu"), alpha=alpha,
                            tol=1e-12, max_iter=1000)
    Xc, yc = X - X.mean(0), y - y.mean()
    beta = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(d), Xc.T @ yc / n)
    assert_allclose(net.B[:, 0], beta, rtol=1e-6, atol=1e-8)
    assert_allclose(net.b[0], y.mean() - X.mean(0) @ beta, rtol=1e-6)
    assert info.stop == "converged"


def test_skip_only_logistic_equals_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n, d, alpha = 300, 4, 0.01
    X = rng.normal(size=(n, d))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + 0.3 + rng.logistic(size=n) > 0).astype(float)
    net, _ = fit_network(X, y[:, None], zero_net(d), linear_only(d), get_activation("relu"), loss="logistic",
                         alpha=alpha, tol=1e-12, max_iter=1000)
    # sklearn minimizes ½‖w‖² + C Σ logloss = (n C)·(mean logloss + ½·‖w‖²/(n C)): C = 1/(n α).
    ref = LogisticRegression(C=1.0 / (n * alpha), tol=1e-12, max_iter=10000).fit(X, y)
    assert_allclose(net.B[:, 0], ref.coef_[0], rtol=1e-4, atol=1e-6)
    assert_allclose(net.b[0], ref.intercept_[0], rtol=1e-4, atol=1e-6)


def test_frozen_entries_stay_exactly_at_their_values():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(80, 5)), rng.normal(size=(80, 1))
    net0 = random_net(rng, 5, 4, 1)
    free = ones_like(net0)
    mask = rng.random((5, 4)) < 0.5
    net0 = Network(W=net0.W * mask, c=net0.c, V=net0.V, B=net0.B, b=net0.b)
    free = Network(W=mask, c=np.zeros(4, bool), V=free.V, B=np.zeros((5, 1), bool), b=free.b)
    net, _ = fit_network(X, y, net0, free, get_activation("tanh"), max_iter=30)
    assert_array_equal(net.W[~mask], 0.0)
    assert_array_equal(net.c, net0.c)
    assert_array_equal(net.B, net0.B)
    assert not np.array_equal(net.W[mask], net0.W[mask])


def test_fit_decreases_the_objective():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 3))
    y = np.tanh(X @ [1.0, -1.0, 0.5])[:, None]
    net0 = random_net(rng, 3, 4, 1)
    act = get_activation("tanh")
    before = objective(net0, X, y, act, alpha=1e-3)[0]
    net, info = fit_network(X, y, net0, ones_like(net0), act, alpha=1e-3)
    assert objective(net, X, y, act, alpha=1e-3)[0] < before
    assert info.n_iter > 0 and info.stop in ("converged", "max_iter")


def test_early_stopping_returns_the_best_validation_iterate():
    """Noise-only targets and many parameters: the held-out loss stops improving, the run stops early, and
    the returned parameters score no worse on the held-out rows than the final L-BFGS iterate."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(60, 8)), rng.normal(size=(60, 1))
    Xv, yv = rng.normal(size=(40, 8)), rng.normal(size=(40, 1))
    net0 = random_net(rng, 8, 10, 1)
    act = get_activation("tanh")
    net, info = fit_network(X, y, net0, ones_like(net0), act, validation=(Xv, yv), n_iter_no_change=5,
                            max_iter=500)
    assert info.stop == "early stopping"
    free_run, _ = fit_network(X, y, net0, ones_like(net0), act, max_iter=info.n_iter)
    val = lambda nt: 0.5 * np.mean((nt.decision(Xv, act) - yv) ** 2)  # noqa: E731
    assert val(net) <= val(free_run) + 1e-12
    assert info.val_loss == pytest.approx(val(net))


def test_path_fractions():
    assert path_fractions(0.25) == [0.5, 0.25]
    assert path_fractions(0.1) == [0.5, 0.25, 0.125, 0.1]
    assert path_fractions(0.5) == [0.5]
    assert path_fractions(1.0) == []


def test_saliency_invariant_to_rescaling_a_relu_unit():
    """ReLU is 1-homogeneous: (w, v) -> (t w, v / t) is the same network; its saliencies do not change."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 4))
    net = random_net(rng, 4, 3, 1)
    relu = get_activation("relu")
    t = np.array([3.0, 0.2, 1.0])
    scaled = Network(W=net.W * t, c=net.c * t, V=net.V / t[:, None], B=net.B, b=net.b)
    assert_allclose(scaled.decision(X, relu), net.decision(X, relu))
    assert_allclose(saliency(scaled, X, relu), saliency(net, X, relu), rtol=1e-12)


def test_prune_keeps_the_budget_jointly_over_W_and_B():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 5))
    net = random_net(rng, 5, 3, 1)
    pruned, (mask_W, mask_B) = prune(net, TopFraction(0.25), True, X, get_activation("relu"))
    assert mask_W.sum() + mask_B.sum() == round(0.25 * 5 * 4)
    assert_array_equal(pruned.W != 0, mask_W)
    # Without the skip term B is dropped entirely and the budget is over W alone.
    pruned, (mask_W, mask_B) = prune(net, TopFraction(0.25), False, X, get_activation("relu"))
    assert mask_W.sum() == round(0.25 * 15) and not mask_B.any() and not pruned.B.any()
    # A Threshold acts on the weights themselves.
    _, (mask_W, _) = prune(net, Threshold(0.5), False)
    assert_array_equal(mask_W, np.abs(net.W) > 0.5)


def test_sparsity_path_is_nested_and_warm_started():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(120, 6))
    y = (np.maximum(X[:, 0] + X[:, 1], 0) + 0.5 * X[:, 2])[:, None]
    net0 = Network(W=rng.normal(size=(6, 4)) / 3, c=np.zeros(4), V=rng.choice([-1.0, 1.0], (4, 1)) / 2,
                   B=np.zeros((6, 1)), b=np.zeros(1))
    stages = [TopFraction(q) for q in path_fractions(0.125)]
    path = sparsity_path(X, y, net0, get_activation("relu"), stages=stages, hidden_bias=True, skip=True,
                         alpha=1e-4)
    supports = [np.concatenate([net.W, net.B], axis=1) != 0 for net, _ in path]
    counts = [s.sum() for s in supports]
    assert counts == [30, 15, 8, 4]  # round(q · 6 · 5)
    for bigger, smaller in zip(supports, supports[1:]):
        assert not np.any(smaller & ~bigger)  # each support inside the previous one
    assert path[-1][1].train_loss < 0.5 * np.var(y)  # the 4-weight network still explains most of y


def test_early_stopping_keeps_training_while_the_held_out_loss_improves():
    """Learnable, noise-free data: the held-out loss improves for many iterations, so the run goes well past
    the patience and ends far below the starting held-out loss (it once stopped at iteration 10 for good)."""
    rng = np.random.default_rng(9)
    w = np.array([1.0, -0.5, 0.25])
    X, Xv = rng.normal(size=(200, 3)), rng.normal(size=(50, 3))
    y, yv = np.tanh(X @ w)[:, None], np.tanh(Xv @ w)[:, None]
    net0 = random_net(rng, 3, 2, 1)
    act = get_activation("tanh")
    start = 0.5 * np.mean((net0.decision(Xv, act) - yv) ** 2)
    net, info = fit_network(X, y, net0, ones_like(net0), act, validation=(Xv, yv), n_iter_no_change=10,
                            max_iter=500)
    assert info.n_iter > 10
    assert info.val_loss < 1e-3 * start
