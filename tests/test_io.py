"""Save/load of SparseNetRegressor: version-tagged .npz, no pickle, clear errors."""

import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sparsenet.activations import get_activation
from sparsenet.estimator import FORMAT_NAME, FORMAT_VERSION, SparseNetRegressor, load_model, save_model
from sparsenet.sparsify import Threshold


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 5)) * [1, 3, 1, 2, 1] + 4
    y = X[:, 0] ** 2 - X[:, 1] + rng.normal(scale=0.1, size=150)
    model = SparseNetRegressor(n_hidden=4, sparsity=0.4, max_iter=30, random_state=0).fit(X, y)
    assert np.any(model.hidden_bias_ != 0) and np.any(model.coef_skip_ != 0)  # the new terms are exercised
    return model, X


def test_round_trip_bit_identical(fitted, tmp_path):
    model, X = fitted
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = SparseNetRegressor.load(path)
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()
    for attr in ("coef_hidden_", "hidden_bias_", "coef_output_", "coef_skip_", "x_mean_", "x_scale_"):
        assert_array_equal(getattr(loaded, attr), getattr(model, attr))
    assert loaded.solver_ == model.solver_ == "lbfgs"
    assert_array_equal(loaded.x_min_, model.x_min_)
    assert_array_equal(loaded.x_max_, model.x_max_)
    assert_array_equal(loaded.predict(X * 10), model.predict(X * 10))  # clipped alike outside the range
    assert loaded.intercept_ == model.intercept_
    assert loaded.n_iter_ == model.n_iter_ and loaded.init_used_ == model.init_used_
    assert loaded.n_features_in_ == 5
    assert_array_equal(loaded.history_["train_loss"], model.history_["train_loss"])
    assert_array_equal(loaded.to_sparse().predict(X), model.to_sparse().predict(X))


def test_format_fields_and_no_pickle(fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "m.bin"  # written exactly where asked, no suffix added
    save_model(model, path)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == FORMAT_NAME
        assert int(data["format_version"]) == FORMAT_VERSION == 2
        assert str(data["activation"]) == "relu2"
        assert all(data[key].dtype != object for key in data.files)


def test_round_trip_sparsifier_instance_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = frame["a"].to_numpy() ** 2
    model = SparseNetRegressor(n_hidden=2, sparsity=Threshold(0.01), activation="tanh", max_iter=10,
                               random_state=0).fit(frame, y)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.sparsity == Threshold(0.01)
    assert loaded.activation_ is get_activation("tanh")
    assert_array_equal(loaded.feature_names_in_, ["a", "b", "c"])
    assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_custom_activation_cannot_be_saved(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = SparseNetRegressor(n_hidden=2, activation=lambda z: z * np.tanh(z), max_iter=5,
                               random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="custom activation .* stored by name"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as data:
        fields = {key: data[key] for key in data.files}
    fields.update(changes)
    for key, value in list(fields.items()):
        if value is None:
            del fields[key]
    with open(out, "wb") as fh:
        np.savez(fh, **fields)


def test_other_format_version(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "v3.npz", format_version=np.array(3))
    with pytest.raises(ValueError, match=r"format version 3; this sparsenet reads versions 1, 2\."):
        load_model(tmp_path / "v3.npz")


def test_version_1_file_reads_with_zero_biases_and_skip(tmp_path):
    """A version 1 file (no hidden_bias, coef_skip, solver) is the planted model: both terms zero."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 4))
    y = X[:, 0] ** 2 + X[:, 1]
    model = SparseNetRegressor(n_hidden=3, solver="sgd", hidden_bias=False, skip=False, init="random", epochs=3,
                               random_state=0).fit(X, y)
    model.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "v1.npz", format_version=np.array(1), hidden_bias=None,
             coef_skip=None, solver=None)
    loaded = load_model(tmp_path / "v1.npz")
    assert_array_equal(loaded.hidden_bias_, np.zeros(3))
    assert_array_equal(loaded.coef_skip_, np.zeros(4))
    assert loaded.solver_ == "sgd"
    assert_array_equal(loaded.predict(X), model.predict(X))
    _rewrite(tmp_path / "m.npz", tmp_path / "v2cut.npz", coef_skip=None)
    with pytest.raises(ValueError, match=r"missing fields \['coef_skip'\]"):
        load_model(tmp_path / "v2cut.npz")


def test_cv_estimator_saves_its_refitted_model(tmp_path):
    from sparsenet.estimator import SparseNetRegressorCV

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 3))
    y = np.maximum(X[:, 0], 0) + X[:, 1]
    cv = SparseNetRegressorCV(n_hidden=(2, 3), cv=3, max_iter=20, random_state=0).fit(X, y)
    cv.save(tmp_path / "cv.npz")
    loaded = load_model(tmp_path / "cv.npz")
    assert loaded.n_hidden == cv.n_hidden_ and loaded.sparsity == cv.sparsity_
    assert_array_equal(loaded.predict(X), cv.predict(X))
    assert_array_equal(loaded.to_sparse().predict(X), cv.to_sparse().predict(X))


def _bad(fitted, tmp_path, **changes):
    model, _ = fitted
    model.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", **changes)
    return tmp_path / "bad.npz"


def _with(fitted, key, index, value):
    model, _ = fitted
    attr = {"coef_hidden": "coef_hidden_", "coef_output": "coef_output_", "hidden_bias": "hidden_bias_",
            "coef_skip": "coef_skip_", "x_mean": "x_mean_", "x_scale": "x_scale_"}[key]
    array = np.array(getattr(model, attr), dtype=np.float64)
    array[index] = value
    return {key: array}


@pytest.mark.parametrize("key, index, value, match", [
    ("coef_hidden", (1, 2), np.nan, r"coef_hidden holds a non-finite value \(nan\) at index \(1, 2\)"),
    ("coef_output", (0,), np.inf, r"coef_output holds a non-finite value \(inf\) at index \(0,\)"),
    ("hidden_bias", (3,), -np.inf, r"hidden_bias holds a non-finite value \(-inf\)"),
    ("coef_skip", (4,), np.nan, r"coef_skip holds a non-finite value"),
    ("x_mean", (2,), np.nan, r"x_mean holds a non-finite value"),
    ("x_scale", (2,), 0.0, r"x_scale must be positive; got 0.0 at index 2"),
    ("x_scale", (1,), -3.0, r"x_scale must be positive; got -3.0 at index 1"),
    ("x_scale", (0,), np.inf, r"x_scale holds a non-finite value \(inf\) at index \(0,\)"),
])
def test_load_refuses_non_finite_weights_and_bad_scales(fitted, tmp_path, key, index, value, match):
    path = _bad(fitted, tmp_path, **_with(fitted, key, index, value))
    with pytest.raises(ValueError, match=r"corrupt sparsenet model file \(" + match):
        load_model(path)


@pytest.mark.parametrize("changes, match", [
    ({"y_scale": np.array(0.0)}, r"y_scale must be positive; got 0.0"),
    ({"y_scale": np.array(-1.0)}, r"y_scale must be positive; got -1.0"),
    ({"y_scale": np.array(np.inf)}, r"y_scale holds a non-finite value \(inf\)"),
    ({"y_mean": np.array(np.nan)}, r"y_mean holds a non-finite value"),
    ({"intercept": np.array(np.nan)}, r"intercept holds a non-finite value"),
    ({"coef_output": np.zeros(7)}, r"coef_output has shape \(7,\); expected \(4,\)"),
    ({"coef_skip": np.zeros((5, 2))}, r"coef_skip has shape \(5, 2\); expected \(5,\)"),
    ({"x_scale": np.array(["a"] * 5)}, r"x_scale must hold numbers"),
    ({"coef_hidden": np.zeros(5)}, r"coef_hidden has shape \(5,\); expected \(n_features, n_hidden\)"),
    ({"n_iter": np.array(-1)}, r"n_iter must be a non-negative integer"),
    ({"activation": np.array("gelu")}, r"activation must be one of \["),
    ({"init_used": np.array("pca")}, r"init_used must be one of \['random', 'tensor'\]"),
    ({"solver": np.array("adam")}, r"solver must be one of \['grasp', 'htp', 'lbfgs', 'niht', 'sgd'\]"),
    ({"params": np.array("[1, 2]")}, r"params is not a JSON object"),
    ({"params": np.array("{not json")}, r"corrupt sparsenet model file"),
    ({"feature_names": np.array(["a", "b"])}, r"feature_names must be 5 strings"),
    ({"x_min": None}, r"x_min and x_max must both be present or both absent"),
    ({"x_min": np.full(5, 1e9)}, r"x_min exceeds x_max at index 0"),
    ({"x_max": np.array([1.0, np.nan, 0, 0, 0])}, r"x_max holds a non-finite value \(nan\) at index \(1,\)"),
])
def test_load_refuses_inconsistent_fields(fitted, tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        load_model(_bad(fitted, tmp_path, **changes))


def test_other_format_name(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "other.npz", format=np.array("something.else"))
    with pytest.raises(ValueError, match=r"not a sparsenet model file \(format field 'something.else'"):
        load_model(tmp_path / "other.npz")
    np.savez(tmp_path / "plain.npz", a=np.arange(3))
    with pytest.raises(ValueError, match=r"not a sparsenet model file \(format field None"):
        load_model(tmp_path / "plain.npz")


def test_missing_field(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "cut.npz", coef_output=None)
    with pytest.raises(ValueError, match=r"corrupt sparsenet model file \(missing fields \['coef_output'\]"):
        load_model(tmp_path / "cut.npz")


def test_corrupt_and_non_npz_files(fitted, tmp_path):
    model, _ = fitted
    text = tmp_path / "notes.npz"
    text.write_text("this is not a model\n")
    with pytest.raises(ValueError, match="not a sparsenet model file"):
        load_model(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(4))
    with pytest.raises(ValueError, match=r"a \.npy array, not an \.npz archive"):
        load_model(npy)
    model.save(tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a sparsenet model file|corrupt"):
        load_model(truncated)
    # Damage a member's compressed bytes in place (the archive directory stays valid).
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        info = zf.getinfo("coef_hidden.npy")
    damaged = bytearray(raw)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    damaged[start:start + 20] = b"\xff" * 20
    bad = tmp_path / "damaged.npz"
    bad.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="corrupt sparsenet model file"):
        load_model(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")


def test_unfitted_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SparseNetRegressor().save(tmp_path / "m.npz")
