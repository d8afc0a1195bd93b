"""Two processes on one --out folder compute each run once (issue 13, item 6), with real processes.

A sweep claims its runs in the store before computing them. Here the other process is a real
process holding claims on half of the runs (as a running sweep does). With ``--wait 0``,
``sparsenet run`` leaves those to it and says so; by default it waits until that process has stored
them (computing none twice), and takes over those it never stored once it is killed.
"""

import os
import re
import signal
import subprocess
import sys

from sweep_kill import count_rows

SWEEP = """
[experiment]
name = "shared"
title = "Shared"
x = "thresh_train"
values = [0.05, 0.1, 0.15, 0.2]
metrics = ["recovery_error"]
protocols = ["blind"]
trials = 3

[setting]
n = 300
d = 6
k = 2
thresh_gt = 0.15
n_test = 100
epochs = 2
pretrain_epochs = 1

[[methods]]
label = "iht"
method = "iht"
sparsifier = "threshold"
"""
TOTAL = 12

# The other process: claims every other run of the sweep, reports its pid, then works (sleeps).
HOLDER = """
import sys, time
from sparsenet.experiments.config import expand, load_config
from sparsenet.experiments.store import open_store
keys = sorted(r.key for r in expand(load_config(sys.argv[1])))[::2]
store = open_store(sys.argv[2])
print(len(store.claim(keys)), flush=True)
time.sleep(300)
"""


# The other process, working: claims every other run, stores the first STORED_FIRST of them, reports
# how many it holds, waits until the runs it does not hold are stored (the second process has done its
# own and now waits: no race with that process's start-up on a loaded machine), then ``argv[3]`` more
# seconds, then stores the rest and ends (or is killed before).
WORKER = """
import sys, time
from sparsenet.experiments.config import expand, load_config
from sparsenet.experiments.runner import make_tasks, serial
from sparsenet.experiments.store import open_store
runs = sorted(expand(load_config(sys.argv[1])), key=lambda r: r.key)[::2]
store = open_store(sys.argv[2])
held = store.claim([r.key for r in runs])
first, rest = runs[:STORED_FIRST], runs[STORED_FIRST:]
for _, records in serial(make_tasks(first)):
    store.put(records)
print(len(held), flush=True)
deadline = time.monotonic() + 240
while len(store.keys()) < TOTAL - len(held) + STORED_FIRST and time.monotonic() < deadline:
    time.sleep(0.1)
time.sleep(float(sys.argv[3]))
for _, records in serial(make_tasks(rest)):
    store.put(records)
store.close()
"""
STORED_FIRST = 2


def _command(sweep, out, *extra):
    return [sys.executable, "-m", "sparsenet.cli", "run", str(sweep), "--out", str(out), "--jobs", "1",
            "--no-progress", *extra]


def _run(sweep, out, *extra):
    proc = subprocess.run(_command(sweep, out, *extra), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"(\d+) runs computed, (\d+) already stored, (\d+) in all", proc.stdout)
    assert match, proc.stdout
    return int(match.group(1)), proc.stderr


def test_runs_claimed_by_a_live_process_are_left_to_it_then_taken_over(tmp_path):
    sweep = tmp_path / "shared.toml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sweep), str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        held = int(holder.stdout.readline())
        assert held == TOTAL // 2
        done, err = _run(sweep, out, "--wait", "0")
        assert done == TOTAL - held  # the claimed runs are not computed a second time
        assert re.search(rf"{held} runs are being computed by another process on this store "
                         rf"\(pid {holder.pid} on [^)]+\): left to it, not computed twice", err), err
        os.kill(holder.pid, signal.SIGKILL)  # the holder dies without storing its runs
        holder.wait(timeout=30)
        done, err = _run(sweep, out)
        assert done == held and "being computed by another process" not in err  # taken over
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()
    assert count_rows(out / "runs.sqlite") == TOTAL


def _start_worker(sweep, out, pause):
    worker = subprocess.Popen([sys.executable, "-c", WORKER.replace("STORED_FIRST", str(STORED_FIRST)).replace("TOTAL", str(TOTAL)),
                               str(sweep), str(out), str(pause)], stdout=subprocess.PIPE, text=True)
    held = int(worker.stdout.readline())
    assert held == TOTAL // 2 and count_rows(out / "runs.sqlite") == STORED_FIRST
    return worker, held


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_a_second_process_waits_for_the_runs_of_a_live_one_and_computes_none_twice(tmp_path):
    sweep = tmp_path / "shared.toml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    worker, held = _start_worker(sweep, out, pause=3)
    try:
        done, err = _run(sweep, out)  # default: wait for the other process
        assert worker.wait(timeout=120) == 0
    finally:
        _stop(worker)
    assert done == TOTAL - held  # the worker's runs were waited for, not computed here
    assert f"waiting for {held - STORED_FIRST} runs that another process on this store is computing" in err, err
    assert "left to it" not in err
    assert count_rows(out / "runs.sqlite") == TOTAL  # run_key is the primary key: each run stored once


def test_the_runs_of_a_process_killed_mid_way_are_taken_over_by_the_waiting_one(tmp_path):
    sweep = tmp_path / "shared.toml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    worker, held = _start_worker(sweep, out, pause=300)
    second = subprocess.Popen(_command(sweep, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = "-"
        while line and not line.startswith("waiting"):  # the second process has done its runs and waits
            line = second.stderr.readline()
        assert line.startswith(f"waiting for {held - STORED_FIRST} runs"), line
        os.kill(worker.pid, signal.SIGKILL)  # dies holding claims on runs it never stored
        worker.wait(timeout=30)
        stdout, err = second.communicate(timeout=300)
    finally:
        _stop(worker)
        _stop(second)
    assert second.returncode == 0, err
    match = re.search(r"(\d+) runs computed, (\d+) already stored, (\d+) in all", stdout)
    assert match and [int(g) for g in match.groups()] == [TOTAL - STORED_FIRST, STORED_FIRST, TOTAL], stdout
    assert count_rows(out / "runs.sqlite") == TOTAL


def test_wait_must_be_a_non_negative_number_of_seconds(tmp_path):
    import pytest

    from sparsenet.experiments.runner import run_experiments

    with pytest.raises(ValueError, match=r"'wait_others' parameter of run_experiments .* Got -1 instead"):
        run_experiments([], None, wait_others=-1)
    proc = subprocess.run(_command(tmp_path / "x.toml", tmp_path / "out", "--wait", "-1"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--wait: must be a number of seconds >= 0 or inf. Got '-1'" in proc.stderr
