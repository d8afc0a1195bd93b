"""SQLite results store: round trip, uniqueness, replace, failures, atomic transactions."""

import math
import sqlite3

import pytest

from sparsenet.experiments.store import STORE_NAME, Store, open_store


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
