"""Run the runner's tasks on a Dask cluster (``dask.distributed``), surviving lost workers.

:func:`sparsenet.experiments.runner.run_experiments` takes a ``backend(tasks) -> iterable of (task,
records)``; :class:`DaskBackend` is one. It

1. re-chunks the runner's tasks for the cluster (:func:`rechunk`): every task holds runs of one problem
   shape and protocol, trained by one batched call, and problems are never split; too few tasks for
   the workers, or one task with more than a fair share of the work (cost ~ runs x n x d x k x epochs)
   -> the costliest is halved (at a problem boundary), many tiny tasks of one shape -> merged, so that every worker stays busy and each task still amortizes its batched training call;
2. submits each chunk with ``retries``: a chunk whose worker process dies is rescheduled on another
   worker by the scheduler (``distributed.scheduler.allowed-failures``), a chunk that raises is retried
   (``retries``), and a chunk lost for good (``KilledWorker`` after every attempt) is resubmitted by
   the client up to ``resubmit`` times and then reported as failed runs, so the sweep always finishes;
3. yields each chunk's records from :func:`distributed.as_completed` as it completes, so that the
   runner's parent -- the Dask *client* -- alone writes the SQLite store (one transaction per chunk,
   PRIMARY KEY run keys: a retried or duplicated chunk can never be stored twice) and feeds the
   progress bar.

Task keys are derived from the run keys, so a client restarted after a crash that reconnects to the
same scheduler while the old tasks still run simply attaches to them.

``dask[distributed]`` is an optional dependency: ``pip install "sparsenet[dask]"``.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager

from sparsenet.experiments.runner import Task, _cost, _one_blas_thread, _record, execute_task

__all__ = ["DaskBackend", "run_on_dask", "rechunk", "parse_scheduler", "connect", "n_worker_threads",
           "require_dask", "INSTALL_HINT"]

INSTALL_HINT = 'Running on Dask needs dask.distributed: pip install "sparsenet[dask]"'

_LOCAL = re.compile(r"^local(?::(\d+))?$")


def require_dask():
    """Import ``distributed`` or raise ImportError with the install command."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return distributed


def parse_scheduler(text):
    """``"local:N"`` -> ``("local", N)``; an address (``tcp://HOST:8786``, ``HOST:8786``) -> ``("address", text)``.

    Raises
    ------
    ValueError
        For ``local:0`` or an empty address.
    """
    text = str(text).strip()
    match = _LOCAL.match(text)
    if match:
        n = int(match.group(1)) if match.group(1) else None
        if n is not None and n < 1:
            raise ValueError(f"The '--scheduler' option must be 'local:N' with N >= 1 or an address. Got {text!r} instead.")
        return "local", n
    if not text:
        raise ValueError("The '--scheduler' option must be 'local:N' or a scheduler address such as tcp://HOST:8786.")
    return "address", text


@contextmanager
def connect(scheduler, *, timeout=60):
    """A :class:`distributed.Client` for ``--scheduler``, closed (with its LocalCluster) on exit.

    ``local:N`` starts a ``LocalCluster`` of N worker processes with one thread each (default: one per
    core); an address connects to a running scheduler and waits for at least one worker.
    """
    distributed = require_dask()
    kind, value = parse_scheduler(scheduler)
    cluster = None
    if kind == "local":
        import os

        n = value or os.cpu_count() or 1
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(value, timeout=timeout)
    try:
        client.wait_for_workers(1, timeout=timeout)
        if cluster is not None:  # workers of our own cluster die with this process (kill -9 included)
            from sparsenet.experiments.dask_watch import ParentWatch

            client.register_plugin(ParentWatch())
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_worker_threads(client):
    """Worker threads of the cluster right now (at least 1)."""
    return max(1, sum(client.nthreads().values()))


# --------------------------------------------------------------------------------------------------
# Chunking


def _split(task):
    """Two halves of ``task`` cut between problems (runs of one problem stay together), or None."""
    runs = task.runs
    starts = [i for i in range(1, len(runs)) if _problem(runs[i]) != _problem(runs[i - 1])]
    if not starts:
        return None
    cut = min(starts, key=lambda i: abs(2 * i - len(runs)))
    return Task(runs[:cut]), Task(runs[cut:])


def _problem(run):
    from sparsenet.experiments.config import PROBLEM_KEYS

    p = run.params_dict
    return (run.seed,) + tuple(str(p.get(k)) for k in PROBLEM_KEYS)


def _shape(task):
    from sparsenet.experiments.runner import _SHAPE_KEYS

    run = task.runs[0]
    p = run.params_dict
    return (run.protocol,) + tuple(str(p[k]) for k in _SHAPE_KEYS)


def rechunk(tasks, n_workers, *, per_worker=3, min_models=8, max_models=512):
    """Re-cut the runner's tasks so that ``n_workers`` stay busy and each task stays batched.

    Parameters
    ----------
    tasks : list of Task
        From :func:`sparsenet.experiments.runner.make_tasks` (one shape and protocol per task, whole
        problems).
    n_workers : int
        Worker threads of the cluster.
    per_worker : int, default=3
        Aim for at least ``target = per_worker * n_workers`` tasks, none costing more than
        ``1 / target`` of the whole (load balance; a lost chunk costs little).
    min_models : int, default=8
        A task is not split below this many runs; tasks of one shape smaller than this are merged
        while there are more than enough tasks.
    max_models : int, default=512
        Merging never builds a task larger than this.

    Returns
    -------
    tasks : list of Task
        Same runs, each exactly once; costliest first.
    """
    tasks = [t for t in tasks if len(t)]
    target = per_worker * max(1, n_workers)
    share = sum(_cost(t) for t in tasks) / target  # a fair task's cost
    # Too coarse: halve the costliest task while there are too few tasks or it holds more than a fair
    # share of the work (problems are never split, no task drops below min_models runs).
    while tasks:
        tasks.sort(key=lambda t: -_cost(t))
        if len(tasks) >= target and _cost(tasks[0]) <= share:
            break
        halves = _split(tasks[0]) if len(tasks[0]) >= 2 * min_models else None
        if halves is None:
            break
        tasks[0:1] = list(halves)
    # Too fine: merge small tasks of one shape while more than enough tasks remain.
    if len(tasks) > target:
        by_shape = {}
        for task in tasks:
            by_shape.setdefault(_shape(task), []).append(task)
        merged = []
        surplus = len(tasks) - target
        for group in by_shape.values():
            group.sort(key=len)
            current = None
            for task in group:
                if (current is not None and surplus > 0 and len(current) < min_models
                        and len(current) + len(task) <= max_models):
                    current = Task(current.runs + task.runs)
                    surplus -= 1
                    continue
                if current is not None:
                    merged.append(current)
                current = task
            merged.append(current)
        tasks = merged
    tasks.sort(key=lambda t: -_cost(t))
    return tasks


# --------------------------------------------------------------------------------------------------
# Execution


def _execute_on_worker(task):
    """What a worker runs: the pure task executor with one BLAS thread (as the local pool's workers)."""
    with _one_blas_thread():
        return execute_task(task)


def task_key(task, attempt=0):
    """Deterministic Dask key of a chunk: a hash of its run keys (and the client-side attempt)."""
    digest = hashlib.sha256("\n".join(r.key for r in task.runs).encode()).hexdigest()[:24]
    return f"sparsenet-chunk-{digest}" + (f"-{attempt}" if attempt else "")


class DaskBackend:
    """Backend of :func:`~sparsenet.experiments.runner.run_experiments` that runs tasks on Dask.

    Parameters
    ----------
    client : distributed.Client
        Connected client; this process stays the store's only writer.
    retries : int, default=3
        Dask ``retries`` of a chunk that raises.
    resubmit : int, default=2
        Client-side resubmissions of a chunk lost for good (e.g. ``KilledWorker``: its workers died
        more than ``distributed.scheduler.allowed-failures`` times); afterwards its runs are reported
        as failed with the error, and the sweep goes on (rerun with ``--retry-failed``).
    rechunk : bool, default=True
        Re-cut the tasks for the cluster's size (:func:`rechunk`).

    Examples
    --------
    >>> with connect("local:2") as client:                              # doctest: +SKIP
    ...     run_experiments(configs, store, jobs=n_worker_threads(client), backend=DaskBackend(client))
    """

    def __init__(self, client, *, retries=3, resubmit=2, rechunk=True):
        self.client = client
        self.retries = retries
        self.resubmit = resubmit
        self.rechunk = rechunk

    def __call__(self, tasks):
        return self._stream(list(tasks))

    def _submit(self, task, attempt):
        return self.client.submit(_execute_on_worker, task, key=task_key(task, attempt),
                                  retries=self.retries, pure=False)

    def _stream(self, tasks):
        from distributed import as_completed

        if self.rechunk:
            tasks = rechunk(tasks, n_worker_threads(self.client))
        live = {}  # future -> (task, attempt)
        for task in tasks:
            live[self._submit(task, 0)] = (task, 0)
        pending = as_completed(list(live), with_results=False)
        clean = False
        try:
            for future in pending:
                task, attempt = live.pop(future)
                try:
                    records = future.result()
                except Exception as exc:  # noqa: BLE001 - the chunk (not a run) failed: KilledWorker, ...
                    records = exc
                future.release()
                if isinstance(records, BaseException):
                    if attempt < self.resubmit:
                        retry = self._submit(task, attempt + 1)
                        live[retry] = (task, attempt + 1)
                        pending.add(retry)
                        continue
                    error = (f"chunk lost on the Dask cluster after {attempt + 1} submissions: "
                             f"{type(records).__name__}: {records}")
                    records = [_record(run, status="failed", error=error) for run in task.runs]
                yield task, records
            clean = True
        finally:
            if not clean and live:
                # Ctrl-C or the consumer stopped early: stop what is queued or running for us.
                try:
                    self.client.cancel(list(live), force=True)
                except Exception:  # noqa: BLE001 - the cluster may already be gone
                    pass


def run_on_dask(configs, out, scheduler, **kwargs):
    """``sparsenet run|reproduce --scheduler``: the runner on Dask, this process writing ``<out>/runs.sqlite``.

    Parameters
    ----------
    configs : list of ExperimentConfig
    out : path-like
        Output folder of the store.
    scheduler : str
        ``tcp://HOST:PORT`` (a running scheduler) or ``local:N`` (a LocalCluster of N processes).
    **kwargs
        ``force``, ``retry_failed``, ``progress``, ``wait_others`` of :func:`~sparsenet.experiments.runner.run_experiments`.

    Raises
    ------
    SystemExit
        With the install command when dask.distributed is missing, or when the scheduler is unreachable.
    """
    from sparsenet.experiments.runner import run_experiments
    from sparsenet.experiments.store import open_store

    try:
        require_dask()
        parse_scheduler(scheduler)
    except (ImportError, ValueError) as exc:
        raise SystemExit(f"sparsenet: --scheduler {scheduler}: {exc}") from None
    try:
        session = connect(scheduler)
        client = session.__enter__()
    except (OSError, TimeoutError) as exc:
        raise SystemExit(f"sparsenet: cannot reach the Dask scheduler {scheduler!r} "
                         f"(or no worker joined it): {exc}") from None
    try:
        with open_store(out) as store:
            return run_experiments(configs, store, jobs=n_worker_threads(client), backend=DaskBackend(client),
                                   **kwargs)
    finally:
        session.__exit__(None, None, None)
