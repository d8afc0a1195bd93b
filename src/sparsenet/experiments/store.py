"""Results store: one SQLite file (stdlib ``sqlite3``) under the output folder.

One row per run key (``PRIMARY KEY``, so a run can never be stored twice), holding every metric and the
per-epoch history as JSON. Each finished task is written in ONE transaction (:meth:`Store.put`), so a
process killed at any moment (kill -9) leaves each run either fully stored or absent (SQLite's atomic
commit; WAL journal). Only one process writes: the runner's parent.

The experiment definitions (TOML text and scale) are stored too, so that ``sparsenet report DIR`` can
rebuild every figure from the folder alone (STYLE 3.14: reports only read results).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

__all__ = ["Store", "STORE_NAME", "open_store"]

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
"""


def _dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


class Store:
    """The SQLite results store of one output folder.

    Parameters
    ----------
    path : str or Path
        The database file (created with its folder if missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic, durable at checkpoint
            self._con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._con.close()
            raise ValueError(f"{self.path} is not a sparsenet results store ({exc}); "
                             "move it away or choose another --out folder.") from None

    # -- context manager --------------------------------------------------------------------------
    def close(self):
        self._con.close()

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
        return cur.rowcount

    def put_experiment(self, config):
        """Remember an experiment definition (its TOML text and scale) for ``sparsenet report``."""
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO experiments (name, scale, path, source, stored_at) VALUES (?,?,?,?,?)",
                (config.name, config.scale, str(config.path), config.source, time.time()),
            )

    def delete(self, keys):
        with self._transaction():
            self._con.executemany("DELETE FROM runs WHERE run_key = ?", [(k,) for k in keys])

    def _transaction(self):
        con = self._con

        class _Tx:
            def __enter__(self_):
                con.execute("BEGIN IMMEDIATE")

            def __exit__(self_, exc_type, *rest):
                con.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

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
