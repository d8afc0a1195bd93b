"""Storage faults with real files, permissions and resource limits (issue 13, item 3).

Each fault must end in one clear line naming the path and the cause (no traceback), exit != 0 when
something could not be written, and leave the store intact. The sweeps run in subprocesses: the
file-size limit (RLIMIT_FSIZE, i.e. ``ulimit -f``) and the dropped root capabilities apply to them only.
"""

import os
import resource
import shutil
import sqlite3
import subprocess
import sys

import pytest

SWEEP = """
[experiment]
name = "faults"
title = "Faults"
x = "thresh_train"
values = [0.05, 0.1, 0.15, 0.2]
metrics = ["recovery_error"]
protocols = ["blind"]
trials = {trials}

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

# As root, chmod does not stop writes (CAP_DAC_OVERRIDE); setpriv drops that capability for the child.
_DROP_ROOT = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def _prefix_for_permissions(tmp_path):
    """Command prefix under which chmod a-w really blocks writes; skips when none exists."""
    prefix = _DROP_ROOT if os.geteuid() == 0 and shutil.which("setpriv") else []
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    code = f"open({str(probe / 'x')!r}, 'w')"
    blocked = subprocess.run(prefix + [sys.executable, "-c", code], capture_output=True).returncode != 0
    probe.chmod(0o755)
    if not blocked:
        pytest.skip("chmod cannot make a folder read-only here (root without setpriv)")
    return prefix


def _sparsenet(args, *, prefix=(), fsize=None, timeout=180):
    def limit():  # runs in the child before exec
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.run(list(prefix) + [sys.executable, "-m", "sparsenet.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return proc.returncode, proc.stdout, proc.stderr


def _one_clear_line(err, *needles):
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(con.execute("SELECT run_key, metrics FROM runs"))
    finally:
        con.close()


@pytest.fixture(scope="module")
def _built(tmp_path_factory):
    """The sweep file and a folder whose store holds every one of its runs (built once)."""
    base = tmp_path_factory.mktemp("faults")
    path = base / "faults.toml"
    path.write_text(SWEEP.format(trials=1))
    out = base / "stored"
    rc, stdout, err = _sparsenet(["run", path, "--out", out, "--jobs", 1, "--no-progress"])
    assert rc == 0, err
    assert "4 runs computed" in stdout
    return path, out


@pytest.fixture
def sweep(_built):
    return _built[0]


@pytest.fixture
def stored(_built, tmp_path):
    """A fresh copy of the complete store for one test."""
    return shutil.copytree(_built[1], tmp_path / "stored")


def test_out_is_a_regular_file(tmp_path, sweep):
    target = tmp_path / "afile"
    target.write_text("keep me")
    rc, _, err = _sparsenet(["run", sweep, "--out", target, "--jobs", 1, "--no-progress"])
    assert rc != 0
    _one_clear_line(err, str(target), "is a file, not a folder")
    assert target.read_text() == "keep me"


def test_store_path_is_a_folder(tmp_path, sweep):
    (tmp_path / "out" / "runs.sqlite").mkdir(parents=True)
    rc, _, err = _sparsenet(["run", sweep, "--out", tmp_path / "out", "--jobs", 1, "--no-progress"])
    assert rc != 0
    _one_clear_line(err, str(tmp_path / "out" / "runs.sqlite"), "is a folder, not a file")


def test_read_only_folder_with_a_valid_store(tmp_path, sweep, stored):
    prefix = _prefix_for_permissions(tmp_path)
    before = _rows(stored / "runs.sqlite")
    stored.chmod(0o555)
    try:
        # Everything is stored: nothing to write, so the sweep succeeds by reading only.
        rc, stdout, err = _sparsenet(["run", sweep, "--out", stored, "--jobs", 1, "--no-progress"], prefix=prefix)
        assert rc == 0, err
        assert "0 runs computed, 4 already stored" in stdout
        assert "not a sparsenet results store" not in err
        # The report must be written into the folder: a clear refusal, not a traceback.
        rc, _, err = _sparsenet(["report", stored], prefix=prefix)
        assert rc != 0
        _one_clear_line(err, str(stored), "Permission denied")
    finally:
        stored.chmod(0o755)
    assert _rows(stored / "runs.sqlite") == before


@pytest.mark.parametrize("missing", [0, 2])
def test_read_only_store_file(tmp_path, sweep, stored, missing):
    prefix = _prefix_for_permissions(tmp_path)
    db = stored / "runs.sqlite"
    if missing:
        con = sqlite3.connect(db)
        con.execute("DELETE FROM runs WHERE run_key IN (SELECT run_key FROM runs LIMIT ?)", (missing,))
        con.commit()
        con.close()
    before = _rows(db)
    db.chmod(0o444)
    try:
        rc, stdout, err = _sparsenet(["run", sweep, "--out", stored, "--jobs", 1, "--no-progress"], prefix=prefix)
    finally:
        db.chmod(0o644)
    if missing:
        assert rc != 0
        _one_clear_line(err, str(db), "the file is read-only")
    else:
        assert rc == 0, err
        assert "0 runs computed, 4 already stored" in stdout
    assert _rows(db) == before


def test_read_only_empty_folder(tmp_path, sweep):
    prefix = _prefix_for_permissions(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        rc, _, err = _sparsenet(["run", sweep, "--out", out, "--jobs", 1, "--no-progress"], prefix=prefix)
    finally:
        out.chmod(0o755)
    assert rc != 0
    _one_clear_line(err, str(out / "runs.sqlite"), "read-only")


def test_file_size_limit_mid_sweep(tmp_path):
    # ulimit -f with the default process pool: the store stops growing mid-sweep. One clear line naming the store and the limit,
    # exit != 0, every committed run intact, and an unlimited rerun completes without duplicates.
    sweep = tmp_path / "big.toml"
    sweep.write_text(SWEEP.format(trials=12))  # 48 runs
    out = tmp_path / "out"
    rc, _, err = _sparsenet(["run", sweep, "--out", out, "--jobs", 2, "--no-progress"], fsize=64 * 1024)
    assert rc != 0
    _one_clear_line(err, str(out / "runs.sqlite"), "file-size limit (ulimit -f) is 65536 bytes")
    partial = _rows(out / "runs.sqlite")
    assert len(partial) < 48
    rc, stdout, err = _sparsenet(["run", sweep, "--out", out, "--jobs", 2, "--no-progress"])
    assert rc == 0, err
    assert f"{48 - len(partial)} runs computed, {len(partial)} already stored, 48 in all" in stdout
    final = _rows(out / "runs.sqlite")
    assert len(final) == 48 and set(partial) <= set(final)
