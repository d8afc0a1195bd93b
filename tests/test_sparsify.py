import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sparsenet.sparsify import SPARSIFIERS, Dense, Sparsifier, Threshold, TopFraction, check_sparsifier_output, get_sparsifier

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
matrices = st.integers(1, 6).flatmap(
    lambda d: st.integers(1, 4).flatmap(lambda k: arrays(np.float64, (d, k), elements=finite))
)
batches = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4)).flatmap(
    lambda s: arrays(np.float64, s, elements=finite)
)


@settings(max_examples=60, deadline=None)
@given(W=matrices, t=st.floats(0, 5))
def test_threshold_definition(W, t):
    out = Threshold(t)(W)
    keep = np.abs(W) > t
    np.testing.assert_array_equal(out[keep], W[keep])
    assert np.all(out[~keep] == 0)
    np.testing.assert_array_equal(Threshold(t)(out), out)  # idempotent


@settings(max_examples=60, deadline=None)
@given(W=batches, p=st.floats(0.01, 1.0))
def test_top_fraction_keeps_exact_count_of_largest(W, p):
    sp = TopFraction(p)
    out = sp(W)
    d, k = W.shape[-2:]
    n_keep = max(1, round(p * d * k))
    for b in range(W.shape[0]):
        kept = out[b] != 0
        # entries that are kept keep their value; zero entries of W may be "kept" as 0
        np.testing.assert_array_equal(out[b][kept], W[b][kept])
        mags = np.sort(np.abs(W[b]).ravel())[::-1]
        n_nonzero_input = np.count_nonzero(W[b])
        assert np.count_nonzero(out[b]) == min(n_keep, n_nonzero_input)
        if kept.any() and (~kept).any():
            # every dropped magnitude is at most every kept magnitude
            assert np.abs(W[b][~kept]).max() <= np.abs(out[b][kept]).min() + 0.0
        # the kept mass is the largest possible
        assert np.isclose(np.abs(out[b]).sum(), mags[:n_keep].sum())


def test_top_fraction_batched_equals_per_model(rng):
    W = rng.standard_normal((4, 7, 3))
    sp = TopFraction(0.3)
    np.testing.assert_array_equal(sp(W), np.stack([sp(w) for w in W]))


def test_dense_is_identity_copy(rng):
    W = rng.standard_normal((3, 2))
    out = Dense()(W)
    np.testing.assert_array_equal(out, W)
    assert out is not W


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: TopFraction(0.0), r"'p' parameter of TopFraction must be a float in the range \(0, 1\]"),
        (lambda: TopFraction(1.5), r"range \(0, 1\]. Got 1.5"),
        (lambda: TopFraction(float("nan")), "'p' parameter"),
        (lambda: Threshold(-0.1), r"'t' parameter of Threshold must be a float in the range \[0, inf\)"),
        (lambda: Threshold("a"), "'t' parameter"),
        (lambda: get_sparsifier({"kind": "nope"}), "'kind' of a sparsifier"),
        (lambda: get_sparsifier({"kind": "threshold"}), "needs the parameter 't'"),
        (lambda: get_sparsifier(3), "'sparsifier' parameter"),
    ],
)
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_get_sparsifier_specs():
    assert get_sparsifier({"kind": "threshold", "t": 0.1}) == Threshold(0.1)
    assert get_sparsifier({"kind": "top_fraction", "p": 0.5}) == TopFraction(0.5)
    assert isinstance(get_sparsifier(None), Dense)
    assert repr(Threshold(0.1)) == "Threshold(t=0.1)"


def test_top_fraction_needs_a_matrix():
    with pytest.raises(ValueError, match="TopFraction needs weights of shape"):
        TopFraction(0.5)(np.arange(4.0))


_EXAMPLES = {"threshold": Threshold(0.3), "top_fraction": TopFraction(0.4), "dense": Dense()}


@pytest.mark.parametrize("kind", sorted(SPARSIFIERS))
def test_registry_round_trips_every_sparsifier(kind, rng):
    # every registered class has an example here: adding one to the registry enrols it in this test
    sp = _EXAMPLES[kind]
    assert isinstance(sp, SPARSIFIERS[kind]) and sp.kind == kind
    back = get_sparsifier(sp.to_dict())
    assert back == sp
    W = rng.standard_normal((2, 5, 3))
    np.testing.assert_array_equal(back(W), sp(W))


def test_registry_kinds_are_the_subclasses_keys():
    assert all(issubclass(cls, Sparsifier) and cls.kind == kind for kind, cls in SPARSIFIERS.items())


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda W: W[:1], r"must return an array of the weights' shape \(4, 3\). Got shape \(1, 3\)"),
        (lambda W: W.T, r"weights' shape \(4, 3\). Got shape \(3, 4\)"),
        (lambda W: np.full_like(W, np.nan), "must return finite numbers. Got NaN or inf"),
        (lambda W: np.where(W > 0, np.inf, W), "must return finite numbers"),
        (lambda W: W.astype(str), "must return finite numbers. Got a <U"),
    ],
)
def test_check_sparsifier_output_refuses_bad_user_output(bad, match, rng):
    with pytest.raises(ValueError, match=match):
        check_sparsifier_output(bad, rng.standard_normal((4, 3)))


def test_check_sparsifier_output_passes_good_output_through(rng):
    W = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(check_sparsifier_output(Threshold(0.5), W), Threshold(0.5)(W))
