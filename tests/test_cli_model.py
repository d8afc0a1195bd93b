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
        "fit", csv_file, "--target", "target", "--hidden", "3", "--keep", "0.5", "--epochs", "10",
        "--init", "random", "--validation", "0.25", "--seed", "1", "--out", model_path], capsys)
    assert code == 0, err
    assert "| split" in out and "| train" in out and "| validation |     30 |" in out
    for column in ("R²", "MSE", "nonzeros", "kept"):
        assert column in out
    assert "|        4 |  0.444 |" in out  # round(0.5 * 3 * 3) = 4 of 9 weights kept
    model = load_model(model_path)
    assert list(model.feature_names_in_) == ["x1", "x2", "x3"]

    code, out, err = run(["predict", model_path, csv_file], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction" and len(lines) == 121
    data = np.loadtxt(csv_file, delimiter=",", skiprows=1)
    expected = model.predict(data[:, :3])
    np.testing.assert_array_equal(np.array(lines[1:], dtype=float), expected)


def test_fit_tensor_fallback_is_a_warning_not_an_error(csv_file, tmp_path, capsys):
    code, out, err = run(["fit", csv_file, "--target", "target", "--epochs", "2", "--hidden", "3",
                          "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 0
    assert "Traceback" not in err


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
    ("--keep", "0", "--keep must be in (0, 1]"),
    ("--validation", "1.5", "--validation must be in [0, 1)"),
    ("--hidden", "0", "--hidden and --epochs must be positive"),
])
def test_bad_options(csv_file, capsys, option, value, fragment):
    expect_error(["fit", csv_file, "--target", "target", option, value], capsys, fragment)


def test_predict_errors(csv_file, tmp_path, capsys):
    expect_error(["predict", str(tmp_path / "absent.npz"), csv_file], capsys, "model file", "not found")
    bogus = write(tmp_path / "bogus.npz", "not a model")
    expect_error(["predict", bogus, csv_file], capsys, "not a sparsenet model file")
    model_path = str(tmp_path / "m.npz")
    assert main(["fit", csv_file, "--target", "target", "--epochs", "2", "--hidden", "2", "--init", "random",
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
