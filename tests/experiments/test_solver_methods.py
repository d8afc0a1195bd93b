"""The `recover` method: the full-batch solvers as experiment methods, on a tiny 2-D sweep."""

import numpy as np
import pytest

from sparsenet.data import make_planted
from sparsenet.experiments.config import expand, load_config
from sparsenet.experiments.methods import METHODS
from sparsenet.experiments.runner import run_experiments
from sparsenet.experiments.store import open_store
from sparsenet.metrics import recovery_error
from sparsenet.recovery import recover
from sparsenet.sparsify import TopFraction

TINY = """
[experiment]
name = "tiny_solvers"
x = "n"
values = [300, 600]
y = "p_gt"
y_values = [0.5]
metrics = ["success"]
success_threshold = 1e-3
protocols = ["blind"]
trials = 2

[setting]
d = 6
k = 2
p_gt = 0.5
n_test = 50
epochs = 2
batch_size = 20
learning_rate = 0.001
pretrain_epochs = 1
p_train = 0.5

[[methods]]
label = "GraSP"
method = "recover"
solver = "grasp"
sparsifier = "top_fraction"

[[methods]]
label = "HTP one start"
method = "recover"
solver = "htp"
sparsifier = "top_fraction"
max_starts = 1

[[methods]]
label = "SGD IHT via recover"
method = "recover"
solver = "sgd_iht"
sparsifier = "top_fraction"
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return load_config(path)


def test_recover_method_is_registered_with_its_fields():
    m = METHODS["recover"]
    assert set(m.fields) >= {"solver", "signs", "sparsifier", "max_starts", "target"}
    params = m.resolve({"epochs": 25, "pretrain_epochs": 5, "learning_rate": 1e-3, "thresh_train": 0.1,
                        "p_train": 0.5, "batch_size": 20}, {"solver": "htp", "sparsifier": "top_fraction",
                                                            "signs": "auto", "max_starts": 3})
    # a full-batch solver's run does not depend on SGD settings, so they are not part of its key
    assert "learning_rate" not in params and "thresh_train" not in params and params["epochs"] == 0


def test_recover_method_runs_and_equals_the_function(tiny, tmp_path):
    with open_store(tmp_path) as store:
        result = run_experiments([tiny], store, jobs=1, progress=False)
        records = store.records(tiny)
    assert result.done == result.total == len({r.key for r in expand(tiny)})
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert {"solver_iterations", "solver_starts", "wall_time"} <= set(records[0]["metrics"])
    one = next(r for r in records if r["method"] == "HTP one start")
    assert one["metrics"]["solver_starts"] == 1
    # the stored error is that of recover() called directly with the run's seed stream
    prob = make_planted(one["params"]["n"], 6, 2, p_gt=0.5, n_test=50,
                        random_state=np.random.default_rng([one["seed"], 0]))
    res = recover(prob.X, prob.y, 2, sparsifier=TopFraction(0.5), solver="htp", max_starts=1,
                  random_state=np.random.default_rng([one["seed"], 200]))
    assert one["metrics"]["recovery_error"] == pytest.approx(
        recovery_error(res.W, res.v, prob.W, prob.v, activation="relu2"), rel=1e-9, abs=1e-15)


def test_wilson_bounds_match_scipy():
    from scipy.stats import binomtest

    from sparsenet.experiments.plot_contours import wilson_bounds

    for k, n in [(0, 10), (3, 10), (10, 10), (17, 40)]:
        ci = binomtest(k, n).proportion_ci(method="wilson")
        lo, hi = wilson_bounds(k / n, n)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert np.isnan(wilson_bounds(0.0, 0)[0])


def test_contour_figure_one_line_per_method():
    from sparsenet.experiments.plot_contours import plot_success_contours

    config = {"name": "pt", "x": "n", "values": [100, 200, 400], "y": "d", "y_values": [10, 20, 40],
              "success_threshold": 1e-3}
    records = []
    for method, shift in [("A", 0), ("B", 1), ("never", 9)]:
        for i, n in enumerate([100, 200, 400]):
            for j, d in enumerate([10, 20, 40]):
                for t in range(10):
                    ok = i - j + shift > 0 if method != "never" else False
                    records.append({"status": "ok", "protocol": "blind", "method": method,
                                    "params": {"n": n, "d": d}, "metrics": {"recovery_error": 0.0 if ok else 1.0}})
    fig = plot_success_contours(config, records)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["A", "B"] and "never (no 50% crossing: always below)" in labels
    assert len(fig.axes[0].collections) >= 2  # one contour set per crossing method


def test_recover_method_survives_a_failing_tensor_init(tmp_path):
    # n = 30 < what tensor_init needs: the run still completes (recover starts at random)
    path = tmp_path / "t.toml"
    path.write_text(TINY.replace("values = [300, 600]", "values = [30]").replace("trials = 2", "trials = 1"))
    cfg = load_config(path)
    with open_store(tmp_path) as store:
        run_experiments([cfg], store, jobs=1, progress=False)
        records = [r for r in store.records(cfg) if r["method"] != "SGD IHT via recover"]
    assert records and all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert all(np.isnan(r["metrics"]["init_recovery_error"]) for r in records)
