"""Same config and seed -> bit-identical stored results, for every way of running a sweep (issue 13, item 4).

ReLU and leaky ReLU take the order-4 path of the tensor initialization (m_3 = 0), whose Levenberg–
Marquardt refinement used to give different bits from one call to the next (MINPACK's result
depended on the heap). Compared here bit for bit: two sweeps in one process, and jobs 1 vs jobs 2.
"""

import json

import pytest

from sparsenet.experiments.config import parse_config
from sparsenet.experiments.runner import run_experiments
from sparsenet.experiments.store import open_store

import tomllib

SWEEP = """
[experiment]
name = "det"
x = "activation"
values = ["relu", "leaky_relu"]
metrics = ["init_recovery_error", "recovery_error"]
protocols = ["blind"]
trials = 3

[setting]
n = 6000
d = 20
k = 5
thresh_gt = 0.15
n_test = 200
epochs = 2
pretrain_epochs = 1

[[methods]]
label = "tensor"
method = "iht"
init = "tensor"
sparsifier = "threshold"
"""


def _bits(store, config):
    # JSON of metrics and history as stored: floats by repr, so equal text = equal bits (NaN included).
    return {r["run_key"]: (r["status"], json.dumps(r["metrics"], sort_keys=True),
                           json.dumps(r["history"], sort_keys=True)) for r in store.records(config)}


@pytest.mark.filterwarnings("ignore")
def test_sweep_bits_do_not_depend_on_repetition_or_jobs(tmp_path):
    config = parse_config(tomllib.loads(SWEEP), tmp_path / "det.toml", source=SWEEP)
    results = {}
    for name, jobs in (("serial-1", 1), ("serial-2", 1), ("pool", 2)):
        with open_store(tmp_path / name) as store:
            run_experiments([config], store, jobs=jobs, progress=False)
            results[name] = _bits(store, config)
    first = results["serial-1"]
    assert len(first) == 6 and all(status == "ok" for status, _, _ in first.values())
    for name in ("serial-2", "pool"):
        differ = [k for k in first if first[k] != results[name][k]]
        assert not differ, f"{len(differ)} of {len(first)} runs differ between serial-1 and {name}"
