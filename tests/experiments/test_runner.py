"""Runner: grouping, determinism, failures, and resume after a real kill -9 of a real process."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from sparsenet.experiments.config import PROBLEM_KEYS, expand, load_config
from sparsenet.experiments.runner import execute_task, make_tasks, run_experiments
from sparsenet.experiments.store import STORE_NAME, open_store
from sweep_kill import SWEEP, count_rows, kill_mid_sweep

TINY = """
[experiment]
name = "tiny"
x = "thresh_train"
values = [0.05, 0.15]
metrics = ["recovery_error", "pct_true_negative"]
protocols = ["blind", "report"]
trials = 2

[setting]
n = 300
d = 6
k = 2
thresh_gt = 0.15
n_test = 100
epochs = 2
batch_size = 20
pretrain_epochs = 1

[[methods]]
label = "tensor + threshold"
method = "iht"
init = "tensor"
sparsifier = "threshold"

[[methods]]
label = "random + threshold"
method = "iht"
init = "random"
sparsifier = "threshold"

[[methods]]
label = "tensor + top-p"
method = "iht"
init = "tensor"
sparsifier = "top_fraction"
p_gt = 0.75
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return load_config(path)


def _metrics(records):
    return {r["run_key"]: r["metrics"] for r in records}


def test_records_follow_schema(tiny, tmp_path):
    with open_store(tmp_path) as store:
        result = run_experiments([tiny], store, jobs=1, progress=False)
        records = store.records(tiny)
    runs = expand(tiny)
    assert result.total == len({r.key for r in runs}) and result.done == result.total
    assert len(records) == len(runs)
    for rec in records:
        assert {"run_key", "experiment", "protocol", "method", "x", "seed", "status", "error", "metrics",
                "history", "wall_time", "params"} <= set(rec)
        if rec["status"] == "ok":
            assert {"recovery_error", "init_recovery_error", "pct_true_negative", "test_mse", "nnz"} <= set(
                rec["metrics"])
            assert len(rec["history"]["train_loss"]) == 3  # initial state + 2 epochs
        else:
            assert rec["error"]
    assert {r["method"] for r in records} == {"tensor + threshold", "random + threshold", "tensor + top-p"}
    # Blind protocol: the returned W is exactly sparse, so nnz counts the support.
    blind = [r for r in records if r["protocol"] == "blind" and r["status"] == "ok"]
    assert blind and all(r["metrics"]["nnz"] == r["history"]["nnz"][-1] for r in blind)


def test_same_seed_identical_metrics(tiny, tmp_path):
    stored = []
    for name in ("a", "b"):
        with open_store(tmp_path / name) as store:
            run_experiments([tiny], store, jobs=1, progress=False)
            stored.append({r["run_key"]: (r["status"], r["metrics"], r["history"]) for r in store.records(tiny)})
    assert stored[0].keys() == stored[1].keys()
    for key, (status, metrics, history) in stored[0].items():
        assert stored[1][key][0] == status
        np.testing.assert_array_equal(  # bit-identical, NaN == NaN
            np.array(list(metrics.values()), dtype=float), np.array(list(stored[1][key][1].values()), dtype=float))
        assert stored[1][key][1].keys() == metrics.keys()
        for name in history:
            np.testing.assert_array_equal(history[name], stored[1][key][2][name])


def test_grouping_equals_running_each_alone(tiny):
    runs = list({r.key: r for r in expand(tiny)}.values())
    grouped = make_tasks(runs, max_models=None)
    alone = make_tasks(runs, max_models=1)
    assert len(alone) == len(runs)
    # One task per problem shape, its protocols together (one problem generated once, one training call
    # per protocol); the top-p runs share the shape (different truth, same shape).
    assert len(grouped) == 1 and len({r.protocol for r in grouped[0].runs}) == 2
    got_grouped = _metrics(rec for task in grouped for rec in execute_task(task))
    got_alone = _metrics(rec for task in alone for rec in execute_task(task))
    assert got_grouped.keys() == got_alone.keys() == {r.key for r in runs}
    for key, metrics in got_grouped.items():
        assert metrics.keys() == got_alone[key].keys()
        for name, value in metrics.items():
            np.testing.assert_allclose(value, got_alone[key][name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_variants_of_a_trial_share_one_minibatch_order(tiny, monkeypatch):
    """Common random numbers: every variant (method, x value) of one trial trains on the same minibatch
    order, drawn from the trial's problem seed ([seed, 100]); the runner passes one order group per
    problem (test_grouping_equals_running_each_alone: results do not depend on the chunking)."""
    import sparsenet.train as train

    calls = []
    real = train.train_iht_batched

    def spy(*args, **kwargs):
        states = [rs.bit_generator.state for rs in kwargs["random_states"]]  # before training draws
        calls.append({**kwargs, "states": states})
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_iht_batched", spy)
    runs = [r for r in {r.key: r for r in expand(tiny)}.values() if r.protocol == "blind"]
    for task in make_tasks(runs, max_models=None):
        execute_task(task)
    assert calls
    for kw in calls:
        groups, index = np.asarray(kw["order_groups"]), np.asarray(kw["data_index"])
        np.testing.assert_array_equal(groups, index)  # one group per problem (trial)
        assert len(np.unique(groups)) < len(groups)  # several variants per trial share an order
        for g in np.unique(groups):
            members = np.flatnonzero(groups == g)
            for b in members[1:]:  # the same trial seed for every variant
                assert kw["states"][b] == kw["states"][members[0]]


def test_chunks_keep_problems_whole(tiny):
    runs = list({r.key: r for r in expand(tiny)}.values())
    tasks = make_tasks(runs, max_models=3)
    assert sorted(r.key for t in tasks for r in t.runs) == sorted(r.key for r in runs)
    for task in tasks:
        assert len({r.params_dict["n"] for r in task.runs}) == 1  # one shape per task
    by_problem = {}  # a problem's runs, under every protocol, are in one task (its data made once)
    for i, task in enumerate(tasks):
        for r in task.runs:
            by_problem.setdefault((r.seed, r.params_dict.get("p_gt")), set()).add(i)
    assert all(len(v) == 1 for v in by_problem.values())
    assert any(len({r.protocol for r in t.runs}) == 2 for t in tasks)


def test_failed_runs_are_stored_and_sweep_continues(tmp_path):
    text = TINY.replace("values = [0.05, 0.15]", "values = [0.05]").replace(
        'protocols = ["blind", "report"]', 'protocols = ["blind"]').replace(
        'label = "random + threshold"', 'label = "random + threshold"\nlearning_rate = 1000.0')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    config = load_config(path)
    with open_store(tmp_path) as store:
        result = run_experiments([config], store, jobs=1, progress=False)
        records = store.records(config)
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all(r["method"] == "random + threshold" for r in failed)
    assert all("learning_rate" in r["error"] for r in failed)
    assert {k for k, *_ in result.failed} == {r["run_key"] for r in failed}
    assert any(r["status"] == "ok" for r in records)


def test_restart_skips_stored_and_force_recomputes(tiny, tmp_path):
    with open_store(tmp_path) as store:
        first = run_experiments([tiny], store, jobs=1, progress=False)
        again = run_experiments([tiny], store, jobs=1, progress=False)
        assert again.done == 0 and again.skipped == first.total
        forced = run_experiments([tiny], store, jobs=1, progress=False, force=True)
        assert forced.done == first.total and len(store) == first.total


def test_process_pool_matches_serial(tiny, tmp_path):
    out = {}
    for jobs in (1, 2):
        with open_store(tmp_path / str(jobs)) as store:
            run_experiments([tiny], store, jobs=jobs, progress=False, max_models=4)
            out[jobs] = {r["run_key"]: r for r in store.records(tiny)}
    assert out[1].keys() == out[2].keys()
    for key in out[1]:
        assert out[1][key]["status"] == out[2][key]["status"], (out[1][key], out[2][key])
        out[1][key], out[2][key] = out[1][key]["metrics"], out[2][key]["metrics"]
        for name, value in out[1][key].items():
            np.testing.assert_allclose(value, out[2][key][name], rtol=1e-9, atol=1e-12)





def test_resume_after_kill_9(tmp_path):
    path = tmp_path / "kill.toml"
    path.write_text(SWEEP.format(name="killme", x="n", trials=2, epochs=30, values=", ".join(str(300 + 10 * i) for i in range(30))))
    config = load_config(path)
    expected = {r.key for r in expand(config)}
    out = tmp_path / "out"
    db = out / STORE_NAME
    cmd = [sys.executable, "-m", "sparsenet.cli", "run", str(path), "--out", str(out), "--jobs", "1", "--no-progress"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    at_kill = kill_mid_sweep(cmd, db, len(expected), env=env, timeout=60)

    # The store is consistent after the kill: every row whole.
    with open_store(out) as store:
        rows = store.get(store.keys())
        assert set(rows) <= expected
        for row in rows.values():
            assert row["status"] == "ok" and len(row["history"]["train_loss"]) == 31 and row["metrics"]

    # Restart: completes the sweep, each run exactly once, none missing.
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{len(expected) - at_kill} runs computed, {at_kill} already stored" in done.stdout
    con = sqlite3.connect(db)
    keys = [k for (k,) in con.execute("SELECT run_key FROM runs")]
    con.close()
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    with open_store(out) as store:
        records = store.records(config)
    assert len(records) == len(expected)
    assert all(r["status"] == "ok" and len(r["history"]["train_loss"]) == 31 for r in records)


def test_ctrl_c_stops_cleanly_and_keeps_what_is_done(tmp_path):
    path = tmp_path / "kill.toml"
    path.write_text(SWEEP.format(name="killme", x="n", trials=2, epochs=30, values=", ".join(str(300 + 10 * i) for i in range(30))))
    expected = {r.key for r in expand(load_config(path))}
    out = tmp_path / "out"
    db = out / STORE_NAME
    cmd = [sys.executable, "-m", "sparsenet.cli", "run", str(path), "--out", str(out), "--jobs", "2", "--no-progress"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # SIG_DFL in the child: a shell's background job would otherwise inherit SIGINT ignored.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while count_rows(db) < 1:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    kept = count_rows(db)
    assert 1 <= kept < len(expected)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{kept} already stored" in done.stdout
    with open_store(out) as store:
        assert store.keys() == expected


def _paper_runs():
    from sparsenet.experiments.config import shipped_configs

    runs = {}
    for path in shipped_configs(reproduce_only=True):
        for run in expand(load_config(path, scale="paper")):
            runs.setdefault(run.key, run)
    return list(runs.values())


def test_paper_reproduction_is_cut_into_small_tasks_longest_first():
    # Issue 13 item 2: no store transaction may hold more than a few seconds of work, and the pool
    # must have enough tasks to end evenly (issue 15: no straggler).
    from sparsenet.experiments.runner import COST_PER_SECOND, MAX_TASK_SECONDS, TASKS_PER_WORKER, plan_tasks, task_cost

    runs = _paper_runs()
    tasks = plan_tasks(runs, 2)
    assert sorted(r.key for t in tasks for r in t.runs) == sorted(r.key for r in runs)
    assert len(tasks) >= TASKS_PER_WORKER * 2
    costs = [task_cost(t) for t in tasks]
    assert costs == sorted(costs, reverse=True)
    cap = MAX_TASK_SECONDS * COST_PER_SECOND
    for task, cost in zip(tasks, costs):
        problems = {(r.seed,) + tuple(str(r.params_dict.get(k)) for k in PROBLEM_KEYS) for r in task.runs}
        assert cost <= cap or len(problems) == 1, (len(task), cost / cap)
    # The largest task is at most a small share of the whole (the last one to start ends soon after the rest).
    assert costs[0] <= sum(costs) / (TASKS_PER_WORKER * 2) or costs[0] <= cap


def test_each_task_is_stored_in_its_own_transaction_as_it_finishes(tiny, tmp_path):
    from sparsenet.experiments.runner import serial

    seen = []

    class CountingStore:
        def __init__(self, store):
            self.store = store

        def __getattr__(self, name):
            return getattr(self.store, name)

        def put(self, records, **kw):
            seen.append(len(records))
            return self.store.put(records, **kw)

    def backend(tasks):
        for task, records in serial(tasks):
            yield task, records
            # the consumer stored this task before asking for the next one
            assert count_rows(tmp_path / "o" / STORE_NAME) == sum(seen)

    with open_store(tmp_path / "o") as store:
        result = run_experiments([tiny], CountingStore(store), jobs=1, progress=False,
                                 max_cost=1.0, backend=backend)
    runs = expand(tiny)
    n_problems = len({(r.seed,) + tuple(str(r.params_dict.get(k)) for k in PROBLEM_KEYS) for r in runs})
    assert n_problems > 1  # one task (transaction) per problem at this cap
    assert result.tasks == len(seen) == n_problems
    assert sum(seen) == result.done == result.total
