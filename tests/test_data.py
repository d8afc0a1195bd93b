import numpy as np
import pytest

from sparsenet.data import make_planted


def test_dense_planted_weights_have_the_prescribed_spectrum():
    p = make_planted(10, 12, 4, kappa=3.0, random_state=0)
    np.testing.assert_allclose(np.sort(np.linalg.svd(p.W, compute_uv=False)), np.linspace(1, 3, 4), rtol=1e-12)
    assert set(np.unique(p.v)) <= {-1.0, 1.0}
    assert p.X.shape == (10, 12) and p.X_test.shape == (1000, 12)


def test_targets_follow_the_model_without_noise():
    p = make_planted(50, 6, 3, activation="tanh", random_state=1)
    direct = sum(p.v[j] * np.tanh(p.X @ p.W[:, j]) for j in range(3))
    np.testing.assert_allclose(p.y, direct, rtol=1e-12)


def test_threshold_and_fraction_sparsity():
    p = make_planted(10, 20, 5, thresh_gt=0.15, random_state=2)
    dense = make_planted(10, 20, 5, random_state=2).W
    np.testing.assert_array_equal(p.W, np.where(np.abs(dense) > 0.15, dense, 0))
    q = make_planted(10, 20, 5, p_gt=0.25, random_state=2)
    assert np.count_nonzero(q.W) == 25
    assert np.abs(q.W[q.W != 0]).min() >= np.abs(dense[q.W == 0]).max()


def test_noise_level():
    p = make_planted(20000, 4, 2, noise_sd=0.3, n_test=10, random_state=3)
    resid = p.y - p.activation(p.X @ p.W) @ p.v
    assert np.std(resid) == pytest.approx(0.3, rel=0.03)


def test_same_seed_same_problem():
    a, b = (make_planted(30, 5, 2, p_gt=0.5, noise_sd=0.1, random_state=9) for _ in range(2))
    for name in ("X", "y", "X_test", "y_test", "W", "v"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=7), r"'k' parameter of make_planted must be an int in the range \[1, 6\]. Got 7"),
        (dict(k=0), "'k' parameter"),
        (dict(n=0), "'n' parameter"),
        (dict(noise_sd=-0.1), r"'noise_sd' parameter of make_planted must be a float in the range \[0, inf\)"),
        (dict(p_gt=0.0), r"'p_gt' parameter of make_planted must be a float in the range \(0, 1\]"),
        (dict(p_gt=1.2), "'p_gt' parameter"),
        (dict(thresh_gt=-1.0), "'thresh_gt' parameter"),
        (dict(thresh_gt=0.1, p_gt=0.5), "at most one of 'thresh_gt' and 'p_gt'"),
        (dict(kappa=0.5), "'kappa' parameter"),
        (dict(activation="swish"), "'activation' parameter must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(n=10, d=6, k=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_planted(args.pop("n"), args.pop("d"), args.pop("k"), **args)


def test_threshold_that_removes_the_whole_network_is_refused():
    with pytest.raises(ValueError, match="'thresh_gt' parameter of make_planted zeroes every weight"):
        make_planted(50, 5, 2, thresh_gt=5.0, random_state=0)
