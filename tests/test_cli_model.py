"""`sparsenet fit` / `sparsenet predict` (through cli_model.main): summary, round trip, every error."""

import numpy as np
import pytest

from sparsenet.cli_model import main
from sparsenet.estimator import load_model


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] ** 2 + 0.5 * X[:, 1] + 10
    lines = ["x1,x2,x3,target"] + [",".join(repr(float(v)) for v in (*row, t)) for row, t in zip(X, y)]
    return write(tmp_path / "data.csv", "\n".join(lines) + "\n")


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_fit_then_predict(csv_file, tmp_path, capsys):
    model_path = str(tmp_path / "m.npz")
    code, out, err = run([
        "fit", csv_file, "--target", "target", "--hidden", "3", "--keep", "0.5", "--max-iter", "30",
        "--validation", "0.25", "--seed", "1", "--out", model_path], capsys)
    assert code == 0, err
    assert "| split" in out and "| train" in out and "| validation |     30 |" in out
    for column in ("R²", "RMSE", "nonzeros", "kept"):
        assert column in out
    assert "fixed: 3 hidden units, keep 0.5" in out
    assert "|        6 |  0.500 |" in out  # round(0.5 * 3 * 4) = 6 of the 12 input weights [W | skip]
    model = load_model(model_path)
    assert list(model.feature_names_in_) == ["x1", "x2", "x3"]

    code, out, err = run(["predict", model_path, csv_file], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction" and len(lines) == 121
    data = np.loadtxt(csv_file, delimiter=",", skiprows=1)
    expected = model.predict(data[:, :3])
    np.testing.assert_array_equal(np.array(lines[1:], dtype=float), expected)


def test_fit_chooses_by_cross_validation_by_default(csv_file, tmp_path, capsys):
    code, out, err = run(["fit", csv_file, "--target", "target", "--hidden", "2,4", "--keep", "0.5,0.25",
                          "--cv", "3", "--max-iter", "20", "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert "chosen by CV" in out and "3-fold CV on the training rows" in out
    model = load_model(str(tmp_path / "m.npz"))
    assert model.n_hidden in (2, 4) and model.sparsity in (0.5, 0.25)
    assert model.solver_ == "lbfgs"


def expect_error(argv, capsys, *fragments):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("sparsenet: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_target_lists_columns(csv_file, capsys):
    expect_error(["fit", csv_file, "--target", "price"], capsys,
                 "target column 'price' not found", "available columns: x1, x2, x3, target")


def test_non_numeric_column_names_column_and_row(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "a,b,y\n1,2,3\n4,five,6\n")
    expect_error(["fit", path, "--target", "y"], capsys, "line 3", "column 'b' is not numeric", "'five'")


def test_nan_row(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "a,b,y\n1,2,3\n4,5,6\n7,nan,9\n")
    expect_error(["fit", path, "--target", "y"], capsys, "line 4", "column 'b' is NaN")


def test_empty_cell(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "a,b,y\n1,,3\n")
    expect_error(["fit", path, "--target", "y"], capsys, "line 2", "column 'b' is empty")


def test_empty_row(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "a,b,y\n1,2,3\n,,\n4,5,6\n")
    expect_error(["fit", path, "--target", "y"], capsys, "line 3: empty row")


def test_ragged_row(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "a,b,y\n1,2,3\n4,5\n")
    expect_error(["fit", path, "--target", "y"], capsys, "line 3: 2 values, but the header has 3 columns")


def test_empty_file(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "")
    expect_error(["fit", path, "--target", "y"], capsys, "is empty")
    path = write(tmp_path / "h.csv", "a,b,y\n")
    expect_error(["fit", path, "--target", "y"], capsys, "has a header but no data rows")


def test_missing_data_file(tmp_path, capsys):
    expect_error(["fit", str(tmp_path / "absent.csv"), "--target", "y"], capsys, "cannot read")


def test_only_target_column(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "y\n1\n2\n")
    expect_error(["fit", path, "--target", "y"], capsys, "no feature columns")


@pytest.mark.parametrize("option, value, fragment", [
    ("--keep", "0", "--keep values must be in (0, 1]"),
    ("--keep", "0.5,x", "--keep must be a comma-separated list of floats; got '0.5,x'"),
    ("--validation", "1.5", "--validation must be in [0, 1)"),
    ("--hidden", "0", "--hidden values must be positive integers"),
    ("--hidden", ",", "--hidden must name at least one value"),
    ("--cv", "1", "--cv must be at least 2"),
])
def test_bad_options(csv_file, capsys, option, value, fragment):
    expect_error(["fit", csv_file, "--target", "target", option, value], capsys, fragment)


def test_predict_errors(csv_file, tmp_path, capsys):
    expect_error(["predict", str(tmp_path / "absent.npz"), csv_file], capsys, "model file", "not found")
    bogus = write(tmp_path / "bogus.npz", "not a model")
    expect_error(["predict", bogus, csv_file], capsys, "not a sparsenet model file")
    model_path = str(tmp_path / "m.npz")
    assert main(["fit", csv_file, "--target", "target", "--max-iter", "5", "--hidden", "2", "--keep", "0.5",
                 "--out", model_path]) == 0
    capsys.readouterr()
    other = write(tmp_path / "o.csv", "x1,x3\n1,2\n")
    expect_error(["predict", model_path, other], capsys, "lacks the model's feature columns ['x2']",
                 "available columns: x1, x3")
    bad = write(tmp_path / "b.csv", "x1,x2,x3\n1,2,oops\n")
    expect_error(["predict", model_path, bad], capsys, "line 2", "column 'x3' is not numeric")


def test_subcommand_required():
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_repeated_column_name_is_refused(tmp_path, capsys):
    from sparsenet.cli_model import main

    path = tmp_path / "dup.csv"
    path.write_text("a,a,target\n" + "".join(f"{i},{2 * i},{i}\n" for i in range(30)))
    assert main(["fit", str(path), "--target", "target", "--out", str(tmp_path / "m.npz")]) == 2
    assert "repeats the column name(s) 'a'" in capsys.readouterr().err


def test_missing_output_folder_is_reported_before_training(tmp_path, capsys):
    from sparsenet.cli_model import main

    path = tmp_path / "d.csv"
    path.write_text("a,b,target\n" + "".join(f"{i},{i % 3},{i}\n" for i in range(30)))
    assert main(["fit", str(path), "--target", "target", "--out", str(tmp_path / "nope" / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "R²" not in err


def test_out_is_a_folder_is_reported_before_training(csv_file, tmp_path, capsys):
    err = expect_error(["fit", csv_file, "--target", "target", "--out", str(tmp_path)], capsys,
                       f"cannot write {tmp_path}: it is a folder")
    assert "R²" not in capsys.readouterr().out


def test_read_only_output_folder_is_reported_before_training(csv_file, tmp_path, capsys):
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: a read-only folder is still writable")
        expect_error(["fit", csv_file, "--target", "target", "--out", str(folder / "m.npz")], capsys,
                     "permission denied")
    finally:
        folder.chmod(0o700)


def test_constant_target_is_refused_with_its_value(tmp_path, capsys):
    path = write(tmp_path / "c.csv", "a,b,y\n" + "".join(f"{i},{i % 3},3.5\n" for i in range(30)))
    expect_error(["fit", path, "--target", "y", "--out", str(tmp_path / "m.npz")], capsys,
                 "target column 'y' is constant (every value is 3.5)")
    assert not (tmp_path / "m.npz").exists()


def test_one_data_row_is_refused(tmp_path, capsys):
    path = write(tmp_path / "one.csv", "a,b,y\n1,2,3\n")
    expect_error(["fit", path, "--target", "y", "--out", str(tmp_path / "m.npz")], capsys,
                 "has 1 data row; sparsenet fit needs at least 10")
    assert not (tmp_path / "m.npz").exists()


def test_tiny_target_reports_its_real_error_not_zero(tmp_path, capsys):
    """A target of order 1e-300: the squared error underflows to 0 in float64 (it used to print MSE 0);
    the fit works on standardized values and the summary prints the RMSE in the target's units."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = 1e-300 * (X[:, 0] + 0.5 * rng.normal(size=100))
    lines = ["a,b,y"] + [f"{float(p)!r},{float(q)!r},{float(t)!r}" for (p, q), t in zip(X, y)]
    path = write(tmp_path / "tiny.csv", "\n".join(lines) + "\n")
    code, out, err = run(["fit", path, "--target", "y", "--hidden", "2", "--keep", "0.5", "--max-iter", "30",
                          "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("| train"))
    r2, rmse = float(row.split("|")[3]), float(row.split("|")[4])
    assert 0.5 < r2 < 1.0, row  # the noise is 1/3 of the variance
    assert 1e-301 < rmse < 1e-300, row


def _corrupt_model(csv_file, tmp_path, **changes):
    model_path = tmp_path / "m.npz"
    assert main(["fit", csv_file, "--target", "target", "--max-iter", "5", "--hidden", "2", "--keep", "0.5",
                 "--out", str(model_path)]) == 0
    with np.load(model_path) as data:
        fields = {key: data[key] for key in data.files}
    for key, (index, value) in changes.items():
        fields[key] = np.array(fields[key], dtype=float)
        fields[key][index] = value
    bad = tmp_path / "bad.npz"
    np.savez(bad, **fields)
    return str(bad)


@pytest.mark.parametrize("key, index, value, fragment", [
    ("coef_hidden", (0, 0), np.nan, "coef_hidden holds a non-finite value (nan)"),
    ("x_scale", (1,), 0.0, "x_scale must be positive; got 0.0 at index 1"),
    ("x_scale", (2,), -1.0, "x_scale must be positive; got -1.0 at index 2"),
    ("x_scale", (0,), np.inf, "x_scale holds a non-finite value (inf)"),
    ("y_scale", (), 0.0, "y_scale must be positive; got 0.0"),
])
def test_predict_refuses_a_model_file_with_bad_arrays(csv_file, tmp_path, capsys, key, index, value, fragment):
    bad = _corrupt_model(csv_file, tmp_path, **{key: (index, value)})
    capsys.readouterr()
    code, out, err = run(["predict", bad, csv_file], capsys)
    assert code == 2 and out == ""
    assert "corrupt sparsenet model file" in err and fragment in err, err
