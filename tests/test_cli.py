"""The ``sparsenet`` command line."""

import re

import pytest

from sparsenet import cli
from sparsenet.experiments import config as config_module
from sparsenet.experiments.store import open_store

TINY = """
[experiment]
name = "tiny"
figure = 4
title = "Tiny"
x = "thresh_train"
values = [0.05, 0.15]
metrics = ["recovery_error"]
protocols = ["blind"]
trials = 2

[setting]
n = 300
d = 6
k = 2
thresh_gt = 0.15
n_test = 100
epochs = 2
pretrain_epochs = 1

[[methods]]
label = "pre"
method = "iht"
sparsifier = "threshold"

[[claims]]
kind = "argmin"
metric = "recovery_error"
method = "pre"
expect = 0.05
tolerance = 0.2
text = "lowest somewhere"

[scale.quick]
trials = 1
"""


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_list_names_every_shipped_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for i in range(3, 16):
        assert re.search(rf"^fig{i:02d}\s", out, re.M)
    for name in ("noise", "thresh_gt", "p_gt"):
        assert re.search(rf"^{name}\s", out, re.M)


def test_list_counts_runs_without_expanding_or_hashing(monkeypatch, capsys):
    calls = {"expand": 0, "sha": 0}
    real_expand, real_sha = config_module.expand, config_module._sha

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(config_module, "expand", counting("expand", real_expand))
    monkeypatch.setattr(config_module, "_sha", counting("sha", real_sha))
    assert cli.main(["list", "--scale", "quick"]) == 0
    assert calls == {"expand": 0, "sha": 0}
    # Oracle: the runs column is the number of distinct run keys of the full expansion.
    rows = {}
    for line in capsys.readouterr().out.splitlines()[1:]:
        m = re.match(r"(\S+)\s+(?:\d+\s+)?\S+(?: x \S+)?\s+\d+\s+(\d+)\s", line)
        rows[m.group(1)] = int(m.group(2))
    for path in config_module.shipped_configs():
        c = config_module.load_config(path, scale="quick")
        assert rows[c.name] == len({r.key for r in real_expand(c)}), c.name


@pytest.mark.parametrize("command", ["reproduce", "run", "report", "list"])
def test_help_explains_every_option_with_default(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    options = set(re.findall(r"(--[a-z][a-z-]+)", text)) - {"--help"}
    for option in options:
        help_text = text.split(option, 1)[1]
        assert "default" in help_text, option
    if command in ("reproduce", "run"):
        assert {"--out", "--jobs", "--scale", "--force"} <= options
        assert text.count("(default:") >= 4


def test_run_then_report(tiny_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(tiny_path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    assert "4 runs computed, 0 already stored, 4 in all" in capsys.readouterr().out
    assert cli.main(["run", str(tiny_path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    assert "0 runs computed, 4 already stored" in capsys.readouterr().out
    with open_store(out) as store:
        assert len(store) == 4 and [e["name"] for e in store.experiments()] == ["tiny"]
    # The report is rebuilt from the folder alone.
    assert cli.main(["report", str(out)]) == 0
    assert (out / "REPORT.md").exists() and (out / "REPORT.html").exists()


def test_reproduce_runs_shipped_configs_and_writes_report(tiny_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config_module, "shipped_configs", lambda **kw: [tiny_path])
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--scale", "quick", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    assert "2 runs computed" in capsys.readouterr().out  # quick: 1 trial x 2 values
    text = (out / "REPORT.md").read_text()
    assert "Tiny" in text


def test_bad_config_exits_with_the_message(tiny_path, tmp_path):
    tiny_path.write_text(TINY.replace("n = 300", "n = -5"))
    with pytest.raises(SystemExit, match=r"'n' key of \[setting\] in .*tiny\.toml must be an int in the range"):
        cli.main(["run", str(tiny_path), "--out", str(tmp_path)])


def test_unknown_experiment_and_missing_store(tmp_path):
    with pytest.raises(SystemExit, match="no such experiment"):
        cli.main(["run", "does_not_exist", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no results store"):
        cli.main(["report", str(tmp_path / "nothing")])


def test_jobs_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "fig04", "--jobs", "0", "--out", str(tmp_path)])
    assert "--jobs must be >= 1" in capsys.readouterr().err


def test_report_on_a_file_that_is_not_a_store(tmp_path, capsys):
    (tmp_path / "runs.sqlite").write_text("this is not a database " * 100)
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "is not a sparsenet results store" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Bad input found by breaking it on purpose (issue 13, item 5)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["-1", "abc"])
def test_fit_seed_error_names_the_option(tmp_path, capsys, seed):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "\n".join(f"{i},{i % 3},{i % 5}" for i in range(40)) + "\n")
    with pytest.raises(SystemExit) as exc:
        cli.main(["fit", str(data), "--target", "y", "--seed", seed])
    assert exc.value.code != 0
    assert f"argument --seed: must be a non-negative integer. Got '{seed}' instead." in capsys.readouterr().err


@pytest.mark.parametrize("address", ["local:abc", "local:0", "host:port", "local:"])
def test_bad_scheduler_names_the_option(tmp_path, capsys, address):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "fig04", "--scheduler", address, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --scheduler: must be local:N" in err and repr(address) in err
    assert "invalid literal" not in err


@pytest.mark.parametrize("address", ["local", "local:3", "tcp://10.0.0.1:8786", "localhost:8786", "tcp://[::1]:8786"])
def test_good_scheduler_addresses_parse(address):
    args = cli.build_parser().parse_args(["run", "fig04", "--scheduler", address])
    assert args.scheduler == address


def test_memory_error_stored_as_failed_exits_nonzero(tiny_path, tmp_path, monkeypatch, capsys):
    from sparsenet.experiments import runner

    def out_of_memory(params, seed):
        raise MemoryError("Unable to allocate 7.45 GiB for an array")

    monkeypatch.setattr(runner, "_make_problem", out_of_memory)
    out = tmp_path / "out"
    assert cli.main(["run", str(tiny_path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 1
    assert "4 runs ran out of memory (MemoryError) and are stored as failed" in capsys.readouterr().err
    with open_store(out) as store:
        assert len(store.keys(status="failed")) == 4


@pytest.mark.parametrize("edits, match", [
    ([("n = 300", "n = 100000000")],
     r"a run with n = 100000000, n_test = 100, d = 6 needs about 10\.4 GiB of memory "
     r"\(two float64 copies .*\), more than this machine's 4 GiB; lower n, n_test or d\."),
    ([("n = 300", "n = 10000000"), ("d = 6", "d = 100000")],
     r"a run with n = 10000000, n_test = 100, d = 100000 needs about 1\.49e\+04 GiB .* 4 GiB"),
])
def test_memory_estimate_refuses_oversized_runs(tiny_path, tmp_path, monkeypatch, edits, match):
    # The machine's memory is fixed at 4 GiB so that the verdict does not depend on where the test runs;
    # the estimate itself is checked against the array sizes: 2 x 8 bytes x (n + n_test) x (d + 1).
    monkeypatch.setattr(config_module, "machine_memory_bytes", lambda: 4 * 2**30)
    text = TINY
    for old, new in edits:
        text = text.replace(old, new)
    tiny_path.write_text(text)
    with pytest.raises(SystemExit, match=match):
        cli.main(["run", str(tiny_path), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_memory_estimate_is_the_size_of_two_data_copies():
    # Independent oracle: the bytes of the arrays make_planted returns, for a small problem, times two.
    from sparsenet.data import make_planted

    p = make_planted(500, 7, 2, n_test=80, random_state=0)
    data = p.X.nbytes + p.y.nbytes + p.X_test.nbytes + p.y_test.nbytes
    assert config_module.run_memory_bytes({"n": 500, "d": 7, "n_test": 80}) == 2 * data


def test_non_utf8_config_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(TINY.replace('title = "Tiny"', 'title = "Caf\u00e9"').encode("latin-1"))
    with pytest.raises(SystemExit, match=r"latin1\.toml is not UTF-8 text \(a TOML file must be\): byte 0xe9 at line 5"):
        cli.main(["run", str(path), "--out", str(tmp_path / "out")])


def test_two_configs_with_one_name_are_refused(tiny_path, tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("trials = 2", "trials = 3"))  # same [experiment] name "tiny"
    out = tmp_path / "out"
    assert cli.main(["run", str(tiny_path), str(other), "--out", str(out), "--jobs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Two experiment definitions are named 'tiny'" in err and "other.toml" in err and "tiny.toml" in err
    # Also across calls: the second file would silently replace the first in the report.
    assert cli.main(["run", str(other), "--out", str(out), "--jobs", "1", "--no-progress"]) == 2
    # Editing the same file and rerunning is fine (the definition is replaced).
    tiny_path.write_text(TINY.replace("trials = 2", "trials = 1"))
    assert cli.main(["run", str(tiny_path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0


@pytest.mark.parametrize("column, line", [("b", 7), ("y", 12)])
def test_fit_names_a_cell_too_large_for_the_model(tmp_path, capsys, column, line):
    # Before: "no candidate (n_hidden, sparsity) keeps within max_weight_fraction" or "training diverged".
    rows = [[float(i % 7), float(i % 3), float(i % 5)] for i in range(60)]
    rows[line - 2]["aby".index(column)] = 1e300
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "\n".join(",".join(map(repr, r)) for r in rows) + "\n")
    assert cli.main(["fit", str(data), "--target", "y", "--out", str(tmp_path / "m.npz")]) != 0
    err = capsys.readouterr().err
    assert f"d.csv, line {line}: column '{column}' is 1e+300, too large for the model" in err
    assert not (tmp_path / "m.npz").exists()


def test_estimator_names_a_target_scaled_by_1e200():
    import numpy as np

    from sparsenet.estimator import SparseNetRegressor

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 4)), rng.standard_normal(200)
    with pytest.raises(ValueError, match=rf"Input 'y' has a value too large for the model: y\[{np.argmax(np.abs(y))}\]"):
        SparseNetRegressor(n_hidden=2, random_state=0).fit(X, y * 1e200)


def test_reproduce_and_report_write_the_sections_in_one_order(tmp_path, monkeypatch):
    """`reproduce` and `report` on its folder order the sections alike: figures by number, then the rest by
    name (an experiment without a figure whose name sorts first, like "activations", came first in one and
    last in the other)."""
    paths = []
    for name, figure in (("aaa", None), ("zzz", 4)):
        text = TINY.replace('name = "tiny"', f'name = "{name}"').replace('title = "Tiny"', f'title = "T-{name}"')
        text = text.replace("figure = 4\n", "" if figure is None else f"figure = {figure}\n")
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        paths.append(path)
    monkeypatch.setattr(config_module, "shipped_configs", lambda **kw: paths)
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--scale", "quick", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0

    def order(md):
        return [m for m in re.findall(r"T-(aaa|zzz)", md)]

    first = order((out / "REPORT.md").read_text())
    assert cli.main(["report", str(out), "--jobs", "1"]) == 0
    second = order((out / "REPORT.md").read_text())
    assert first == second and first.index("zzz") < first.index("aaa")
