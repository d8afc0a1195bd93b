"""SQLite results store: round trip, uniqueness, replace, failures, atomic transactions."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sparsenet.experiments.store import STORE_NAME, Store, StoreError, open_store


def record(key, status="ok", **extra):
    rec = {
        "run_key": key, "method": "iht", "protocol": "blind", "trial": 0, "seed": 2**59 + 7,
        "status": status, "error": None if status == "ok" else "ValueError: boom",
        "params": {"n": 300, "d": 6, "batch_size": "full"},
        "metrics": {"recovery_error": 0.125, "sign_failure": 0, "tp": 3, "pct_true_negative": math.nan,
                    "inf_metric": math.inf, "exact": 0.1 + 0.2},
        "history": {"train_loss": [1.0, 0.5, 0.25], "test_loss": [math.nan] * 3, "nnz": [12.0, 10.0, 9.0]},
        "wall_time": 0.5, "warnings": ["tensor init: UserWarning: small eigen-gap"],
    }
    rec.update(extra)
    return rec


def test_round_trip(tmp_path):
    with open_store(tmp_path / "out") as store:
        assert (tmp_path / "out" / STORE_NAME).exists()
        assert store.put([record("a"), record("b", status="failed")]) == 2
        assert len(store) == 2 and store.keys() == {"a", "b"}
        assert store.keys(status="ok") == {"a"}
        rows = store.get(["a", "b", "missing"])
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert a["metrics"]["recovery_error"] == 0.125
    assert a["metrics"]["exact"] == 0.1 + 0.2  # floats bit-exact through JSON
    assert math.isnan(a["metrics"]["pct_true_negative"]) and math.isinf(a["metrics"]["inf_metric"])
    assert a["history"]["train_loss"] == [1.0, 0.5, 0.25]
    assert a["seed"] == 2**59 + 7 and a["params"]["batch_size"] == "full"
    assert a["warnings"] == ["tensor init: UserWarning: small eigen-gap"]
    assert rows["b"]["status"] == "failed" and rows["b"]["error"] == "ValueError: boom"


def test_store_is_wal_and_persists(tmp_path):
    path = tmp_path / STORE_NAME
    with Store(path) as store:
        store.put([record("a")])
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with Store(path) as store:
        assert store.keys() == {"a"}


def test_unique_key_and_replace(tmp_path):
    with open_store(tmp_path) as store:
        store.put([record("a")])
        assert store.put([record("a", wall_time=9.0)]) == 0  # kept, not duplicated
        assert store.get(["a"])["a"]["wall_time"] == 0.5
        store.put([record("a", wall_time=9.0)], replace=True)
        assert store.get(["a"])["a"]["wall_time"] == 9.0
        assert len(store) == 1
        with pytest.raises(sqlite3.IntegrityError):
            store._con.execute("INSERT INTO runs SELECT * FROM runs")


def test_failed_transaction_writes_nothing(tmp_path):
    with open_store(tmp_path) as store:
        bad = record("c")
        bad["status"] = "weird"  # violates the CHECK constraint after "b" was inserted
        with pytest.raises(sqlite3.IntegrityError):
            store.put([record("b"), bad])
        assert len(store) == 0


def test_failures_listing(tmp_path):
    with open_store(tmp_path) as store:
        store.put([record("a"), record("b", status="failed")])
        assert store.failures() == [("b", "iht", "ValueError: boom")]


# ------------------------------------------------------------------------------------------------
# Claims: two processes on one folder compute each run once (issue 13, item 6)
# ------------------------------------------------------------------------------------------------
def test_claims_split_the_runs_between_two_owners(tmp_path):
    path = tmp_path / STORE_NAME
    with Store(path) as a, Store(path) as b:
        assert a.claim(["k1", "k2", "k3"]) == {"k1", "k2", "k3"}
        assert b.claim(["k2", "k3", "k4"]) == {"k4"}  # k2, k3 are being computed by a
        assert {c["run_key"] for c in b.claims()} == {"k1", "k2", "k3"}
        assert all(c["pid"] == os.getpid() for c in b.claims())
        a.put([record("k2")])  # storing a run ends its claim
        assert b.claim(["k2"]) == set()  # stored: nothing left to compute
        assert b.claim(["k2"], unless_stored=()) == {"k2"}  # --force recomputes stored runs
        assert a.claim(["k1", "k3"]) == {"k1", "k3"}  # a still holds its own claims
        a.release(["k3"])
        assert b.claim(["k3"]) == {"k3"}  # released runs are free again


def test_close_releases_the_claims(tmp_path):
    path = tmp_path / STORE_NAME
    with Store(path) as a:
        a.claim(["k1"])
    with Store(path) as b:
        assert b.claim(["k1"]) == {"k1"}


def test_claims_of_a_killed_process_are_taken_over(tmp_path):
    # A real process claims runs, then is killed with SIGKILL: its pid is dead, so they are free at once.
    path = tmp_path / STORE_NAME
    Store(path).close()
    code = (
        "import sys, time\n"
        "from sparsenet.experiments.store import Store\n"
        f"s = Store({str(path)!r})\n"
        "print(sorted(s.claim(['k1', 'k2'])), flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "['k1', 'k2']"
        with Store(path) as b:
            assert b.claim(["k1", "k2", "k3"]) == {"k3"}  # alive: its runs are not taken
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert b.claim(["k1", "k2", "k3"]) == {"k1", "k2", "k3"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_stale_heartbeat_is_taken_over_and_a_live_one_is_not(tmp_path):
    path = tmp_path / STORE_NAME
    with Store(path, stale_after=1.0) as a, Store(path, stale_after=1.0) as b:
        # A claim from another host (its pid cannot be checked) whose last heartbeat is old.
        b._con.execute("INSERT INTO claims VALUES ('far', 'elsewhere:1:x', 'elsewhere', 1, ?)", (time.time() - 5,))
        assert a.claim(["far"]) == {"far"}
        # a's own claims are kept fresh by its heartbeat thread (every stale_after / 4 seconds).
        time.sleep(1.6)
        assert b.claim(["far"]) == set()
        beats = [c["heartbeat"] for c in b.claims()]
        assert beats and time.time() - max(beats) < 1.0


def test_read_only_store_refuses_to_claim(tmp_path):
    path = tmp_path / STORE_NAME
    with Store(path) as s:
        s.put([record("a")])
    with Store(path) as s:
        s.readonly = "the file is read-only"  # as set when the file cannot be written
        assert s.claim([]) == set()
        with pytest.raises(StoreError, match=r"Cannot write to the results store .*: the file is read-only"):
            s.claim(["b"])
        s.readonly = None
