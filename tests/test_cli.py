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
