"""Registry entries of the full-batch solvers (issue 12), added to :data:`sparsenet.experiments.methods.METHODS`.

=============  ==============================================================================================
name           what a run does
=============  ==============================================================================================
``recover``    :func:`sparsenet.recover` on the training data: tensor init, output signs searched from the
               data, restarts, then the ``solver`` field's solver (``"grasp"``, ``"htp"``, ``"niht"``,
               ``"sgd_iht"`` or ``"auto"``) under the run's sparsifier
=============  ==============================================================================================

Blind by construction: only X, y and the hyperparameters reach :func:`sparsenet.recover`, under every
protocol. As the multi-stage baselines, the whole fit runs in ``ModelSpec.finish`` (the runner's batched
stage runs 0 epochs); its measured time is stored as the ``wall_time`` metric (the runs of one problem
share recover's starts -- initialization and sign search, the same for every solver -- and a run that
reuses a start is charged the time its computation took), and the solver's
iterations and stop reason as ``solver_iterations`` / ``solver_starts`` metrics. The stored
``init_recovery_error`` is that of the run's cached tensor initialization (the first start of
``recover`` draws its own); NaN when that initialization fails (``recover`` then starts at random).
"""

from __future__ import annotations

import time

from sparsenet.experiments.methods import _TARGET_FIELD, METHODS, Method, ModelSpec, _apply_target, _sparsifier
from sparsenet.experiments.params import Param

__all__ = ["SOLVER_METHODS"]

_FIELDS = {
    # Built-in names, checked without importing numpy (``sparsenet list``); names added to the
    # registries at run time are accepted too (``registry``).
    "solver": Param("choice", choices=("auto", "grasp", "htp", "niht", "sgd_iht"), default="auto",
                    registry="sparsenet.solvers:SOLVERS"),
    "signs": Param("choice", choices=("auto", "exhaustive", "greedy", "init"), default="auto"),
    "sparsifier": Param("choice", choices=("dense", "threshold", "top_fraction"), default="threshold",
                        registry="sparsenet.sparsify:SPARSIFIERS"),
    "max_starts": Param("int", 1, 100, default=3),
    **_TARGET_FIELD,  # target = "p_gt": TopFraction keeps the planted sparsity LEVEL (never its support)
}


def _resolve(setting, fields):
    params = _apply_target({**setting, **fields}, setting)
    kind = params["sparsifier"]
    if kind != "threshold":
        params.pop("thresh_train", None)
    if kind != "top_fraction":
        params.pop("p_train", None)
        params.pop("target", None)
    if params["solver"] != "sgd_iht":  # the full-batch solvers have no epoch budget or step size
        for key in ("pretrain_epochs", "learning_rate"):
            params.pop(key, None)
    params["method_epochs"] = params["epochs"] if params["solver"] == "sgd_iht" else 0
    params["epochs"] = 0  # the runner's batched stage is skipped; recover runs in finish
    return params


def _build(params, ctx):
    import numpy as np

    from sparsenet.recovery import recover
    from sparsenet.solvers import SGDIHT

    try:
        W0, v0 = ctx.init("tensor")
        init_failed = False
    except ValueError:  # recover falls back to a random start itself; only the stored init error is lost
        d, k = ctx.problem.W.shape
        W0, v0, init_failed = np.zeros((d, k)), np.ones(k), True
    sp = _sparsifier(params["sparsifier"], params)
    solver = params["solver"]
    if solver == "sgd_iht":
        solver = SGDIHT(epochs=params["method_epochs"], learning_rate=params["learning_rate"],
                        pretrain_epochs=params["pretrain_epochs"],
                        batch_size=None if params["batch_size"] == "full" else params["batch_size"])

    def finish(W, v, history):
        t0 = time.perf_counter()
        p = ctx.problem
        starts = ctx.shared.setdefault("recover starts", {})  # the same for every solver of this problem
        res = recover(p.X, p.y, p.W.shape[1], sparsifier=sp, activation=p.activation, solver=solver,
                      signs=params["signs"], max_starts=params["max_starts"],
                      random_state=np.random.default_rng([ctx.seed, 200]), start_cache=starts)
        # wall_time is what this run would take alone: a start reused from another solver's run
        # is charged the time its computation took there
        h = res.history
        elapsed = time.perf_counter() - t0 + sum(t for t, r in zip(h["start_seconds"], h["start_reused"]) if r)
        ctx.warnings += [f"recover: {w}" for w in res.warnings]
        extra = {"wall_time": elapsed, "solver_iterations": int(res.history["n_iter"]),
                 "solver_starts": int(res.n_starts)}
        if init_failed:
            extra["init_recovery_error"] = float("nan")
        return res.W, res.v, {"train_loss": res.history["loss"], "nnz": res.history["nnz"]}, extra

    return ModelSpec(W0=W0, v0=v0, sparsifier=None, pretrain_epochs=0, learning_rate=1e-3, train_v=False,
                     batch_key=("staged",), finish=finish)


SOLVER_METHODS = {"recover": Method(fields=_FIELDS, resolve=_resolve, build=_build)}

METHODS.update(SOLVER_METHODS)
