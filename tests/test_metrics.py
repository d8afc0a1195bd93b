import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenet.metrics import align, recovery_error, support_confusion, test_mse


def brute_force_error(W, v, W_true, v_true, odd=False):
    best = np.inf
    k = W.shape[1]
    for perm in itertools.permutations(range(k)):
        perm = list(perm)
        Wp, vp = W[:, perm].copy(), v[perm].copy()
        if odd:
            s = np.sign(vp) * np.sign(v_true)
            Wp, vp = Wp * s, vp * s
        if np.all(np.sign(vp) == np.sign(v_true)):
            best = min(best, np.linalg.norm(Wp - W_true) / np.linalg.norm(W_true))
    return best


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), d=st.integers(1, 5), odd=st.booleans())
def test_recovery_error_equals_brute_force(seed, k, d, odd):
    rng = np.random.default_rng(seed)
    W_true = rng.standard_normal((d, k))
    v_true = rng.choice([-1.0, 1.0], k)
    W = W_true[:, rng.permutation(k)] + 0.5 * rng.standard_normal((d, k))
    v = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 2, k)
    got = recovery_error(W, v, W_true, v_true, activation="tanh" if odd else None)
    want = brute_force_error(W, v, W_true, v_true, odd=odd)
    if np.isinf(want):
        assert np.isinf(got)
    else:
        assert got == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_permuted_truth_has_zero_error(rng):
    W = rng.standard_normal((8, 5))
    v = np.array([1.0, -1, 1, -1, 1])
    perm = rng.permutation(5)
    assert recovery_error(W[:, perm], v[perm], W, v) == pytest.approx(0.0, abs=1e-14)
    al = align(W[:, perm], v[perm], W, v)
    np.testing.assert_array_equal(al.W, W)
    assert al.sign_consistent


def test_sign_multiset_mismatch_is_infinite(rng):
    W = rng.standard_normal((4, 3))
    assert recovery_error(W, np.array([1.0, 1, 1]), W, np.array([1.0, 1, -1])) == np.inf
    assert not align(W, np.array([1.0, 1, 1]), W, np.array([1.0, 1, -1])).sign_consistent


def test_odd_activation_matches_up_to_flip(rng):
    W = rng.standard_normal((6, 3))
    v = np.array([1.0, -1.0, 1.0])
    s = np.array([-1.0, 1.0, -1.0])
    assert recovery_error(W * s, v * s, W, v, activation="tanh") == pytest.approx(0, abs=1e-14)
    assert recovery_error(W * s, v * s, W, v) == np.inf  # without the symmetry the signs differ


def test_nonfinite_estimate_gives_nan(rng):
    W = rng.standard_normal((4, 2))
    assert np.isnan(recovery_error(np.full((4, 2), np.nan), np.ones(2), W, np.ones(2)))


def test_support_confusion_counts(rng):
    W_true = np.array([[1.0, 0.0], [0.0, 2.0], [0.5, 0.0]])
    W_hat = np.array([[0.9, 0.2], [0.0, 1.9], [0.0, 0.005]])  # one false alarm, one mis-detection
    c = support_confusion(W_hat, W_true, tol=1e-2)
    assert (c.tp, c.tn, c.fa, c.md) == (2, 2, 1, 1)
    assert c.tp + c.tn + c.fa + c.md == W_true.size
    assert c.pct_true_negative == pytest.approx(100 * 2 / 3)
    assert c.pct_true_positive == pytest.approx(100 * 2 / 3)
    assert not c.exact
    # columns swapped in the estimate are aligned first
    c2 = support_confusion(W_hat[:, ::-1], W_true, tol=1e-2)
    assert c2 == c
    with pytest.raises(ValueError, match="'tol' parameter"):
        support_confusion(W_hat, W_true, tol=-1)


def test_test_mse_direct_formula(rng):
    X = rng.standard_normal((50, 4))
    W = rng.standard_normal((4, 3))
    v = rng.standard_normal(3)
    y = rng.standard_normal(50)
    pred = sum(v[j] * np.maximum(X @ W[:, j], 0) ** 2 for j in range(3))
    assert test_mse(W, v, X, y, "relu2") == pytest.approx(np.mean((pred - y) ** 2), rel=1e-12)


def test_sigmoid_matches_up_to_flip_like_odd(rng):
    # sigmoid(-z) = 1 - sigmoid(z): flipping (v_j, w_j) changes y by a constant only, so the data
    # identify v_j·w_j; the metric must not punish the flip.
    W = rng.standard_normal((5, 3))
    v = np.array([1.0, -1.0, -1.0])
    s = np.array([1.0, -1.0, 1.0])
    assert recovery_error(W * s, v * s, W, v, activation="sigmoid") == pytest.approx(0, abs=1e-14)
    assert recovery_error(W * s, v * s, W, v, activation="relu2") == np.inf


def test_metric_input_errors(rng):
    W = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match=r"'v' must have shape \(2,\)"):
        recovery_error(W, np.ones(3), W, np.ones(2))
    with pytest.raises(ValueError, match="'W_true' contains NaN"):
        recovery_error(W, np.ones(2), np.full((3, 2), np.nan), np.ones(2))
    with pytest.raises(ValueError, match="'W' must have the shape of W_true"):
        recovery_error(np.ones(3), np.ones(2), W, np.ones(2))
    with pytest.raises(ValueError, match="'tol' parameter of support_confusion"):
        support_confusion(W, W, tol="a")
    with pytest.raises(ValueError, match="'tol' parameter of support_confusion"):
        support_confusion(W, W, tol=float("nan"))


@pytest.mark.parametrize("activation", ["relu2", "tanh"])
def test_evaluate_equals_the_single_metrics(activation):
    """evaluate() matches the units once for both metrics: the same values as recovery_error and
    support_confusion called alone, including sign-inconsistent estimates (infinite error)."""
    from sparsenet import make_planted
    from sparsenet.metrics import evaluate

    rng = np.random.default_rng(7)
    problem = make_planted(200, 6, 3, activation=activation, thresh_gt=0.2, n_test=50, random_state=1)
    for trial in range(20):
        W = problem.W[:, rng.permutation(3)] + 0.3 * rng.standard_normal((6, 3)) * (trial % 2)
        v = rng.choice([-1.0, 1.0], 3) if trial % 3 == 0 else problem.v[rng.permutation(3)]
        m = evaluate(W, v, problem, tol=0.05)
        err = recovery_error(W, v, problem.W, problem.v, activation=activation)
        conf = support_confusion(W, problem.W, 0.05, v=v, v_true=problem.v, activation=activation)
        assert m["recovery_error"] == err or (np.isnan(err) and np.isnan(m["recovery_error"]))
        assert (m["tp"], m["tn"], m["fa"], m["md"], m["exact_support"]) == (
            conf.tp, conf.tn, conf.fa, conf.md, int(conf.exact))
    with pytest.raises(ValueError, match="tol"):
        evaluate(problem.W, problem.v, problem, tol=-1.0)
