"""Registry entries of the baselines (issue 8), added to :data:`sparsenet.experiments.methods.METHODS`.

=================  ==========================================================================================
name               what a run does (``epochs`` = E is every method's total budget per model)
=================  ==========================================================================================
``random_iht``     Gaussian init (:func:`sparsenet.random_init`) + IHT, as ``iht`` with ``init = "random"``
``tensor_iht``     tensor init + IHT (the report's method) with the ``target`` field below
``prune_finetune`` dense training, one-shot magnitude pruning, fine-tuning on the support
``imp``            iterative magnitude pruning (geometric schedule, fine-tune or rewind)
``l1_prox``        L1-penalized proximal SGD, λ chosen on the training data to reach the target count
``iht_refit``      IHT for E − refit_epochs epochs, then a refit of the final support for refit_epochs
``oracle_refit``   ORACLE: the TRUE support given, weights fit by gradient descent on it from the same
                   init (a lower bound on the recovery error that no blind method can be expected to reach)
=================  ==========================================================================================

Target count. Count-based methods keep ``round(p_train·d·k)`` weights. With ``target = "p_gt"`` the
planted truth's sparsity *level* is given (p_train := p_gt, as IHT's analysis assumes a known
sparsity level); its *support* is never given, except to ``oracle_refit``.

Multi-stage methods (``prune_finetune``, ``imp``, ``l1_prox``, ``iht_refit``) run the tested functions of
:mod:`sparsenet.baselines` in ``ModelSpec.finish``, so their stages and budget split are exactly those
documented there. The runner's batched stage is skipped for them (resolved ``epochs = 0``; the budget is
stored as ``method_epochs``), and the measured time of the whole method is stored as the ``wall_time``
metric (read before the record's top-level wall time). ``prune_finetune``, ``imp`` and ``iht_refit`` runs of
one problem (one task holds all of a problem's runs) train jointly, in lockstep on one copy of the runner's
minibatch stream (:func:`sparsenet.baselines.run_jointly`; each result equals the run alone, which
the same stream gives anyway): their ``wall_time`` is the joint time shared in proportion to their epochs,
as the batched runs share their call's time. Ground truth is used by ``oracle_refit``'s build
only (support, matched to the init's column order) and by the metrics.
"""

from __future__ import annotations

import time
import weakref

from sparsenet.experiments.params import Param
from sparsenet.experiments.methods import (
    _INIT_FIELD, _TARGET_FIELD, METHODS, Method, ModelSpec, _apply_target, _sparsifier,
)

__all__ = ["BASELINE_METHODS", "oracle_support"]

_SPARSIFIER_FIELD = {
    "sparsifier": Param("choice", choices=("threshold", "top_fraction", "dense"), default="top_fraction")
}


def _random_init_field():
    return {"init": Param("choice", choices=_INIT_FIELD["init"].choices, default="random")}


def _resolve_iht_family(setting, fields):
    params = _apply_target({**setting, **fields}, setting)
    kind = params["sparsifier"]
    if kind != "threshold":
        params.pop("thresh_train", None)
    if kind != "top_fraction":
        params.pop("p_train", None)
        params.pop("target", None)
    if kind == "dense":
        params.pop("pretrain_epochs", None)
    return params


def _resolve_staged(setting, fields, *, keep=("p_train",)):
    """Count-based multi-stage method: the finish hook runs all ``epochs``; the runner stage none."""
    params = _apply_target({**setting, **fields}, setting)
    for key in ("thresh_train", "p_train", "pretrain_epochs", "target"):
        if key not in keep:
            params.pop(key, None)
    return _to_staged(params)


def _to_staged(params):
    params["method_epochs"] = params["epochs"]
    params["epochs"] = 0
    return params


def _n_keep(params, problem):
    from sparsenet.sparsify import TopFraction

    d, k = problem.W.shape
    return TopFraction(params["p_train"]).n_keep(d * k)


def _common(params, ctx, random_state=None):
    import numpy as np

    p = ctx.problem
    return dict(
        epochs=params["method_epochs"],
        batch_size=None if params["batch_size"] == "full" else params["batch_size"],
        learning_rate=params["learning_rate"],
        train_v=ctx.train_v(params),
        activation=p.activation,
        X_test=p.X_test,
        y_test=p.y_test,
        # the runner's minibatch stream (a fresh one, unless a joint run shares one object)
        random_state=np.random.default_rng([ctx.seed, 100]) if random_state is None else random_state,
        loss_history=bool(params.get("loss_history", False)),  # only for experiments that read them
    )


# Staged runs of one problem that train jointly: ProblemContext -> list of _Job not yet run.
_JOINT = weakref.WeakKeyDictionary()


class _Job:
    """One joint staged run: ``program(random_state)`` -> (trainer, program) of sparsenet.baselines."""

    def __init__(self, program, epochs):
        self.program, self.epochs = program, epochs
        self.result = None  # (BaselineResult or the exception it raised, seconds)


def _run_joint(jobs, seed):
    """Run the staged ``jobs`` of one problem in lockstep (:func:`sparsenet.baselines.run_jointly`) on ONE
    copy of the runner's stream [seed, 100]; each job gets a share of the measured time proportional to
    its epochs.  Alone (one job), or should the joint call fail (one run diverging raises), every job
    runs alone on a fresh copy of the stream, so that each run records its own failure."""
    import numpy as np

    from sparsenet.baselines import _drive, run_jointly

    if len(jobs) > 1:
        t0 = time.perf_counter()
        try:
            stream = np.random.default_rng([seed, 100])
            results = run_jointly([job.program(stream) for job in jobs])
        except Exception:  # noqa: BLE001 - each job alone below
            results = None
        if results is not None:
            seconds = time.perf_counter() - t0
            total = sum(max(job.epochs, 1) for job in jobs)
            for job, res in zip(jobs, results):
                job.result = (res, seconds * max(job.epochs, 1) / total)
            return
    for job in jobs:
        t0 = time.perf_counter()
        try:
            job.result = (_drive(*job.program(None)), time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - raised again in this run's finish
            job.result = (exc, time.perf_counter() - t0)


def _staged_build(run, *, joint=False):
    """``build`` of a multi-stage method: ``run(params, ctx, W0, v0) -> (BaselineResult, extra)`` in finish.

    With ``joint``, ``run(params, ctx, W0, v0, random_state) -> (trainer, program)`` instead: the joint
    staged runs of one problem all train when the first of them finishes (:func:`_run_joint`)."""

    def build(params, ctx):
        W0, v0 = ctx.init(params["init"])
        if joint:
            job = _Job(lambda stream: run(params, ctx, W0, v0, stream), params["method_epochs"])
            _JOINT.setdefault(ctx, []).append(job)

        def finish(W, v, history):
            if not joint:
                t0 = time.perf_counter()
                res, extra = run(params, ctx, W0, v0)
                return res.W, res.v, res.history, {**extra, "wall_time": time.perf_counter() - t0}
            if job.result is None:
                _run_joint(_JOINT.pop(ctx, [job]), ctx.seed)
            res, seconds = job.result
            if isinstance(res, Exception):
                raise res
            return res.W, res.v, res.history, {"wall_time": seconds}

        return ModelSpec(W0=W0, v0=v0, sparsifier=None, pretrain_epochs=0, learning_rate=params["learning_rate"],
                         train_v=ctx.train_v(params), batch_key=("staged",), finish=finish)

    return build


def _run_prune_finetune(params, ctx, W0, v0, random_state):
    from sparsenet.baselines import prune_finetune

    return prune_finetune.program(ctx.problem.X, ctx.problem.y, W0, v0, n_nonzero=_n_keep(params, ctx.problem),
                                  dense_fraction=params["dense_fraction"], **_common(params, ctx, random_state))


def _run_imp(params, ctx, W0, v0, random_state):
    from sparsenet.baselines import iterative_magnitude_pruning

    return iterative_magnitude_pruning.program(
        ctx.problem.X, ctx.problem.y, W0, v0, n_nonzero=_n_keep(params, ctx.problem), n_rounds=params["n_rounds"],
        rewind=params["rewind"], **_common(params, ctx, random_state))


def _run_l1(params, ctx, W0, v0):
    from sparsenet.baselines import l1_prox

    res = l1_prox(ctx.problem.X, ctx.problem.y, W0, v0, n_nonzero=_n_keep(params, ctx.problem),
                  **_common(params, ctx))
    return res, {"l1_alpha": float(res.info["alpha"][0])}


def _run_iht_refit(params, ctx, W0, v0, random_state):
    from sparsenet.baselines import iht_refit

    sp = _sparsifier(params["sparsifier"], params)
    return iht_refit.program(ctx.problem.X, ctx.problem.y, W0, v0, sparsifier=sp, refit_epochs=params["refit_epochs"],
                             pretrain_epochs=params.get("pretrain_epochs", 0), **_common(params, ctx, random_state))


def _build_iht_family(params, ctx):
    W0, v0 = ctx.init(params["init"])
    return ModelSpec(W0=W0, v0=v0, sparsifier=_sparsifier(params["sparsifier"], params),
                     pretrain_epochs=params.get("pretrain_epochs", 0), learning_rate=params["learning_rate"],
                     train_v=ctx.train_v(params))


def oracle_support(W0, v0, problem):
    """ORACLE (uses ground truth): the true support, its columns put in the order of the init's units.

    Hidden units are only defined up to permutation, so the true column i is given to the init's unit
    matched with it (:func:`sparsenet.metrics.align`, Hungarian matching).
    """
    import numpy as np

    from sparsenet.metrics import align

    perm = align(W0, v0, problem.W, problem.v, activation=problem.activation).perm
    truth = problem.W != 0
    mask = np.zeros_like(truth)
    mask[:, perm] = truth
    return mask


def _resolve_oracle(setting, fields):
    params = {**setting, **fields}
    for key in ("thresh_train", "p_train", "pretrain_epochs"):
        params.pop(key, None)
    return params


def _build_oracle(params, ctx):
    W0, v0 = ctx.init(params["init"])
    mask = oracle_support(W0, v0, ctx.problem)  # ORACLE: ground truth enters here only
    return ModelSpec(W0=W0 * mask, v0=v0, sparsifier=None, pretrain_epochs=0, learning_rate=params["learning_rate"],
                     train_v=ctx.train_v(params), mask=mask)


BASELINE_METHODS = {
    "random_iht": Method(
        fields={**_random_init_field(), **_SPARSIFIER_FIELD, **_TARGET_FIELD},
        resolve=_resolve_iht_family,
        build=_build_iht_family,
    ),
    "tensor_iht": Method(
        fields={**_INIT_FIELD, **_SPARSIFIER_FIELD, **_TARGET_FIELD},
        resolve=_resolve_iht_family,
        build=_build_iht_family,
    ),
    "prune_finetune": Method(
        fields={**_random_init_field(), **_TARGET_FIELD,
                "dense_fraction": Param("float", 0.0, 1.0, default=0.5)},
        resolve=_resolve_staged,
        build=_staged_build(_run_prune_finetune, joint=True),
    ),
    "imp": Method(
        fields={**_random_init_field(), **_TARGET_FIELD,
                "n_rounds": Param("int", 1, 100, default=4), "rewind": Param("bool", default=False)},
        resolve=_resolve_staged,
        build=_staged_build(_run_imp, joint=True),
    ),
    "l1_prox": Method(
        fields={**_random_init_field(), **_TARGET_FIELD},
        resolve=_resolve_staged,
        build=_staged_build(_run_l1),
    ),
    "iht_refit": Method(
        fields={**_INIT_FIELD, **_SPARSIFIER_FIELD, **_TARGET_FIELD,
                "refit_epochs": Param("int", 0, 10**6, default=5)},
        resolve=lambda s, f: _to_staged(_resolve_iht_family(s, f)),
        build=_staged_build(_run_iht_refit, joint=True),
    ),
    "oracle_refit": Method(
        fields=dict(_INIT_FIELD),
        resolve=_resolve_oracle,
        build=_build_oracle,
    ),
}

METHODS.update(BASELINE_METHODS)
