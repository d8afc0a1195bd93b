"""Two processes on one --out folder compute each run once (issue 13, item 6), with real processes.

A sweep claims its runs in the store before computing them. Here the other process is a real
process holding claims on half of the runs (as a running sweep does); ``sparsenet run`` must leave
those to it and say so, and take them over once that process is killed.
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


def _run(sweep, out):
    proc = subprocess.run([sys.executable, "-m", "sparsenet.cli", "run", str(sweep), "--out", str(out),
                           "--jobs", "1", "--no-progress"], capture_output=True, text=True, timeout=300)
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
        done, err = _run(sweep, out)
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
