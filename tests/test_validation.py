import numpy as np
import pytest

from sparsenet._validation import check_data, check_random_state, check_scalar


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


def test_huge_finite_values_are_accepted():
    # their sum overflows to inf, which must not be mistaken for a non-finite entry
    X = np.full((4, 3), 1e308)
    assert check_data(X)[0] is not None
    with pytest.raises(ValueError, match=r"first at index \(2, 1\)"):
        X[2, 1] = np.nan
        check_data(X)
