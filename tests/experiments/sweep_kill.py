"""Shared by the kill -9 tests: count stored rows, and kill a running sweep once it has stored some."""

import os
import signal
import sqlite3
import subprocess
import time


def count_rows(db):
    """Rows in the store's ``runs`` table (0 before the file exists), read-only."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def kill_mid_sweep(cmd, db, n_expected, *, env, timeout=60):
    """Start ``cmd``, SIGKILL it as soon as the store holds a row, and return the row count then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    while count_rows(db) < 1:
        assert proc.poll() is None, f"the sweep ended before any row was seen: {proc.stderr.read()!r}"
        assert time.monotonic() < deadline, f"no row stored within {timeout} s"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    at_kill = count_rows(db)
    assert proc.returncode == -signal.SIGKILL
    assert 1 <= at_kill < n_expected, "the kill must land mid-sweep"
    return at_kill


# A small 1-D sweep (tiny problems): format with name, x, values, trials, epochs.
SWEEP = """
[experiment]
name = "{name}"
x = "{x}"
values = [{values}]
metrics = ["recovery_error"]
protocols = ["blind"]
trials = {trials}

[setting]
n = 300
d = 6
k = 2
thresh_gt = 0.15
n_test = 100
epochs = {epochs}
batch_size = 10
pretrain_epochs = 1

[[methods]]
label = "tensor + threshold"
method = "iht"
sparsifier = "threshold"

[[methods]]
label = "tensor + top-p"
method = "iht"
sparsifier = "top_fraction"
"""
