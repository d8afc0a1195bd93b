import numpy as np
import pytest

from sparsenet._validation import check_data, check_random_state, check_scalar, max_abs_value


def test_random_state_forms():
    g = np.random.default_rng(0)
    assert check_random_state(g) is g
    a, b = check_random_state(5), check_random_state(5)
    assert a.integers(1 << 30) == b.integers(1 << 30)
    with pytest.raises(ValueError, match="'random_state' parameter"):
        check_random_state("seed")
    with pytest.raises(ValueError, match="'random_state' parameter"):
        check_random_state(-1)


@pytest.mark.parametrize(
    "value, kwargs, match",
    [
        (1.5, dict(low=0, high=1, closed="right"), r"range \(0, 1\]. Got 1.5 instead"),
        (0, dict(low=0, high=1, closed="right"), r"range \(0, 1\]. Got 0 instead"),
        (np.nan, dict(), "Got nan instead"),
        (True, dict(), "Got True"),
        (2.5, dict(kind="int"), "must be an int"),
        (-1, dict(kind="int", low=0), r"range \[0, inf\)"),
    ],
)
def test_check_scalar_messages(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_scalar(value, "p", owner="Thing", **kwargs)


def test_check_scalar_accepts():
    assert check_scalar(3.0, "n", kind="int", low=1) == 3
    assert isinstance(check_scalar(np.float32(0.5), "p", low=0, high=1), float)


def test_check_data_messages():
    with pytest.raises(ValueError, match="'X' must be a numeric array"):
        check_data([["a", "b"]])
    with pytest.raises(ValueError, match="at least 5 samples"):
        check_data(np.ones((3, 2)), min_samples=5)
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at index \(1, 0\)\)"):
        check_data(np.array([[1.0, 2.0], [np.inf, 1.0]]))


def test_huge_finite_values_are_not_called_nan():
    # their sum overflows to inf, which must not be mistaken for a non-finite entry: they are refused
    # as too large for the model instead (issue 13), and a real NaN is still reported as NaN.
    X = np.full((4, 3), 1e308)
    with pytest.raises(ValueError, match=r"Input 'X' has a value too large for the model: X\[0, 0\] = 1e\+308"):
        check_data(X)
    with pytest.raises(ValueError, match=r"first at index \(2, 1\)"):
        X[2, 1] = np.nan
        check_data(X)


def _limit_by_brute_force(n):
    """Largest power of 10 such that n products of five such values still sum to a finite float64."""
    e = 0
    with np.errstate(over="ignore"):
        while np.isfinite(np.float64(n) * np.float64(10.0 ** (e + 1)) ** 5):
            e += 1
    return 10.0 ** e


@pytest.mark.parametrize("n", [10, 3000, 10**6])
def test_max_abs_value_is_where_five_fold_products_overflow(n):
    # Independent oracle: the largest power of 10 whose five-fold product, summed n times, is finite.
    limit = max_abs_value(n)
    oracle = _limit_by_brute_force(n)
    assert oracle / 1.01 <= limit < 10 * oracle
    with np.errstate(over="ignore"):
        assert np.isfinite(n * np.float64(limit) ** 5) and not np.isfinite(n * np.float64(1.01 * limit) ** 5)


@pytest.mark.parametrize(
    "where, name, match",
    [
        ((5, 2), "X", r"X\[5, 2\] = 1e\+300 \(row 5, column 2\)\. Values beyond .* standardize the features"),
        (7, "y", r"y\[7\] = -1e\+300 \(row 7\)\. Values beyond .* standardize the target"),
    ],
)
def test_value_too_large_names_its_cell(where, name, match):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    (X if name == "X" else y)[where] = 1e300 if name == "X" else -1e300
    with pytest.raises(ValueError, match=rf"Input '{name}' has a value too large for the model: {match}"):
        check_data(X, y)
    # A target scaled by 1e200: the largest entry is named.
    y = rng.standard_normal(50)
    with pytest.raises(ValueError, match=rf"y\[{np.argmax(np.abs(y))}\] = "):
        check_data(rng.standard_normal((50, 4)), y * 1e200)


def test_large_values_reach_train_and_tensor_init_as_a_clear_error():
    # Before: "Training diverged ... try a smaller learning_rate" and "SVD did not converge".
    from sparsenet.data import make_planted
    from sparsenet.sparsify import Threshold
    from sparsenet.tensor_init import tensor_init
    from sparsenet.train import train_iht

    p = make_planted(600, 5, 2, random_state=0)
    X, y = p.X.copy(), p.y.copy()
    X[3, 1] = 1e300
    with pytest.raises(ValueError, match=r"too large for the model: X\[3, 1\]"):
        train_iht(X, y, p.W, p.v, sparsifier=Threshold(0.1), epochs=1, random_state=0)
    with pytest.raises(ValueError, match=r"too large for the model: y\[\d+\]"):
        tensor_init(p.X, p.y * 1e200, 2, random_state=0)
