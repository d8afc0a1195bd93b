"""Workers die with their parent: kill -9 a real sweep's parent process, its workers must be gone in seconds.

Issue 13 item 1: before, the two pool workers of a killed `sparsenet reproduce` kept computing, then
idled for more than 17 minutes.  Linux only (reads /proc).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep_kill import SWEEP, count_rows

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _stat(pid):
    """(ppid, state) of ``pid`` or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _descendants(root):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    st = _stat(pid)
    return st is not None and st[1] != "Z"  # a zombie has exited (nobody may reap it in a container)


def _kill_parent_and_watch(cmd, db, min_workers, tmp_path):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while count_rows(db) < 1:  # the workers are computing
            assert proc.poll() is None, "the sweep ended before any row was stored"
            assert time.monotonic() < deadline, "no row stored within 120 s"
            time.sleep(0.05)
        workers = [p for p in _descendants(proc.pid) if _alive(p)]
        assert len(workers) >= min_workers, workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in workers if _alive(p)]
    finally:
        for p in _descendants(proc.pid) if proc.poll() is None else []:
            os.kill(p, signal.SIGKILL)
    # clean up anything left so that a failure does not leave CPU burners behind
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"{len(left)} of {len(workers)} worker processes outlived their parent by 10 s"


def _sweep(tmp_path):
    path = tmp_path / "long.toml"
    values = ", ".join(str(300 + 10 * i) for i in range(60))
    path.write_text(SWEEP.format(name="orphans", x="n", trials=3, epochs=200, values=values))
    return path


def test_pool_workers_die_with_a_killed_parent(tmp_path):
    path, out = _sweep(tmp_path), tmp_path / "out"
    cmd = [sys.executable, "-m", "sparsenet.cli", "run", str(path), "--out", str(out), "--jobs", "2", "--no-progress"]
    _kill_parent_and_watch(cmd, out / "runs.sqlite", 2, tmp_path)


def test_dask_local_cluster_workers_die_with_a_killed_client(tmp_path):
    pytest.importorskip("distributed")
    path, out = _sweep(tmp_path), tmp_path / "out"
    cmd = [sys.executable, "-m", "sparsenet.cli", "run", str(path), "--out", str(out), "--scheduler", "local:2",
           "--no-progress"]
    _kill_parent_and_watch(cmd, out / "runs.sqlite", 2, tmp_path)


def test_worker_exit_skips_teardown_but_keeps_its_output():
    """A pool worker ends through runner._exit_now (registered at exit by its initializer): buffered
    output still reaches the pipe, the exit status is 0, and no later teardown step runs."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('teardown ran', file=sys.stderr))  # registered first, so it runs last\n"
        "from sparsenet.experiments import runner\n"
        "atexit.register(runner._exit_now)\n"
        "sys.stdout.write('result line')  # no newline: still in the buffer at exit\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout == "result line"
    assert "teardown ran" not in proc.stderr
