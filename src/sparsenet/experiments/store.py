"""Results store: one SQLite file (stdlib ``sqlite3``) under the output folder.

One row per run key (``PRIMARY KEY``, so a run can never be stored twice), holding every metric and the
per-epoch history as JSON. Each finished task is written in ONE transaction (:meth:`Store.put`), so a
process killed at any moment (kill -9) leaves each run either fully stored or absent (SQLite's atomic
commit; WAL journal). Only one process writes: the runner's parent.

The experiment definitions (TOML text and scale) are stored too, so that ``sparsenet report DIR`` can
rebuild every figure from the folder alone (STYLE 3.14: reports only read results).

Storage faults (a full disk or file-size limit, a read-only file or folder, ``--out`` naming a file,
``runs.sqlite`` being a folder) raise :class:`StoreError`, one line naming the path and the cause; a
store that cannot be written is opened read-only, so that reading it (and a sweep with nothing left to
compute) still works. SQLite's atomic commit keeps every stored run intact through any of them.

Runs are *claimed* before they are computed (:meth:`Store.claim`): a second process on the same
folder skips the runs a live process is computing instead of computing them twice; the claims of a
killed process (dead pid on this host, or no heartbeat for ``stale_after`` seconds) are taken over.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path

__all__ = ["Store", "StoreError", "STORE_NAME", "open_store"]

STORE_NAME = "runs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key   TEXT PRIMARY KEY NOT NULL,
    method    TEXT NOT NULL,
    protocol  TEXT NOT NULL,
    trial     INTEGER NOT NULL,
    seed      INTEGER NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error     TEXT,
    params    TEXT NOT NULL,
    metrics   TEXT NOT NULL,
    history   TEXT NOT NULL,
    wall_time REAL NOT NULL,
    warnings  TEXT NOT NULL DEFAULT '[]',
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    name      TEXT PRIMARY KEY NOT NULL,
    scale     TEXT NOT NULL,
    path      TEXT NOT NULL,
    source    TEXT NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    run_key   TEXT PRIMARY KEY NOT NULL,
    owner     TEXT NOT NULL,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""
_TABLES = ("runs", "experiments")
# A claim whose owner sent no heartbeat for this long is taken over (its process is presumed dead).
STALE_AFTER = 120.0


class StoreError(ValueError):
    """The results store cannot be opened or written; the message names the path and the cause."""


def _unwritable(path):
    """Why ``path`` (the database file) cannot be written, or None when nothing says so."""
    folder = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is read-only"
    return None


def _write_failure_cause(path, exc):
    """The cause of a failed write, with the limit or the free space when they explain it."""
    cause = str(exc)
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            cause += f"; the file-size limit (ulimit -f) is {soft} bytes"
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        pass
    try:
        free = shutil.disk_usage(path.parent).free
        cause += f"; {free / 2**20:.0f} MiB free on its disk"
    except OSError:  # pragma: no cover
        pass
    return cause


def _other_file(stored_path, path):
    """True when ``stored_path`` names an existing file other than ``path`` (an edited or moved file is not)."""
    try:
        old = Path(stored_path)
        return old.is_file() and old.resolve() != Path(path).resolve()
    except (OSError, ValueError):
        return False


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


class Store:
    """The SQLite results store of one output folder.

    Parameters
    ----------
    path : str or Path
        The database file (created with its folder if missing).
    stale_after : float, default=STALE_AFTER (120.0)
        Seconds without a heartbeat after which another process's claims are taken over.

    Attributes
    ----------
    readonly : str or None
        None when the store can be written, else why not (it is then opened for reading only).

    Raises
    ------
    StoreError
        ``--out`` is a file, ``runs.sqlite`` a folder, the folder cannot be created, the file is
        not a sparsenet store, or a store that cannot be written does not exist yet.
    """

    def __init__(self, path, *, stale_after=STALE_AFTER):
        self.path = Path(path)
        self.readonly = None  # None: writable; else the reason why not
        self.stale_after = float(stale_after)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._heartbeat = None
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"Cannot use {folder} as the output folder: it is a file, not a folder. "
                             "Choose another --out folder.")
        if self.path.is_dir():
            raise StoreError(f"Cannot open the results store {self.path}: it is a folder, not a file. "
                             "Move it away or choose another --out folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the output folder {folder}: {exc.strerror or exc}.") from None
        why = _unwritable(self.path)
        if why is None:
            try:
                self._con = self._open_writable()
                return
            except sqlite3.OperationalError as exc:  # a write refused although access() allowed it
                why = str(exc)
        self._con = self._open_readonly(why)
        self.readonly = why

    def _open_writable(self):
        fresh = self._is_empty()
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            if not fresh:  # an existing file must be a store before anything is written to it
                self._check_tables(con)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic, durable at checkpoint
            con.executescript(_SCHEMA)
        except sqlite3.OperationalError:
            con.close()
            raise
        except StoreError:
            con.close()
            raise
        except sqlite3.DatabaseError as exc:
            con.close()
            raise StoreError(f"{self.path} is not a sparsenet results store ({exc}); "
                             "move it away or choose another --out folder.") from None
        return con

    def _open_readonly(self, why):
        """Open a store that cannot be written (read-only file or folder) for reading only."""
        if not self.path.exists():
            raise StoreError(f"Cannot create the results store {self.path}: {why}. "
                             "Choose a writable --out folder.")
        uri = self.path.resolve().as_uri()
        last = None
        # mode=ro reads through an existing WAL; immutable=1 also works where the -shm file cannot be made.
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                con = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=60.0, isolation_level=None)
            except sqlite3.OperationalError as exc:
                last = exc
                continue
            try:
                self._check_tables(con)
                return con
            except StoreError:
                con.close()
                raise
            except sqlite3.OperationalError as exc:
                con.close()
                last = exc
            except sqlite3.DatabaseError as exc:
                con.close()
                raise StoreError(f"{self.path} is not a sparsenet results store ({exc}); "
                                 "move it away or choose another --out folder.") from None
        raise StoreError(f"Cannot read the results store {self.path}: {why} ({last}).")

    def _is_empty(self):
        try:
            return self.path.stat().st_size == 0
        except OSError:
            return True

    @staticmethod
    def _tables(con):
        return {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _check_tables(self, con):
        missing = [t for t in _TABLES if t not in self._tables(con)]
        if missing:
            raise StoreError(f"{self.path} is not a sparsenet results store (no {', '.join(missing)} table); "
                             "move it away or choose another --out folder.")

    # -- context manager --------------------------------------------------------------------------
    def close(self):
        """Release this process's claims and close (a failing final checkpoint leaves the WAL intact)."""
        claimed = self._heartbeat is not None  # claims were made (nothing to release otherwise)
        self._stop_heartbeat()
        try:
            if claimed:
                self._con.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
        except sqlite3.Error:
            pass
        try:
            self._con.close()
        except sqlite3.Error:  # pragma: no cover - e.g. the checkpoint hits a full disk
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writes -----------------------------------------------------------------------------------
    def put(self, records, *, replace=False):
        """Store the records of one finished task in one transaction.

        Parameters
        ----------
        records : list of dict
            Each with ``run_key, method, protocol, trial, seed, status, error, params, metrics,
            history, wall_time`` (as returned by :func:`sparsenet.experiments.runner.execute_task`).
        replace : bool, default=False
            Overwrite rows with the same key (``--force``); otherwise an existing row is kept.

        Returns
        -------
        n_written : int
        """
        cols = ("method", "protocol", "trial", "seed", "status", "error", "params", "metrics", "history",
                "wall_time", "warnings", "stored_at")
        # ON CONFLICT (not INSERT OR IGNORE, which would also swallow CHECK/NOT NULL violations).
        conflict = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols)) if replace else "DO NOTHING"
        now = time.time()
        rows = [
            (
                r["run_key"], r["method"], r["protocol"], int(r["trial"]), int(r["seed"]), r["status"],
                r.get("error"), _dumps(r["params"]), _dumps(r.get("metrics") or {}),
                _dumps(r.get("history") or {}), float(r.get("wall_time", 0.0)), _dumps(r.get("warnings") or []), now,
            )
            for r in records
        ]
        with self._transaction():
            cur = self._con.executemany(
                f"INSERT INTO runs (run_key, {', '.join(cols)}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                f"ON CONFLICT(run_key) {conflict}",
                rows,
            )
            n_written = cur.rowcount
            self._con.executemany("DELETE FROM claims WHERE run_key = ?", [(r[0],) for r in rows])
        return n_written

    def put_experiment(self, config):
        """Remember an experiment definition (its TOML text and scale) for ``sparsenet report``.

        Nothing is written when the same definition is stored already (so a read-only store whose
        runs are all stored can still be swept: there is nothing to write).
        """
        row = self._con.execute("SELECT scale, path, source FROM experiments WHERE name = ?",
                                (config.name,)).fetchone()
        if row == (config.scale, str(config.path), config.source):
            return
        if row is not None and row[2] != config.source and _other_file(row[1], config.path):
            # Two files, one name: the report keeps one definition per name and would drop the other.
            raise StoreError(
                f"Two experiment definitions are named {config.name!r}: {config.path} and {row[1]} (stored in "
                f"{self.path}); the report keeps one definition per name. Rename the [experiment] name in "
                "one of them, or use another --out folder.")
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO experiments (name, scale, path, source, stored_at) VALUES (?,?,?,?,?)",
                (config.name, config.scale, str(config.path), config.source, time.time()),
            )

    def delete(self, keys):
        with self._transaction():
            self._con.executemany("DELETE FROM runs WHERE run_key = ?", [(k,) for k in keys])

    def _transaction(self):
        store = self

        class _Tx:
            def __enter__(self_):
                if store.readonly is not None:
                    raise StoreError(f"Cannot write to the results store {store.path}: {store.readonly}. "
                                     "The runs stored there are intact and can be read (sparsenet report); "
                                     "make it writable or choose another --out folder.")
                store._execute("BEGIN IMMEDIATE")

            def __exit__(self_, exc_type, exc, tb):
                if exc_type is None:
                    store._execute("COMMIT")
                    return False
                if store._con.in_transaction:
                    try:
                        store._con.execute("ROLLBACK")
                    except sqlite3.Error:  # SQLite may have rolled back already (full disk)
                        pass
                if issubclass(exc_type, sqlite3.OperationalError):
                    raise store._write_error(exc) from None
                return False

        return _Tx()

    def _execute(self, sql, *args):
        try:
            return self._con.execute(sql, *args)
        except sqlite3.OperationalError as exc:
            if self._con.in_transaction:
                try:
                    self._con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise self._write_error(exc) from None

    def _write_error(self, exc):
        return StoreError(f"Cannot write to the results store {self.path}: {_write_failure_cause(self.path, exc)}. "
                          "Every run stored before is intact; fix this and rerun the same command to resume.")

    # -- claims -----------------------------------------------------------------------------------
    def claim(self, keys, *, unless_stored=("ok", "failed")):
        """Claim runs before computing them, so that no other process computes them too.

        In one transaction: drop the claims that went stale (their owner's pid is dead on this host,
        or it sent no heartbeat for ``stale_after`` seconds), then claim every key of ``keys`` that
        is neither stored nor claimed by a live owner. A background thread keeps this process's
        claims fresh until :meth:`release` or :meth:`close`.

        Parameters
        ----------
        keys : iterable of str
            Run keys this process is about to compute.
        unless_stored : tuple of str, default=("ok", "failed")
            A key stored with one of these statuses is not claimed (another process finished it);
            ``()`` for ``--force``, ``("ok",)`` for ``--retry-failed``.

        Returns
        -------
        claimed : set of str
            The keys this process now holds (including those it held already); compute only these.

        Raises
        ------
        StoreError
            The store cannot be written (read-only, full disk): nothing could be stored either.
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return set()
        with self._transaction():  # a read-only store raises here, before anything is computed
            self._drop_stale()
            now = time.time()
            host, pid = socket.gethostname(), os.getpid()
            statuses = tuple(unless_stored)
            done = (f"NOT EXISTS (SELECT 1 FROM runs WHERE run_key = ? AND status IN ({','.join('?' * len(statuses))}))"
                    if statuses else "? IS NOT NULL")
            self._con.executemany(
                f"INSERT INTO claims (run_key, owner, host, pid, heartbeat) SELECT ?, ?, ?, ?, ? WHERE {done} "
                "ON CONFLICT(run_key) DO NOTHING",
                [(k, self.owner, host, pid, now, k, *statuses) for k in keys],
            )
            mine = self._claimed_keys("owner = ?", (self.owner,))
        self._start_heartbeat()
        return mine & set(keys)

    def claims(self):
        """Live claims of other processes: list of dicts ``run_key, host, pid, heartbeat``."""
        rows = self._con.execute("SELECT run_key, host, pid, heartbeat, owner FROM claims WHERE owner != ?",
                                 (self.owner,))
        return [dict(zip(("run_key", "host", "pid", "heartbeat"), row[:4])) for row in rows
                if not self._is_stale(row[1], row[2], row[3])]

    def release(self, keys=None):
        """Give up this process's claims (all of them, or those of ``keys``)."""
        if self.readonly is not None:
            return
        with self._transaction():
            if keys is None:
                self._con.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            else:
                self._con.executemany("DELETE FROM claims WHERE owner = ? AND run_key = ?",
                                      [(self.owner, k) for k in keys])
        if keys is None:
            self._stop_heartbeat()

    def heartbeat(self):
        """Mark this process's claims as alive now (the background thread calls this)."""
        with self._transaction():
            self._con.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))

    def _claimed_keys(self, where, args):
        return {row[0] for row in self._con.execute(f"SELECT run_key FROM claims WHERE {where}", args)}

    def _is_stale(self, host, pid, heartbeat):
        if time.time() - heartbeat > self.stale_after:
            return True
        return host == socket.gethostname() and not _pid_alive(pid)

    def _drop_stale(self):
        stale = [(owner,) for owner, host, pid, beat in self._con.execute(
            "SELECT owner, host, pid, MAX(heartbeat) FROM claims GROUP BY owner")
            if owner != self.owner and self._is_stale(host, pid, beat)]
        self._con.executemany("DELETE FROM claims WHERE owner = ?", stale)

    def _start_heartbeat(self):
        if self._heartbeat is not None:
            return
        stop = threading.Event()
        period = max(self.stale_after / 4.0, 0.05)
        path, owner = self.path, self.owner

        def beat():
            try:
                con = sqlite3.connect(path, timeout=10.0, isolation_level=None)
            except sqlite3.Error:  # pragma: no cover
                return
            try:
                while not stop.wait(period):
                    try:
                        con.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), owner))
                    except sqlite3.Error:  # busy or full disk: the next beat retries
                        pass
            finally:
                con.close()

        thread = threading.Thread(target=beat, name="sparsenet-store-heartbeat", daemon=True)
        thread.start()
        self._heartbeat = (stop, thread)

    def _stop_heartbeat(self):
        if self._heartbeat is not None:
            stop, thread = self._heartbeat
            stop.set()
            thread.join(timeout=5.0)
            self._heartbeat = None

    # -- reads ------------------------------------------------------------------------------------
    def keys(self, status=None):
        """Set of stored run keys (optionally only those with ``status``)."""
        if status is None:
            rows = self._con.execute("SELECT run_key FROM runs")
        else:
            rows = self._con.execute("SELECT run_key FROM runs WHERE status = ?", (status,))
        return {row[0] for row in rows}

    def __len__(self):
        return self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def get(self, keys):
        """Rows by run key, as dicts with decoded JSON; missing keys are absent from the result."""
        out = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._con.execute(
                "SELECT run_key, method, protocol, trial, seed, status, error, params, metrics, history, "
                f"wall_time, warnings FROM runs WHERE run_key IN ({marks})",
                chunk,
            ):
                out[row[0]] = {
                    "run_key": row[0], "method": row[1], "protocol": row[2], "trial": row[3], "seed": row[4],
                    "status": row[5], "error": row[6], "params": json.loads(row[7]),
                    "metrics": json.loads(row[8]), "history": json.loads(row[9]), "wall_time": row[10],
                    "warnings": json.loads(row[11]),
                }
        return out

    def records(self, config_or_runs, *, include_missing=False):
        """Records of an experiment, one dict per run, in the format of ``docs/EXPERIMENT_SCHEMA.md``.

        Parameters
        ----------
        config_or_runs : ExperimentConfig or list of Run
            The experiment (expanded to its runs) whose records to return.
        include_missing : bool, default=False
            Also return runs not stored yet, with ``status="missing"``.

        Returns
        -------
        records : list of dict
            ``run_key, experiment, protocol, method`` (the label), ``method_name`` (registry name),
            ``x, trial, seed, status, error, metrics, history, wall_time, params``.
        """
        from sparsenet.experiments.config import ExperimentConfig, expand

        runs = expand(config_or_runs) if isinstance(config_or_runs, ExperimentConfig) else list(config_or_runs)
        rows = self.get({r.key for r in runs})
        out = []
        for run in runs:
            row = rows.get(run.key)
            if row is None and not include_missing:
                continue
            row = row or {"status": "missing", "error": None, "metrics": {}, "history": {}, "wall_time": 0.0,
                          "warnings": []}
            out.append(
                {
                    "run_key": run.key,
                    "experiment": run.experiment,
                    "protocol": run.protocol,
                    "method": run.label,
                    "method_name": run.method,
                    "x": run.x,
                    "trial": run.trial,
                    "seed": run.seed,
                    "status": row["status"],
                    "error": row["error"],
                    "metrics": row["metrics"],
                    "history": row["history"],
                    "wall_time": row["wall_time"],
                    "warnings": row["warnings"],
                    "params": run.params_dict,
                }
            )
        return out

    def experiments(self):
        """Stored experiment definitions: list of dicts ``name, scale, path, source``, by name."""
        rows = self._con.execute("SELECT name, scale, path, source FROM experiments ORDER BY name")
        return [dict(zip(("name", "scale", "path", "source"), row)) for row in rows]

    def failures(self):
        """(run_key, method, error) of every failed run."""
        return list(self._con.execute("SELECT run_key, method, error FROM runs WHERE status = 'failed'"))


def open_store(out_dir):
    """The store of an output folder: ``<out_dir>/runs.sqlite``."""
    return Store(Path(out_dir) / STORE_NAME)
