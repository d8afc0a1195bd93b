"""Run the runs of one or more experiments that are not stored yet, in parallel, resumably.

Runs that share a planted problem *shape* (n, d, k, activation, n_test, epochs, batch size) form one
group, whatever their protocol (the protocols of one trial share its data). A group is cut into :class:`Task` chunks of whole trials (a problem is never split
between tasks), and one task

1. generates each trial's planted problem once,
2. runs each initialization once per (problem, protocol),
3. trains every model with ONE call of :func:`sparsenet.train.train_iht_batched` (the problems stacked
   as ``X`` of shape (P, n, d), ``data_index`` mapping models to problems) per protocol, distinct
   ``ModelSpec.batch_key`` and ``loss_history`` (per-epoch losses only for runs whose experiment reads
   them); all models of one problem (every method and x value of one trial) share
   one minibatch order drawn from the trial's problem seed (``order_groups``: common random numbers,
   and one gather and one pair of products per problem and step),
4. returns one record per run.

:func:`execute_task` is a pure function of its picklable argument: it can run in this process, in a
process pool (:func:`local_pool`) or on another machine. Only the parent writes the store, one
transaction per finished task, so a kill -9 at any moment loses at most the tasks in flight.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import time
import traceback
import warnings
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from sparsenet.experiments.config import PROBLEM_KEYS, expand

__all__ = [
    "Task",
    "SweepResult",
    "make_tasks",
    "plan_tasks",
    "task_cost",
    "watch_parent",
    "warm_up",
    "execute_task",
    "local_pool",
    "serial",
    "run_experiments",
]

_SHAPE_KEYS = ("n", "d", "k", "activation", "n_test", "epochs", "batch_size")


@dataclass(frozen=True)
class Task:
    """A chunk of runs sharing one problem shape, executed together."""

    runs: tuple

    def __len__(self):
        return len(self.runs)


@dataclass
class SweepResult:
    """What :func:`run_experiments` did."""

    total: int  # runs requested (deduplicated by key)
    skipped: int  # already stored
    done: int  # stored by this call
    failed: list  # (run_key, label, error) of runs that failed in this call
    interrupted: bool = False
    wall_time: float = 0.0
    tasks: int = 0  # tasks (store transactions) computed
    busy: list = field(default_factory=list)  # (host, pid, n_runs): runs left to other live processes
    experiment_time: dict = field(default_factory=dict)  # experiment -> CPU seconds of its runs computed here


def make_tasks(runs, *, max_models=256, max_cost=None):
    """Group runs by problem shape, then cut each group into chunks of whole trials (the runs of a
    trial under every protocol: one planted problem generated once per task).

    Parameters
    ----------
    runs : list of Run
        Runs with distinct keys.
    max_models : int or None, default=256
        Upper bound on the models of one task (one problem's runs are never split). ``None``: no limit;
        ``1``: every run alone, each problem regenerated (used to test that grouping changes nothing).
    max_cost : float or None, default=None
        Upper bound on a task's estimated cost (:func:`task_cost`; one problem is never split):
        bounds the work of one task, so that each transaction of the store holds a few seconds of
        work at most and the pool has enough tasks to finish evenly.  None: no bound.

    Returns
    -------
    tasks : list of Task
        Costliest first (longest processing time first: no straggler at the end of a pool).
    """
    groups = defaultdict(lambda: defaultdict(list))
    for run in runs:
        p = run.params_dict
        shape = tuple(str(p[k]) for k in _SHAPE_KEYS)
        groups[shape][_problem_id(run)].append(run)
    tasks = []
    for problems in groups.values():
        chunk, chunk_cost = [], 0.0
        for problem_runs in problems.values():
            if max_models == 1:
                tasks.extend(Task((r,)) for r in problem_runs)
                continue
            cost = sum(_run_cost(r) for r in problem_runs) + _problem_cost(problem_runs[0])
            too_many = max_models is not None and len(chunk) + len(problem_runs) > max_models
            too_costly = max_cost is not None and chunk_cost + cost > max_cost
            if chunk and (too_many or too_costly):
                tasks.append(Task(tuple(chunk)))
                chunk, chunk_cost = [], 0.0
            chunk.extend(problem_runs)
            chunk_cost += cost
        if chunk:
            tasks.append(Task(tuple(chunk)))
    tasks.sort(key=lambda t: -_cost(t))
    return tasks


# Relative CPU time of a run (per n·d·k·epochs) and of a problem (per n·d: data, initializations,
# metrics), fitted by non-negative least squares to the CPU time of every task of the paper
# reproduction run alone, one method kind per task (compiled epochs, one core; 2026-11-30, R² = 0.75,
# total 37 s): a batched IHT run of n = 6000, d = 20, k = 5, 25 epochs ~8 ms, its problem ~45 ms; a
# staged baseline about the same per epoch (it trains its stages in lockstep), l1_prox (24 candidate
# penalties), recover (full-batch solvers; its starts -- tensor init and sign search -- are shared by
# a problem's solvers; no epochs, so its weight is per n·d·k).
_METHOD_WEIGHT = {"iht": 1.0, "l1_prox": 15.0, "recover": 120.0}
_UNBATCHED_WEIGHT = 1.0
_PROBLEM_WEIGHT = 680.0
COST_PER_SECOND = 1.8e9  # task_cost units per second of one core, for sizing tasks


def _run_cost(run):
    p = run.params_dict
    epochs = max(p["epochs"], p.get("method_epochs", 0), 1)
    weight = _METHOD_WEIGHT.get(run.method, _UNBATCHED_WEIGHT if "method_epochs" in p else 1.0)
    return weight * p["n"] * p["d"] * p["k"] * epochs


def _problem_id(run):
    return (run.seed,) + tuple(str(run.params_dict.get(k)) for k in PROBLEM_KEYS)


def _problem_cost(run):
    """Cost of generating, initializing and evaluating the problem of ``run`` (paid once per task)."""
    return _PROBLEM_WEIGHT * run.params_dict["n"] * run.params_dict["d"]


def task_cost(task):
    """Estimated CPU cost of a task, in :data:`COST_PER_SECOND` units.

    Parameters
    ----------
    task : Task
        The runs of one task.

    Returns
    -------
    float
        Sum over the runs of method weight × n × d × k × epochs, plus a weight × n × d per distinct
        problem; used to order tasks (longest first) and to cut them small enough that one store
        transaction holds little work.
    """
    problems = {_problem_id(run): _problem_cost(run) for run in task.runs}
    return sum(_run_cost(run) for run in task.runs) + sum(problems.values())


_cost = task_cost


# --------------------------------------------------------------------------------------------------
# Executing one task (pure: Task -> records)


def _record(run, *, status="ok", error=None, metrics=None, history=None, wall_time=0.0):
    return {
        "run_key": run.key,
        "method": run.method,
        "protocol": run.protocol,
        "trial": run.trial,
        "seed": run.seed,
        "status": status,
        "error": error,
        "params": run.params_dict,
        "metrics": metrics or {},
        "history": history or {},
        "wall_time": float(wall_time),
        "warnings": [],
    }


def _error_text(exc):
    return f"{type(exc).__name__}: {exc}"


def _make_problem(params, seed):
    from sparsenet.data import make_planted

    return make_planted(
        params["n"], params["d"], params["k"],
        activation=params["activation"], kappa=params["kappa"],
        thresh_gt=params.get("thresh_gt"), p_gt=params.get("p_gt"),
        noise_sd=params["noise_sd"], n_test=params["n_test"], random_state=np.random.default_rng([seed, 0]),
    )


def execute_task(task):
    """Run every run of ``task`` and return one record (dict) per run; never raises for a run's failure.

    A run whose problem, initialization, build or training raises, or whose training diverges, gets a
    record with ``status="failed"`` and the error message; the other runs are unaffected.
    """
    from sparsenet.experiments.methods import METHODS, ProblemContext

    start = time.perf_counter()
    records = {}
    problems = {}  # problem id -> (index in the stacked arrays, ProblemContext)
    contexts = {}
    specs = []  # (run, spec, problem index, context)
    for run in task.runs:
        params = run.params_dict
        pid = (run.seed,) + tuple(str(params.get(k)) for k in PROBLEM_KEYS)
        try:
            if pid not in problems:
                problems[pid] = _make_problem(params, run.seed)
            if (pid, run.protocol) not in contexts:
                contexts[(pid, run.protocol)] = ProblemContext(problems[pid], run.protocol, run.seed)
            ctx = contexts[(pid, run.protocol)]
            spec = METHODS[run.method].build(params, ctx)
        except Exception as exc:  # noqa: BLE001 - recorded as this run's failure
            records[run.key] = _record(run, status="failed", error=_error_text(exc))
            continue
        specs.append((run, spec, pid, ctx))
    setup_time = time.perf_counter() - start

    calls = defaultdict(list)
    for item in specs:  # one call per protocol, batch key and loss_history (the models of a call share them)
        history = bool(item[0].params_dict.get("loss_history"))
        calls[(item[0].protocol, item[1].batch_key, history)].append(item)
    for (protocol, *_), items in calls.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results = _train_batch(items, protocol)
        except Exception as exc:  # noqa: BLE001 - the whole call failed: every run in it fails
            for run, *_ in items:
                records[run.key] = _record(run, status="failed", error=_error_text(exc))
            continue
        share = (time.perf_counter() - t0) / len(items) + setup_time / len(task.runs)
        train_warnings = [f"training: {w.category.__name__}: {w.message}" for w in caught]
        for (run, spec, pid, ctx), result in zip(items, results):
            records[run.key] = _finish(run, spec, ctx, result, share)
            records[run.key]["warnings"] = list(dict.fromkeys(ctx.warnings + train_warnings))
    return [records[run.key] for run in task.runs]


def _train_batch(items, protocol):
    """One ``train_iht_batched`` call for ``items``; returns per model (W, v, history, diverged)."""
    from sparsenet.train import train_iht_batched

    pids = list(dict.fromkeys(pid for _, _, pid, _ in items))
    index = {pid: i for i, pid in enumerate(pids)}
    ctx_of = {pid: ctx for _, _, pid, ctx in items}
    probs = [ctx_of[pid].problem for pid in pids]
    params = items[0][0].params_dict
    specs = [spec for _, spec, _, _ in items]
    masks = None
    if any(s.mask is not None for s in specs):
        masks = np.stack([np.ones_like(s.W0, dtype=bool) if s.mask is None else s.mask for s in specs])
    batch_size = None if params["batch_size"] == "full" else params["batch_size"]
    data_index = np.array([index[pid] for _, _, pid, _ in items])
    res = train_iht_batched(
        np.stack([p.X for p in probs]),
        np.stack([p.y for p in probs]),
        np.stack([s.W0 for s in specs]),
        np.stack([s.v0 for s in specs]),
        sparsifiers=[s.sparsifier for s in specs],
        epochs=params["epochs"],
        batch_size=batch_size,
        learning_rate=np.array([s.learning_rate for s in specs], dtype=float),
        pretrain_epochs=np.array([s.pretrain_epochs for s in specs], dtype=int),
        train_v=np.array([s.train_v for s in specs], dtype=bool),
        activation=params["activation"],
        data_index=data_index,
        X_test=np.stack([p.X_test for p in probs]),
        y_test=np.stack([p.y_test for p in probs]),
        sparsify_last=(protocol != "report"),
        mask=masks,
        # Common random numbers: every variant (method, x value) of one trial sees the same minibatch
        # order, drawn from the trial's problem seed ([seed, 100], the same for all models of a
        # problem); one order group per problem lets each step gather a problem's minibatch once for
        # all its models.  Results do not depend on how runs are chunked into tasks.
        random_states=[np.random.default_rng([run.seed, 100]) for run, *_ in items],
        order_groups=data_index,
        on_divergence="flag",
        # per-epoch losses only for experiments that read them (config: loss_history; final ones always)
        loss_history=bool(params.get("loss_history", False)),
        **specs[0].call_kwargs,
    )
    diverged = getattr(res, "diverged", np.zeros(len(items), dtype=bool))
    out = []
    for b in range(len(items)):
        history = {name: np.asarray(values)[b] for name, values in res.history.items()}
        out.append((np.asarray(res.W)[b], np.asarray(res.v)[b], history, bool(diverged[b])))
    return out


def _finish(run, spec, ctx, result, wall_time):
    from sparsenet.experiments.methods import evaluate_run

    W, v, history, diverged = result
    if diverged:
        return _record(
            run, status="failed", wall_time=wall_time,
            error="training diverged (non-finite loss); try a smaller learning_rate",
            history=_history_json(history),
        )
    try:
        extra = {}
        if spec.finish is not None:
            W, v, history, extra = spec.finish(W, v, history)
        metrics = evaluate_run(W, v, spec.W0, spec.v0, ctx.problem, run.protocol)
        metrics.update(extra or {})
    except Exception as exc:  # noqa: BLE001
        return _record(run, status="failed", error=_error_text(exc) + "\n" + traceback.format_exc(limit=3))
    return _record(run, metrics=metrics, history=_history_json(history), wall_time=wall_time)


def _history_json(history):
    return {name: [float(x) for x in np.asarray(values, dtype=float).ravel()] for name, values in history.items()}


# --------------------------------------------------------------------------------------------------
# Backends: iterables of (task, records) in completion order


def watch_parent(parent_pid, *, interval=0.2):
    """Exit this process as soon as its parent ``parent_pid`` is gone (a daemon thread polls ``getppid``).

    A pool worker whose parent was killed (kill -9: no clean shutdown reaches it) would otherwise go on
    computing tasks nobody will store, then idle forever.  When the parent dies the worker is
    re-parented (to init or a subreaper), so ``os.getppid()`` changes; the thread then ends the process
    with ``os._exit`` (no cleanup: the results have no reader).  The compiled epochs release the GIL,
    so the thread runs within ``interval`` even mid-task.
    """
    import threading

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(70)

    threading.Thread(target=watch, name="sparsenet-parent-watch", daemon=True).start()


def _exit_now():
    """End a pool worker without the interpreter's teardown: once the pool stops it, a worker has sent
    every result and holds nothing to clean up, and the teardown of the modules it loaded (numba,
    scipy) cost ~0.5 s of CPU per worker while the parent waited for it (measured, 2-core machine)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker_init(parent_pid=None):
    import atexit

    # Ctrl-C is handled by the parent alone; one BLAS thread per process (the pool uses the cores).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        watch_parent(parent_pid)
    atexit.register(_exit_now)  # registered last, so it runs first
    _one_blas_thread()
    # The imports and the kernels' loading leave ~120,000 tracked objects that live as long as the
    # worker: collections during them free next to nothing (they cost ~0.25 s of the ~1.3 s of CPU of a
    # warm-up, 5 runs each way), and frozen the objects are no longer traversed by the tasks' collections.
    gc.disable()
    try:
        warm_up()
    finally:
        gc.freeze()
        gc.enable()


def warm_up():
    """Import what a task needs and load the compiled epochs (compiling them once per machine), so
    that a worker pays this while the pool starts rather than inside its first task."""
    from sparsenet.experiments import methods  # noqa: F401 - the method registry and the core
    # what every task imports on first use (the worker's imports happen here, without collections)
    import scipy.optimize  # noqa: F401 - metrics.align's assignment solver

    from sparsenet import baselines, metrics, recovery, tensor_init, train  # noqa: F401

    try:
        from sparsenet import _sgd_kernels, _tensor_kernels
    except ImportError:  # pragma: no cover - numba missing: the numpy path
        return
    _sgd_kernels.warm_up()
    _tensor_kernels.warm_up()  # tensor_init's ALS and PowerMethod loops


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        import contextlib

        return contextlib.nullcontext()


def serial(tasks):
    """Execute tasks one after the other in this process (one BLAS thread, as in the pool's workers,
    so that results do not depend on ``jobs``)."""
    for task in tasks:
        with _one_blas_thread():
            records = execute_task(task)
        yield task, records


def local_pool(tasks, jobs):
    """Execute tasks in a pool of ``jobs`` worker processes; yields as each completes.

    On Ctrl-C (or when the consumer stops early) pending tasks are cancelled and the workers stopped.
    """
    import multiprocessing as mp

    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                   initargs=(os.getpid(),))
    clean = False
    try:
        futures = {executor.submit(execute_task, task): task for task in tasks}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield futures[future], future.result()
        clean = True
    finally:
        if not clean:
            for proc in list(getattr(executor, "_processes", {}).values()):
                proc.terminate()  # our own workers: stop the tasks in flight now
        executor.shutdown(wait=True, cancel_futures=True)


MAX_TASK_SECONDS = 1.5  # estimated seconds of one core in one task (one store transaction)
TASKS_PER_WORKER = 4


def plan_tasks(runs, jobs, *, max_models=None, max_cost=None):
    """The tasks of ``runs`` for ``jobs`` workers: :func:`make_tasks` with sizes chosen for the pool.

    Defaults: at most 512 models and an estimated :data:`MAX_TASK_SECONDS` of one core per task (each
    store transaction then holds a few seconds of work at most, so a kill loses little and progress
    shows), and at least :data:`TASKS_PER_WORKER` tasks per worker; costliest first, so that the
    small tasks fill the workers in at the end (no straggler).  A problem's runs are never split.
    """
    if max_models is None:
        max_models = 512
    if max_cost is None and runs:
        total = sum(_run_cost(r) for r in runs) + sum({_problem_id(r): _problem_cost(r) for r in runs}.values())
        max_cost = min(MAX_TASK_SECONDS * COST_PER_SECOND, total / (TASKS_PER_WORKER * max(1, jobs)))
    return make_tasks(runs, max_models=max_models, max_cost=max_cost)


def run_experiments(configs, store, *, jobs=None, force=False, retry_failed=False, progress=True,
                    max_models=None, max_cost=None, backend=None, wait_others=math.inf, poll=2.0):
    """Run every run of ``configs`` that is not in ``store``; store each task's records as it finishes.

    Runs claimed by another live process on the same store (:meth:`Store.claim`) are not computed
    twice: after its own runs, this call waits (up to ``wait_others`` seconds) until the other
    process has stored them, and takes over those whose claimant dies or stops sending heartbeats,
    so that when it returns every run is stored (unless the wait ran out or it was interrupted).

    Parameters
    ----------
    configs : list of ExperimentConfig
    store : Store
    jobs : int or None, default=None
        Worker processes; None uses every local core, 1 runs in this process.
    force : bool, default=False
        Recompute and overwrite runs already stored.
    retry_failed : bool, default=False
        Recompute runs stored with status "failed".
    progress : bool, default=True
        Show a tqdm progress bar (runs done / total, elapsed, time remaining).
    max_models : int or None, default=None
        Models per task (see :func:`make_tasks`); None: at most 512.
    max_cost : float or None, default=None
        Estimated cost of one task (see :func:`make_tasks`); None: at most :data:`MAX_TASK_SECONDS`
        of one core, and small enough for ``TASKS_PER_WORKER`` tasks per worker, so that every
        transaction of the store holds a few seconds of work at most and the pool ends evenly.
    backend : callable or None, default=None
        ``backend(tasks) -> iterable of (task, records)``; None: :func:`local_pool` (or :func:`serial`).
    wait_others : float, default=inf
        Seconds to wait, after this call's own runs, for runs that other live processes are
        computing; 0 leaves them to those processes at once (listed in ``SweepResult.busy``).
        A message on stderr says what is waited for.
    poll : float, default=2.0
        Seconds between two looks at the store while waiting.

    Returns
    -------
    result : SweepResult
        ``interrupted=True`` when stopped by Ctrl-C; everything finished before is stored.
        ``busy`` lists the runs still computed by other processes when the wait ran out.
    """
    if not wait_others >= 0:
        raise ValueError(f"The 'wait_others' parameter of run_experiments must be a float in the range "
                         f"[0, inf]. Got {wait_others!r} instead.")
    start = time.perf_counter()
    runs = {}
    for config in configs:
        store.put_experiment(config)
        for run in expand(config):
            runs.setdefault(run.key, run)
    unless = () if force else ("ok",) if retry_failed else ("ok", "failed")
    if force:
        todo = list(runs.values())
    else:
        stored = store.keys() if not retry_failed else store.keys(status="ok")
        todo = [r for k, r in runs.items() if k not in stored]
    jobs = jobs or os.cpu_count() or 1
    result = SweepResult(total=len(runs), skipped=len(runs) - len(todo), done=0, failed=[])
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="run", desc="runs", dynamic_ncols=True)
    pending, waiting_since, said = todo, None, None
    try:
        while pending:
            # Claim the runs before computing them: runs that another live process on this store is
            # computing are left to it (not computed twice); the claims of a killed process are taken
            # over (store.claim drops them).
            claimed = store.claim([r.key for r in pending], unless_stored=unless)
            mine = [r for r in pending if r.key in claimed]
            if mine:
                _compute(mine, store, jobs, result, bar, replace=force or retry_failed, backend=backend,
                         max_models=max_models, max_cost=max_cost)
                if result.interrupted:
                    break
            rest = [r for r in pending if r.key not in claimed]
            if not rest:
                break
            others = {c["run_key"]: (c["host"], c["pid"]) for c in store.claims()}
            finished = store.keys() if not unless else set().union(*(store.keys(status=s) for s in unless))
            gone = [r for r in rest if r.key not in others and r.key in finished]  # stored by the other
            result.skipped += len(gone)
            if bar is not None and gone:
                bar.update(len(gone))
            pending = [r for r in rest if not (r.key not in others and r.key in finished)]
            busy = defaultdict(int)
            for r in pending:
                if r.key in others:
                    busy[others[r.key]] += 1
            if len(busy) == 0 or sum(busy.values()) < len(pending):
                continue  # claims dropped (claimant dead or stale): take them over now
            waiting_since = time.monotonic() if waiting_since is None else waiting_since
            if time.monotonic() - waiting_since >= wait_others:
                result.busy = [(host, pid, n) for (host, pid), n in sorted(busy.items())]
                break
            if said != (len(pending), sorted(busy)):
                said = (len(pending), sorted(busy))
                owners = ", ".join(f"{n} by pid {pid} on {host}" for (host, pid), n in sorted(busy.items()))
                print(f"waiting for {len(pending)} runs that another process on this store is computing "
                      f"({owners}); runs of a process that dies are taken over (--wait limits this).",
                      file=sys.stderr, flush=True)
            time.sleep(poll)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        store.release()  # runs not stored (interrupted) are free for another process at once
    result.wall_time = time.perf_counter() - start
    return result


def _compute(todo, store, jobs, result, bar, *, replace, backend, max_models, max_cost):
    """Compute the claimed runs ``todo`` and store each task's records; update ``result`` and ``bar``."""
    tasks = plan_tasks(todo, jobs, max_models=max_models, max_cost=max_cost)
    if backend is None:
        backend = serial if jobs == 1 or len(tasks) <= 1 else (lambda ts: local_pool(ts, jobs))
    stream = backend(tasks)
    try:
        for task, records in stream:
            store.put(records, replace=replace)
            result.done += len(records)
            result.tasks += 1
            labels = {r.key: r.label for r in task.runs}
            for run, record in zip(task.runs, records):
                result.experiment_time[run.experiment] = (result.experiment_time.get(run.experiment, 0.0)
                                                          + record.get("wall_time", 0.0))
            result.failed += [(r["run_key"], labels[r["run_key"]], r["error"]) for r in records if r["status"] != "ok"]
            if bar is not None:
                bar.update(len(records))
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except KeyboardInterrupt:  # a second Ctrl-C while shutting the pool down
                result.interrupted = True
