"""Experiment definitions: validation messages, scales, expansion, run keys and seeds."""

import re

import pytest

from sparsenet.experiments.config import (
    ConfigError,
    expand,
    load_config,
    problem_seed,
    shipped_configs,
)

TINY = """
[experiment]
name = "tiny"
title = "Tiny sweep"
x = "thresh_train"
values = [0.05, 0.1]
metrics = ["recovery_error"]
protocols = ["blind", "report"]
trials = 2

[setting]
n = 300
d = 6
k = 2
thresh_gt = 0.15
epochs = 2
n_test = 100

[[methods]]
label = "pre"
method = "iht"
init = "tensor"
sparsifier = "threshold"

[[methods]]
label = "dense"
method = "iht"
sparsifier = "dense"

[[claims]]
kind = "argmin"
metric = "recovery_error"
method = "pre"
expect = 0.075
tolerance = 0.025
text = "lowest near 0.075"

[scale.quick]
trials = 1
"""


def write(tmp_path, text, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_configs_load_at_both_scales():
    names = {p.stem for p in shipped_configs()}
    assert {f"fig{i:02d}" for i in range(3, 16)} <= names
    assert {"noise", "thresh_gt", "p_gt"} <= names
    figures = set()
    for path in shipped_configs():
        paper = load_config(path, scale="paper")
        quick = load_config(path, scale="quick")
        assert paper.name == path.stem
        assert quick.values == paper.values, "quick must keep every swept value"
        assert quick.trials <= paper.trials
        if paper.figure is not None:
            figures.add(paper.figure)
            assert paper.trials == 5 and paper.setting_dict["epochs"] == 25
            assert paper.protocols == ("blind", "report")
    assert figures == set(range(3, 16))


def test_report_values_in_shipped_configs():
    by_name = {p.stem: p for p in shipped_configs()}
    fig04 = load_config(by_name["fig04"])
    assert fig04.values == (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2)
    s = fig04.setting_dict
    assert (s["n"], s["d"], s["k"], s["thresh_gt"], s["batch_size"], s["learning_rate"]) == (
        6000, 20, 5, 0.15, 20, 0.001)
    fig09 = load_config(by_name["fig09"])
    assert fig09.values == (2000, 4000, 6000, 8000, 10000)
    assert fig09.setting_dict["p_gt"] == 0.75 and "thresh_gt" not in fig09.setting_dict


def test_figures_4_and_5_share_runs():
    by_name = {p.stem: p for p in shipped_configs()}
    keys4 = {r.key for r in expand(load_config(by_name["fig04"]))}
    keys5 = {r.key for r in expand(load_config(by_name["fig05"]))}
    assert keys4 == keys5


@pytest.mark.parametrize(
    "old, new, pattern",
    [
        ("n = 300", "n = 300\nbogus = 1", r"Unknown key 'bogus' in \[setting\] of .*tiny\.toml"),
        ("n = 300", "n = 1", r"'n' key of \[setting\] in .*tiny\.toml must be an int in the range \[2, .*Got 1"),
        ("d = 6", 'd = "six"', r"'d' key of \[setting\] in .*tiny\.toml must be an int in the range .*Got 'six'"),
        ("n = 300", "n = 300.5", r"'n' key .* must be an int"),
        ("thresh_gt = 0.15", "p_gt = 1.5", r"'p_gt' key of \[setting\] .* range \(0, 1\]. Got 1.5"),
        ("values = [0.05, 0.1]", "values = [0.05, -0.1]", r"'thresh_train' key of 'values' of \[experiment\] in .*tiny\.toml must be a float in the range \[0, inf\)"),
        ('sparsifier = "dense"', 'sparsifier = "l0"', r"'sparsifier' key of \[\[methods\]\] #2 in .*tiny\.toml must be one of 'threshold', 'top_fraction', 'dense'"),
        ('init = "tensor"', 'init = "tensor"\ncolour = "red"', r"Unknown key 'colour' in \[\[methods\]\] #1"),
        ("trials = 2", "trials = 0", r"'trials' key of \[experiment\] .* range \[1, "),
        ("trials = 2", "trials = true", r"'trials' key of \[experiment\]"),
        ('method = "pre"', 'method = "nope"', r"'method' key of \[\[claims\]\] #1 .* must be a method label"),
        ("kind = \"argmin\"", "kind = \"best\"", r"'kind' key of \[\[claims\]\] #1 .* one of 'argmin', 'trend', 'compare'"),
        ("[scale.quick]\ntrials = 1", "[scale.quick]\nthresh_train = 0.1", r"may not override the swept key 'thresh_train'"),
        ("[scale.quick]\ntrials = 1", "[scale.fast]\ntrials = 1", r"Unknown key 'fast' in \[scale\]"),
        ("d = 6", "d = 6\np_gt = 0.5", r"sets both 'thresh_gt' and 'p_gt'"),
        ("k = 2", "k = 7", r"k = 7 exceeds d = 6"),
        ('x = "thresh_train"', 'x = "colour"', r"'x' key of \[experiment\] .* must be 'epoch' or a setting key"),
        ('metrics = ["recovery_error"]', 'metrics = ["accuracy"]', r"'metrics' key of \[experiment\] .* must be one of"),
    ],
)
def test_invalid_configs_name_key_file_and_range(tmp_path, old, new, pattern):
    assert old in TINY
    path = write(tmp_path, TINY.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_invalid_toml_names_file(tmp_path):
    with pytest.raises(ConfigError, match=r"tiny\.toml is not valid TOML"):
        load_config(write(tmp_path, TINY + "\n[[[oops"))


def test_scale_overrides(tmp_path):
    path = write(tmp_path, TINY)
    assert load_config(path, scale="paper").trials == 2
    quick = load_config(path, scale="quick")
    assert quick.trials == 1 and quick.scale == "quick"
    with pytest.raises(ConfigError, match="scale must be one of"):
        load_config(path, scale="huge")


def test_expansion_keys_and_seeds(tmp_path):
    config = load_config(write(tmp_path, TINY))
    runs = expand(config)
    assert len(runs) == 2 * 2 * 2 * 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", r.key) for r in runs)
    # Dense runs do not depend on thresh_train: one key per (protocol, trial), shared across x.
    dense = {r.key for r in runs if r.label == "dense"}
    assert len(dense) == 2 * 2
    pre = {r.key for r in runs if r.label == "pre"}
    assert len(pre) == 2 * 2 * 2
    # All methods and protocols of a trial see the same problem seed; trials differ.
    by_trial = {}
    for r in runs:
        by_trial.setdefault(r.trial, set()).add(r.seed)
    assert all(len(s) == 1 for s in by_trial.values())
    assert by_trial[0] != by_trial[1]
    # Keys do not depend on the file name, the experiment name or the label.
    renamed = write(tmp_path, TINY.replace('name = "tiny"', 'name = "other"').replace('"pre"', '"Pre-trained"'),
                    name="other.toml")
    assert {r.key for r in expand(load_config(renamed))} == {r.key for r in runs}
    # Same config loaded twice: same keys, same order.
    assert [r.key for r in expand(load_config(write(tmp_path, TINY)))] == [r.key for r in runs]


def test_problem_seed_depends_on_problem_keys_only():
    base = {"n": 300, "d": 6, "k": 2, "activation": "relu2", "kappa": 2.0, "thresh_gt": 0.15,
            "noise_sd": 0.0, "n_test": 100}
    seed = problem_seed({**base, "thresh_train": 0.1, "epochs": 3}, 0)
    assert seed == problem_seed({**base, "thresh_train": 0.2, "epochs": 9}, 0)
    assert seed != problem_seed({**base, "n": 301}, 0)
    assert seed != problem_seed(base, 1)
    assert 0 <= seed < 2**63


def test_sweeping_p_gt_drops_thresh_gt(tmp_path):
    text = TINY.replace('x = "thresh_train"', 'x = "p_gt"').replace("values = [0.05, 0.1]", "values = [0.5, 0.75]")
    runs = expand(load_config(write(tmp_path, text)))
    assert all("thresh_gt" not in r.params_dict and r.params_dict["p_gt"] == r.x for r in runs)


def test_reproduce_leaves_out_cluster_sized_experiments():
    from sparsenet.experiments.config import load_config, shipped_configs

    every = {p.stem for p in shipped_configs()}
    default = {p.stem for p in shipped_configs(reproduce_only=True)}
    assert {"phase_transition", "phase_transition_nd"} <= every - default
    assert {f"fig{i:02d}" for i in range(3, 16)} <= default
    for path in shipped_configs():
        assert load_config(path).reproduce == (path.stem in default)


def _registry_params():
    from sparsenet.experiments.config import SETTING_SPEC
    from sparsenet.experiments.methods import METHODS

    params = [("setting", key, p) for key, p in SETTING_SPEC.items()]
    params += [(name, key, p) for name, m in METHODS.items() for key, p in m.fields.items()]
    return [(where, key, p) for where, key, p in params if p.registry]


def test_builtin_choices_are_the_registries_keys():
    """Choices checked without importing a registry list exactly its built-in entries."""
    import importlib

    found = _registry_params()
    assert {key for _, key, _ in found} >= {"activation", "solver", "sparsifier"}
    for where, key, p in found:
        module, attr = p.registry.split(":")
        keys = set(getattr(importlib.import_module(module), attr))
        assert set(p.choices) - {"auto"} == keys, (where, key)


def test_a_registered_name_is_accepted_and_listed(monkeypatch):
    from sparsenet.experiments.params import ConfigError
    from sparsenet.sparsify import SPARSIFIERS

    where, key, p = next(item for item in _registry_params() if item[2].registry.endswith(":SPARSIFIERS"))
    with pytest.raises(ConfigError, match="'my_sparsifier'"):
        p.check("my_sparsifier", key, where, "x.toml")
    monkeypatch.setitem(SPARSIFIERS, "my_sparsifier", object)
    assert p.check("my_sparsifier", key, where, "x.toml") == "my_sparsifier"
    assert "'my_sparsifier'" in p.describe()
