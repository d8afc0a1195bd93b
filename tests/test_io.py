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
    model = SparseNetRegressor(n_hidden=4, sparsity=0.4, init="random", epochs=5, random_state=0).fit(X, y)
    return model, X


def test_round_trip_bit_identical(fitted, tmp_path):
    model, X = fitted
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = SparseNetRegressor.load(path)
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()
    for attr in ("coef_hidden_", "coef_output_", "x_mean_", "x_scale_"):
        assert_array_equal(getattr(loaded, attr), getattr(model, attr))
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
        assert int(data["format_version"]) == FORMAT_VERSION == 1
        assert str(data["activation"]) == "relu2"
        assert all(data[key].dtype != object for key in data.files)


def test_round_trip_sparsifier_instance_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = frame["a"].to_numpy() ** 2
    model = SparseNetRegressor(n_hidden=2, sparsity=Threshold(0.01), activation="tanh", init="random",
                               epochs=3, random_state=0).fit(frame, y)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.sparsity == Threshold(0.01)
    assert loaded.activation_ is get_activation("tanh")
    assert_array_equal(loaded.feature_names_in_, ["a", "b", "c"])
    assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_custom_activation_cannot_be_saved(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = SparseNetRegressor(n_hidden=2, activation=lambda z: z * np.tanh(z), init="random", epochs=2,
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
    _rewrite(tmp_path / "m.npz", tmp_path / "v2.npz", format_version=np.array(2))
    with pytest.raises(ValueError, match=r"format version 2; this sparsenet reads version 1 only"):
        load_model(tmp_path / "v2.npz")


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
