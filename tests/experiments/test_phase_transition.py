"""2-D sweeps (phase transitions): config keys, expansion, success probability, heat map and report."""

import matplotlib
import numpy as np
import pytest

from sparsenet.experiments.config import CONFIG_DIR, ConfigError, expand, load_config
from sparsenet.experiments.plots import plot_phase_transition, success_probability
from sparsenet.experiments.report import write_report

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GRID = """
[experiment]
name = "grid"
x = "n"
values = [300, 400, 500]
y = "p_gt"
y_values = [0.25, 0.5]
metrics = ["success"]
success_threshold = 0.05
protocols = ["blind"]
trials = 3
{extra}

[setting]
d = 6
k = 2
n_test = 100
epochs = 2
pretrain_epochs = 1
p_train = 0.5

[[methods]]
label = "top-p"
method = "iht"
sparsifier = "top_fraction"
{tail}
"""


def _load(tmp_path, extra="", tail=""):
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(extra=extra, tail=tail))
    return load_config(path)


def test_two_d_sweep_expands_to_the_cartesian_grid(tmp_path):
    config = _load(tmp_path)
    runs = expand(config)
    assert config.y == "p_gt" and config.y_values == (0.25, 0.5) and config.success_threshold == 0.05
    assert len(runs) == config.n_runs == 3 * 2 * 3
    points = {(r.x, r.y) for r in runs}
    assert points == {(n, p) for n in (300, 400, 500) for p in (0.25, 0.5)}
    for run in runs:
        assert run.params_dict["n"] == run.x and run.params_dict["p_gt"] == run.y
        assert "thresh_gt" not in run.params_dict  # sweeping p_gt drops the other truth key
    assert len({r.key for r in runs}) == len(runs)


@pytest.mark.parametrize("extra, tail, match", [
    ('y = "n"', "", "'y' key"),
    ('y = "epoch"', "", "'y' key"),
    ("", "", None),
])
def test_y_must_be_another_setting_key(tmp_path, extra, tail, match):
    text = GRID.format(extra="", tail=tail).replace('y = "p_gt"\n', extra + "\n" if extra else 'y = "p_gt"\n')
    path = tmp_path / "g.toml"
    path.write_text(text)
    if match is None:
        load_config(path)
    else:
        with pytest.raises(ConfigError, match=match):
            load_config(path)


def test_two_d_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="may not override the swept key 'p_gt'"):
        _load(tmp_path, tail="p_gt = 0.3")
    with pytest.raises(ConfigError, match="may not override the swept key 'p_gt'"):
        _load(tmp_path, tail="[scale.quick]\np_gt = 0.3")
    with pytest.raises(ConfigError, match="not supported for 2-D"):
        _load(tmp_path, tail='[[claims]]\nkind = "trend"\nmetric = "success"\nmethod = "top-p"\n'
                             'direction = "increasing"\ntext = "t"')
    path = tmp_path / "one_d.toml"
    path.write_text(GRID.format(extra="", tail="").replace('y = "p_gt"\ny_values = [0.25, 0.5]\n', ""))
    with pytest.raises(ConfigError, match="'success_threshold' but no 'y'"):
        load_config(path)
    path.write_text(GRID.format(extra="", tail="").replace('y = "p_gt"\ny_values = [0.25, 0.5]\n', "")
                    .replace("success_threshold = 0.05\n", ""))
    with pytest.raises(ConfigError, match="'success' metric .* needs a 2-D sweep"):
        load_config(path)
    path.write_text(GRID.format(extra="", tail="").replace("y_values = [0.25, 0.5]", "y_values = [0.25, 1.5]"))
    with pytest.raises(ConfigError, match="'p_gt' key"):
        load_config(path)


def test_shipped_phase_transitions_have_twenty_trials_at_paper_scale():
    for name in ("phase_transition", "phase_transition_nd"):
        paper = load_config(CONFIG_DIR / f"{name}.toml", scale="paper")
        quick = load_config(CONFIG_DIR / f"{name}.toml", scale="quick")
        assert paper.trials >= 20 and paper.y is not None and paper.success_threshold == 1e-2
        assert quick.values == paper.values and quick.y_values == paper.y_values


def _records(config):
    out = []
    for run in expand(config):
        # success iff n >= 400 and p_gt == 0.25, except one failed run at (500, 0.25)
        good = run.x >= 400 and run.y == 0.25
        status = "failed" if (run.x, run.y, run.trial) == (500, 0.25, 0) else "ok"
        out.append({"run_key": run.key, "protocol": run.protocol, "method": run.label, "x": run.x,
                    "status": status, "error": None if status == "ok" else "boom",
                    "metrics": {} if status == "failed" else {"recovery_error": 0.01 if good else 0.5},
                    "history": {}, "params": run.params_dict, "wall_time": 0.0})
    return out


def test_success_probability_counts_failures_as_failures(tmp_path):
    config = _load(tmp_path)
    xs, ys, table = success_probability(config, _records(config))
    assert xs == [300, 400, 500] and ys == [0.25, 0.5]
    P, N = table[("blind", "top-p")]
    np.testing.assert_array_equal(N, np.full((2, 3), 3))
    np.testing.assert_allclose(P, [[0.0, 1.0, 2 / 3], [0.0, 0.0, 0.0]])


def test_heat_map_has_the_half_contour_and_the_report_uses_it(tmp_path):
    config = _load(tmp_path)
    records = _records(config)
    fig = plot_phase_transition(config, records)
    ax = fig.axes[0]
    assert ax.images and ax.collections, "heat map and 50% contour expected"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["300", "400", "500"]
    plt.close(fig)
    md, _ = write_report(tmp_path / "out", [(config, records)], date="2024-01-01", version="0")
    text = md.read_text()
    assert (tmp_path / "out" / "figures" / "grid_success_vs_n_p_gt.png").exists()
    assert "0.67 (2/3)" in text and "P(recovery error < 0.05)" in text


SECOND_METHOD = """
[[methods]]
label = "thr"
method = "iht"
sparsifier = "threshold"
"""


def test_report_has_the_contour_figure_only_with_two_methods(tmp_path):
    from sparsenet.experiments.claims import wilson_interval

    one = _load(tmp_path)
    md, _ = write_report(tmp_path / "one", [(one, _records(one))], date="2024-01-01", version="0")
    assert "contours" not in md.read_text()
    assert not list((tmp_path / "one" / "figures").glob("*contours*"))
    two = _load(tmp_path, tail=SECOND_METHOD)
    records = _records(two)
    assert {r["method"] for r in records} == {"top-p", "thr"}
    md, _ = write_report(tmp_path / "two", [(two, records)], date="2024-01-01", version="0")
    text = md.read_text()
    png = tmp_path / "two" / "figures" / "grid_success_vs_n_p_gt_contours.png"
    assert png.exists() and png.stat().st_size > 0
    assert "figures/grid_success_vs_n_p_gt_contours.png" in text
    lo, hi = wilson_interval(2, 3)  # the failed run at (500, 0.25): 2 of 3 successes, each method
    assert text.count(f"0.67 (2/3) [{lo:.2f}, {hi:.2f}]") == 2
