"""Per-epoch losses are recorded only for experiments that read them (config key ``loss_history``)."""

import hashlib
import json

import numpy as np
import pytest

from sparsenet.experiments.config import CONFIG_DIR, ConfigError, expand, load_config, parse_config, shipped_configs
from sparsenet.experiments.runner import execute_task, make_tasks

BASE = """
[experiment]
name = "lh"
x = "thresh_train"
values = [0.05, 0.15]
metrics = {metrics}
protocols = ["blind", "report"]
trials = 2

[setting]
n = 480
d = 6
k = 2
thresh_gt = 0.15
n_test = 100
epochs = 4
batch_size = 20
pretrain_epochs = 1
{setting}

[[methods]]
label = "tensor + threshold"
method = "iht"
init = "tensor"
sparsifier = "threshold"

[[methods]]
label = "random + top-p"
method = "iht"
init = "random"
sparsifier = "top_fraction"

[[methods]]
label = "prune + fine-tune"
method = "prune_finetune"

[[methods]]
label = "l1"
method = "l1_prox"
"""


def _config(tmp_path, metrics='["recovery_error"]', setting="", name="lh"):
    path = tmp_path / f"{name}.toml"
    path.write_text(BASE.format(metrics=metrics, setting=setting))
    return load_config(path)


def _independent_key(params, protocol, seed):
    """The run key as EXPERIMENT_SCHEMA.md defines it: sha256 of the canonical JSON of params, protocol, seed."""
    text = json.dumps({"params": params, "protocol": protocol, "seed": seed}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_only_experiments_reading_losses_get_the_key(tmp_path):
    plain = expand(_config(tmp_path))
    explicit_false = expand(_config(tmp_path, setting="loss_history = false", name="f"))
    history = expand(_config(tmp_path, metrics='["recovery_error", "train_loss"]', name="h"))
    assert all("loss_history" not in r.params_dict for r in plain)
    assert [r.key for r in explicit_false] == [r.key for r in plain]  # false = absent: same keys
    assert all(r.params_dict["loss_history"] is True for r in history)
    for h, p in zip(history, plain):
        assert h.key != p.key and h.seed == p.seed  # same data, a different stored run
        without = {k: v for k, v in h.params_dict.items() if k != "loss_history"}
        assert without == p.params_dict
        assert _independent_key(without, p.protocol, p.seed) == p.key
    forced = expand(_config(tmp_path, setting="loss_history = true", name="t"))
    assert [r.key for r in forced] == [r.key for r in history]


def test_shipped_experiments_record_losses_only_where_read():
    for path in shipped_configs():
        config = load_config(path)
        reads = bool({"train_loss", "test_loss"} & set(config.metrics))
        for run in expand(config):
            assert run.params_dict.get("loss_history", False) is reads, (path.stem, run.label)
            if not reads:  # the key is still the hash of the parameters as before this key existed
                assert _independent_key(run.params_dict, run.protocol, run.seed) == run.key
    assert all(r.params_dict["loss_history"] for r in expand(load_config(CONFIG_DIR / "fig03.toml")))


@pytest.mark.parametrize("setting, where", [("loss_history = false", r"\[setting\]"),
                                             ("loss_history = 1", "loss_history")])
def test_bad_loss_history_settings(tmp_path, setting, where):
    with pytest.raises(ConfigError, match=where):
        _config(tmp_path, metrics='["train_loss"]', setting=setting)


def test_a_method_may_not_turn_off_losses_that_are_read():
    import tomllib

    data = tomllib.loads(BASE.format(metrics='["train_loss"]', setting=""))
    data["methods"][0]["loss_history"] = False
    with pytest.raises(ConfigError, match=r"\[\[methods\]\] #1.*loss_history = false"):
        parse_config(data, "m.toml")


def _by_run(records, runs):
    """Records keyed by what identifies a run apart from loss_history: (label, protocol, trial, x)."""
    label = {r.key: (r.label, r.protocol, r.trial, r.x) for r in runs}
    return {label[rec["run_key"]]: rec for rec in records}


def test_final_metrics_equal_with_and_without_per_epoch_losses(tmp_path):
    plain = _config(tmp_path)
    history = _config(tmp_path, metrics='["recovery_error", "train_loss", "test_loss"]', name="h")
    out = {}
    for name, cfg in (("lean", plain), ("full", history)):
        runs = list({r.key: r for r in expand(cfg)}.values())  # distinct runs (top-p ignores thresh_train)
        out[name] = _by_run([rec for t in make_tasks(runs) for rec in execute_task(t)], runs)
    assert out["lean"].keys() == out["full"].keys() and len(out["lean"]) == 20
    for run, lean in out["lean"].items():
        full = out["full"][run]
        assert lean["status"] == full["status"] == "ok", run
        metrics = {k: v for k, v in lean["metrics"].items() if k != "wall_time"}
        np.testing.assert_equal(metrics, {k: v for k, v in full["metrics"].items() if k != "wall_time"}, str(run))
        assert lean["history"]["nnz"] == full["history"]["nnz"]
        for name in ("train_loss", "test_loss"):
            got, want = np.array(lean["history"][name]), np.array(full["history"][name])
            assert np.isfinite(want).all(), (run, name)  # fig03-like: every epoch recorded
            kept = np.isfinite(got)
            assert kept[[0, -1]].all() and not kept.all(), (run, name)
            np.testing.assert_array_equal(got[kept], want[kept])
