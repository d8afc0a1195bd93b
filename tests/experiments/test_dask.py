"""Dask backend on loopback: a LocalCluster of real worker processes; lost workers, a killed client, failures."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from sparsenet.cli import main  # noqa: E402
from sparsenet.experiments.config import expand, load_config  # noqa: E402
from sparsenet.experiments.dask_backend import DaskBackend, parse_scheduler, rechunk, task_key  # noqa: E402
from sparsenet.experiments.runner import _cost, make_tasks, run_experiments  # noqa: E402
from sparsenet.experiments.store import STORE_NAME, open_store  # noqa: E402
from sweep_kill import SWEEP, count_rows, kill_mid_sweep



def _config(tmp_path, name="sweep", x="n", values=(300, 310, 320, 330), trials=4, epochs=3):
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, x=x, values=", ".join(map(str, values)), trials=trials, epochs=epochs))
    return path, load_config(path)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)  # a worker killed by an earlier test is restarted by its nanny
        yield client


def _keys(db):
    con = sqlite3.connect(db)
    try:
        return [k for (k,) in con.execute("SELECT run_key FROM runs")]
    finally:
        con.close()




def _assert_once_and_ok(db, expected):
    keys = _keys(db)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    with open_store(db.parent) as store:
        rows = store.get(keys)
    assert all(row["status"] == "ok" and row["metrics"] for row in rows.values()), [
        row["error"] for row in rows.values() if row["status"] != "ok"]


def test_parse_scheduler():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("local") == ("local", None)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    with pytest.raises(ValueError, match="N >= 1"):
        parse_scheduler("local:0")


def test_without_dask_the_message_says_what_to_install(tmp_path, monkeypatch):
    path, _ = _config(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(SystemExit, match=r'pip install "sparsenet\[dask\]"'):
        main(["run", str(path), "--out", str(tmp_path / "out"), "--scheduler", "local:2", "--no-progress"])
    assert not (tmp_path / "out" / STORE_NAME).exists()


def test_rechunk_keeps_every_run_once_and_problems_whole(tmp_path):
    _, config = _config(tmp_path, values=(300,), trials=12)
    runs = list({r.key: r for r in expand(config)}.values())
    coarse = make_tasks(runs, max_models=None)
    assert len(coarse) == 1
    split = rechunk(coarse, 2, min_models=2)
    assert 6 <= len(split) <= 12  # at least 3 per worker; a task of 2 problems is not split further
    share = _cost(coarse[0]) / 6
    assert all(_cost(t) <= share or len(t) < 4 for t in split)  # no task holds more than a fair share
    fine = rechunk(make_tasks(runs, max_models=1), 2, min_models=4)
    for tasks in (split, fine):
        assert sorted(r.key for t in tasks for r in t.runs) == sorted(r.key for r in runs)
        where = {}
        for i, task in enumerate(tasks):
            for r in task.runs:
                where.setdefault(r.seed, set()).add(i)
        assert all(len(v) == 1 for v in where.values())  # a problem is never split
    assert 6 <= len(fine) < len(runs)


def test_dask_gives_the_same_stored_metrics_as_the_local_pool(client, tmp_path, capsys):
    path, config = _config(tmp_path)
    with open_store(tmp_path / "pool") as store:
        run_experiments([config], store, jobs=2, progress=False)
        local = {r["run_key"]: r for r in store.records(config)}
    address = client.scheduler.address
    assert main(["run", str(path), "--out", str(tmp_path / "dask"), "--scheduler", address, "--no-progress"]) == 0
    assert f"{len(local)} runs computed, 0 already stored" in capsys.readouterr().out
    with open_store(tmp_path / "dask") as store:
        remote = {r["run_key"]: r for r in store.records(config)}
    assert remote.keys() == local.keys() and len(local) == len(expand(config))
    for key, rec in local.items():
        assert remote[key]["status"] == rec["status"] == "ok"
        assert remote[key]["metrics"].keys() == rec["metrics"].keys()
        for name, value in rec["metrics"].items():
            np.testing.assert_allclose(remote[key]["metrics"][name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_worker_killed_mid_sweep_still_stores_every_row_once(client, tmp_path):
    _, config = _config(tmp_path, values=tuple(300 + 10 * i for i in range(6)), trials=4, epochs=40)
    expected = {r.key for r in expand(config)}
    killed = []

    def killing_backend(tasks):
        stream = DaskBackend(client)(tasks)
        for i, item in enumerate(stream):
            if not killed:
                pids = client.run(os.getpid)
                deadline = time.monotonic() + 60
                while not killed and time.monotonic() < deadline:
                    busy = [w for w, keys in client.processing().items() if keys and w in pids]
                    if busy:
                        os.kill(pids[busy[0]], signal.SIGKILL)
                        killed.append(busy[0])
                    else:
                        time.sleep(0.01)
            yield item

    with open_store(tmp_path) as store:
        result = run_experiments([config], store, progress=False, backend=killing_backend, jobs=2)
    assert killed, "no worker was busy: the kill did not land mid-sweep"
    assert result.done == len(expected) and not result.failed and not result.interrupted
    _assert_once_and_ok(tmp_path / STORE_NAME, expected)


def test_failing_grid_point_is_stored_failed_and_the_rest_completes(client, tmp_path):
    _, config = _config(tmp_path, name="bad", x="learning_rate", values=(0.001, 1000.0), trials=3)
    with open_store(tmp_path) as store:
        result = run_experiments([config], store, progress=False, backend=DaskBackend(client), jobs=2)
        records = store.records(config)
    assert len(records) == len(expand(config)) == result.done
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all(r["x"] == 1000.0 and "learning_rate" in r["error"] for r in failed)
    assert all(r["status"] == "ok" for r in records if r["x"] == 0.001)
    assert {k for k, *_ in result.failed} == {r["run_key"] for r in failed}


def test_client_killed_and_restarted_finishes_every_row_once(client, tmp_path):
    path, config = _config(tmp_path, values=tuple(300 + 10 * i for i in range(8)), trials=4, epochs=30)
    expected = {r.key for r in expand(config)}
    out = tmp_path / "out"
    db = out / STORE_NAME
    cmd = [sys.executable, "-m", "sparsenet.cli", "run", str(path), "--out", str(out), "--no-progress",
           "--scheduler", client.scheduler.address]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    at_kill = kill_mid_sweep(cmd, db, len(expected), env=env, timeout=120)

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(expected) - at_kill} runs computed, {at_kill} already stored" in done.stdout
    _assert_once_and_ok(db, expected)


def test_chunk_lost_for_good_is_stored_failed_and_the_sweep_ends(client, tmp_path):
    _, config = _config(tmp_path, name="lost", values=(300,), trials=2)
    submitted = []

    class Exploding(DaskBackend):
        def _submit(self, task, attempt):
            submitted.append(attempt)
            # a lambda is shipped by value: the worker raises on every attempt (retries included)
            return self.client.submit(lambda t: 1 / 0, task, key=task_key(task, attempt), retries=1, pure=False)

    with open_store(tmp_path) as store:
        result = run_experiments([config], store, progress=False, backend=Exploding(client, resubmit=1), jobs=2)
        records = store.records(config)
    assert len(records) == len(expand(config)) == result.done == len(result.failed)
    assert all(r["status"] == "failed" and "ZeroDivisionError" in r["error"] and "2 submissions" in r["error"]
               for r in records)
    assert sorted(set(submitted)) == [0, 1]
