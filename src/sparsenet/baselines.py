"""Baselines for sparse one-hidden-layer networks, on the same trainer as IHT.

Every baseline is a plain function on ``(X, y, W0, v0, ...)`` that returns a :class:`BaselineResult`
(an :class:`~sparsenet.train.IHTResult` with the final ``support`` and an ``info`` dict). ``W0`` may
carry a leading model axis (B, d, k): the B models share the data set X and train as one batched
array computation (:func:`sparsenet.train.train_iht_batched`). None of them sees ground truth.

Epoch budget
------------
``epochs`` is the *total* number of passes over the data of each returned model, split between the
stages as follows (so that methods compared with the same ``epochs`` cost the same number of
gradient steps per model):

* :func:`prune_finetune`: ``round(dense_fraction·epochs)`` dense epochs, one-shot pruning, the rest
  fine-tuning on the fixed support;
* :func:`iterative_magnitude_pruning`: ``n_rounds + 1`` near-equal phases (``np.array_split``):
  dense training, then after each of the ``n_rounds`` prunings a phase of fine-tuning (or of training
  from the rewound initial weights) on the surviving support;
* :func:`l1_prox`: all ``epochs`` are proximal-gradient epochs. Choosing the penalty costs extra
  *selection* runs (one per tried λ, each ``epochs`` long, batched); the returned model is the
  selected run itself, so it has seen exactly ``epochs`` epochs;
* :func:`iht_refit`: ``epochs − refit_epochs`` IHT epochs (the first ``pretrain_epochs`` dense), then
  ``refit_epochs`` on the final support;
* :func:`refit_support`: ``epochs`` epochs on the given support.

The histories of the stages are concatenated: one entry per epoch plus the initial state at index 0
(``epochs + 1`` entries); the pruning between two stages is not a separate entry.

Joint training
--------------
:func:`prune_finetune`, :func:`iterative_magnitude_pruning` and :func:`iht_refit` are programs of
stages; ``func.program(...)`` (same arguments) returns the program unrun, and :func:`run_jointly`
trains several programs on one data set and one minibatch stream in lockstep: one trainer call per
segment of epochs for all their models, which share each step's minibatch (one gather, one pair of
products).  Each result equals running that baseline alone on a fresh copy of the stream (tested).
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_data, check_random_state, check_scalar, check_weights
from .sparsify import check_sparsifier_output, get_sparsifier
from .train import IHTResult, train_iht_batched

__all__ = [
    "BaselineResult",
    "soft_threshold",
    "magnitude_mask",
    "imp_schedule",
    "prune_finetune",
    "iterative_magnitude_pruning",
    "l1_prox",
    "refit_support",
    "iht_refit",
    "run_jointly",
]


@dataclass
class BaselineResult(IHTResult):
    """Outcome of a baseline: an :class:`~sparsenet.train.IHTResult` plus its support and details.

    Attributes
    ----------
    support : ndarray of bool of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
        The support the method fixed (pruning mask, refit support) or, for L1, ``W != 0``.
    info : dict
        Method details, e.g. the epoch split, the pruning schedule, the selected λ.
    """

    support: np.ndarray | None = None
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Operators


def soft_threshold(W, thresh):
    """Proximal operator of ``thresh·‖W‖₁``: shrink every entry towards zero by ``thresh``.

    Parameters
    ----------
    W : ndarray
    thresh : float or ndarray broadcastable to W
        Non-negative shrinkage (λ·step in a proximal gradient step).

    Returns
    -------
    W_new : ndarray of W's shape
        ``sign(W)·max(|W| − thresh, 0)``.
    """
    W = np.asarray(W)
    return np.sign(W) * np.maximum(np.abs(W) - thresh, 0.0)


def magnitude_mask(W, n_keep, *, support=None):
    """Boolean mask of the ``n_keep`` largest-magnitude entries of each model, exactly.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    n_keep : int or ndarray of int of shape (n_models,)
        Entries kept per model, in [1, n_features·n_hidden] (and at most the size of ``support``).
    support : ndarray of bool of W's shape or None, default=None
        Candidates; entries outside it are never kept (pruning within a surviving support).

    Returns
    -------
    mask : ndarray of bool of W's shape
        Exactly ``n_keep`` True entries per model (ties at the cut-off broken arbitrarily).
    """
    W = np.asarray(W)
    single = W.ndim == 2
    Wb = W[None] if single else W
    B = Wb.shape[0]
    size = Wb.shape[1] * Wb.shape[2]
    keep = np.broadcast_to(np.asarray(n_keep, dtype=np.int64), (B,))
    score = np.abs(Wb).reshape(B, size).astype(float)
    if support is not None:
        sup = np.broadcast_to(np.asarray(support, dtype=bool), Wb.shape).reshape(B, size)
        score = np.where(sup, score, -np.inf)
        limit = sup.sum(axis=1)
    else:
        limit = np.full(B, size)
    if np.any(keep < 1) or np.any(keep > limit):
        raise ValueError(f"The 'n_keep' parameter must be in [1, {int(limit.min())}] (entries available). "
                         f"Got {n_keep!r} instead.")
    mask = np.zeros((B, size), dtype=bool)
    for b in range(B):
        # argpartition puts the keep[b] largest scores last; exactly keep[b] indices.
        top = np.argpartition(score[b], size - keep[b])[size - keep[b]:]
        mask[b, top] = True
    mask = mask.reshape(Wb.shape)
    return mask[0] if single else mask


def imp_schedule(n_total, n_target, n_rounds):
    """Weights kept after each round of iterative magnitude pruning (geometric, ends at the target).

    Round r keeps ``round(n_total·(n_target/n_total)^(r/n_rounds))`` weights, i.e. the same fraction
    is pruned every round, and the last round keeps exactly ``n_target``.

    Parameters
    ----------
    n_total : int
        Weights of the dense model (d·k).
    n_target : int
        Weights kept at the end, in [1, n_total].
    n_rounds : int
        Number of prunings, ``>= 1``.

    Returns
    -------
    counts : list of int of length n_rounds
        Non-increasing, each in [n_target, n_total], ``counts[-1] == n_target``.
    """
    r = np.arange(1, n_rounds + 1)
    counts = np.round(n_total * (n_target / n_total) ** (r / n_rounds)).astype(int)
    counts = np.clip(counts, n_target, n_total)
    counts[-1] = n_target
    return [int(c) for c in np.minimum.accumulate(counts)]


# --------------------------------------------------------------------------------------------------
# Shared plumbing


def _prepare(X, y, W0, v0, owner):
    X, y = check_data(X, y)
    if X.ndim != 2:
        raise ValueError(f"Input 'X' of {owner} must be 2-D of shape (n_samples, n_features) (one data set "
                         f"shared by all models). Got shape {X.shape} instead.")
    W, v = check_weights(W0, v0, X.shape[1], allow_batch=True)
    single = W.ndim == 2
    if single:
        W, v = W[None], v[None]
    return X, y, W, v, single


def _n_nonzero(n_nonzero, B, size, owner):
    arr = np.asarray(n_nonzero)
    if arr.ndim == 0:
        arr = np.full(B, arr)
    if (arr.shape != (B,) or not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 1)
            or np.any(arr > size)):
        raise ValueError(f"The 'n_nonzero' parameter of {owner} must be an int in the range [1, {size}] "
                         f"(or one per model, shape ({B},)). Got {n_nonzero!r} instead.")
    return arr.astype(np.int64)


def _streams(random_state, B):
    """One minibatch Generator per model: a sequence gives one per model, anything else is spawned."""
    if isinstance(random_state, (list, tuple)):
        if len(random_state) != B:
            raise ValueError(f"The 'random_state' parameter must be one seed or one per model ({B}). "
                             f"Got {len(random_state)} instead.")
        return [check_random_state(r) for r in random_state]
    rng = check_random_state(random_state)
    return [rng] if B == 1 else list(rng.spawn(B))


class _Trainer:
    """Runs the stages of a baseline with the common options, concatenating histories."""

    def __init__(self, X, y, *, batch_size, learning_rate, train_v, activation, X_test, y_test, dtype,
                 rngs, on_divergence, chunk_size, order_groups=None, loss_history=True):
        self.X, self.y = X, y
        self.kw = dict(batch_size=batch_size, learning_rate=learning_rate, train_v=train_v,
                       activation=activation, X_test=X_test, y_test=y_test, dtype=dtype,
                       on_divergence=on_divergence, chunk_size=chunk_size, order_groups=order_groups,
                       loss_history=loss_history)
        self.rngs = rngs
        self.history = None
        self.diverged = None
        self.epochs = 0

    def run(self, W, v, epochs, *, mask=None, prox=None, sparsifiers=None, pretrain_epochs=0,
            sparsify_last=False, select=None):
        """Train for ``epochs``; ``select`` (model indices) trains a subset and keeps the others' history."""
        W = np.nan_to_num(W)  # diverged models (flag mode) are frozen at zero
        v = np.nan_to_num(v)
        if sparsifiers is None:
            pretrain_epochs = epochs  # dense: the identity is never applied (same W, no copy per epoch)
        res = train_iht_batched(self.X, self.y, W, v, sparsifiers=sparsifiers, epochs=epochs,
                                pretrain_epochs=pretrain_epochs, sparsify_last=sparsify_last, mask=mask,
                                prox=prox, random_states=self.rngs, **self.kw)
        self.absorb(res.history, res.diverged, epochs)
        return res.W, res.v

    def absorb(self, history, diverged, epochs):
        """Append ``epochs`` epochs of history (its entry 0, the stage's start, only for the first stage)."""
        if self.history is None:
            self.history = {k: np.asarray(h) for k, h in history.items()}
            self.diverged = np.asarray(diverged, dtype=bool).copy()
        else:
            self.history = {k: np.concatenate([self.history[k], np.asarray(h)[:, 1:]], axis=1)
                            for k, h in history.items()}
            self.diverged |= np.asarray(diverged, dtype=bool)
        self.epochs += epochs

    def result(self, W, v, single, support, info):
        W = W.copy()
        v = v.copy()
        W[self.diverged] = np.nan
        v[self.diverged] = np.nan
        hist = self.history
        div = self.diverged
        if single:
            return BaselineResult(W=W[0], v=v[0], history={k: h[0] for k, h in hist.items()},
                                  n_iter_=self.epochs, diverged=bool(div[0]),
                                  support=None if support is None else support[0], info=info)
        return BaselineResult(W=W, v=v, history=hist, n_iter_=self.epochs, diverged=div, support=support,
                              info=info)


# A staged baseline is a program: a generator that yields one _Stage at a time and is sent back the
# trained (W, v); its return value is the BaselineResult.  Alone, each stage is one trainer call
# (_drive); several programs on one data set run in lockstep (run_jointly), one trainer call per
# segment of epochs in which no program changes stage.


@dataclass
class _Stage:
    """One training stage of a staged baseline: ``epochs`` epochs from (W, v) with these options."""

    W: np.ndarray
    v: np.ndarray
    epochs: int
    mask: np.ndarray | None = None
    sparsifiers: object = None
    pretrain_epochs: object = 0
    sparsify_last: bool = False


def _drive(tr, program):
    """Run ``program``'s stages one after the other with ``tr``; return its result."""
    sent = None
    while True:
        try:
            st = program.send(sent)
        except StopIteration as stop:
            return stop.value
        sent = tr.run(st.W, st.v, st.epochs, mask=st.mask, sparsifiers=st.sparsifiers,
                      pretrain_epochs=st.pretrain_epochs, sparsify_last=st.sparsify_last)


def _staged(factory):
    """The public baseline from ``factory`` (same signature, returns ``(trainer, program)``): runs it
    alone.  ``func.program(...)`` gives the (trainer, program) pair for :func:`run_jointly`."""

    @functools.wraps(factory)
    def func(*args, **kwargs):
        return _drive(*factory(*args, **kwargs))

    func.program = factory
    return func


_JOINT_KEYS = ("batch_size", "activation", "X_test", "y_test", "dtype", "on_divergence", "chunk_size",
               "loss_history")


def run_jointly(programs):
    """Run several staged baselines on ONE data set and ONE minibatch stream in lockstep.

    Parameters
    ----------
    programs : list of (trainer, program)
        From ``prune_finetune.program(...)``, ``iterative_magnitude_pruning.program(...)`` or
        ``iht_refit.program(...)``, all with the same X, y, common options (``batch_size``,
        ``activation``, test set, ``dtype``, ``on_divergence``, ``chunk_size``, ``loss_history``), one model
        each, and the
        same ``random_state`` Generator object.

    Returns
    -------
    results : list of BaselineResult
        In the order of ``programs``; each equals running that baseline alone with a fresh copy of the
        stream (to rounding), since alone every epoch draws one permutation of the same stream too.

    Notes
    -----
    Epochs are cut into segments at every stage boundary of every program; one segment is one call of
    :func:`sparsenet.train.train_iht_batched` for all the programs' models as ONE order group (one
    gather and one pair of products per step for all of them), each model with its own mask (all ones
    when it has none), sparsifier, learning rate and pre-training left.  ``sparsify_last`` is applied
    by hand to the models whose stage ends with the segment; a stage of 0 epochs runs alone (as
    :func:`_drive` would run it, drawing nothing from the stream).
    """
    trainers = [tr for tr, _ in programs]
    first = trainers[0]
    common = {k: first.kw[k] for k in _JOINT_KEYS}
    for tr in trainers:
        if not all(_same(a, b) for a, b in [(tr.X, first.X), (tr.y, first.y)] + [(tr.kw[k], common[k])
                                                                                for k in _JOINT_KEYS]):
            raise ValueError("run_jointly needs programs on one data set with the same common options.")
        if len(tr.rngs) != 1 or tr.rngs[0] is not first.rngs[0]:
            raise ValueError("run_jointly needs programs of one model each sharing one random_state Generator.")
    stage, done, results = {}, {}, {}

    def advance(i, sent):
        try:
            stage[i] = programs[i][1].send(sent)
            done[i] = 0
        except StopIteration as stop:
            stage.pop(i, None)
            results[i] = stop.value

    for i in range(len(programs)):
        advance(i, None)
    while stage:
        for i in list(stage):
            while i in stage and stage[i].epochs == 0:
                st = stage[i]
                advance(i, trainers[i].run(st.W, st.v, 0, mask=st.mask, sparsifiers=st.sparsifiers,
                                           pretrain_epochs=st.pretrain_epochs, sparsify_last=st.sparsify_last))
        if not stage:
            break
        active = sorted(stage)
        seg = min(stage[i].epochs - done[i] for i in active)
        out = _segment(trainers[0].X, trainers[0].y, [(trainers[i], stage[i], done[i]) for i in active], seg,
                       common)
        for i, (W, v) in zip(active, out):
            done[i] += seg
            if done[i] == stage[i].epochs:
                advance(i, (W, v))
            else:
                stage[i].W, stage[i].v = W, v
    return [results[i] for i in range(len(programs))]


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b or (np.shape(a) == np.shape(b) and np.array_equal(a, b))
    return a is b or a == b


def _segment(X, y, items, epochs, common):
    """One trainer call of ``epochs`` epochs for ``items`` = [(trainer, stage, epochs done in it)]."""
    W = np.concatenate([np.nan_to_num(st.W) for _, st, _ in items])
    v = np.concatenate([np.nan_to_num(st.v) for _, st, _ in items])
    sizes = [st.W.shape[0] for _, st, _ in items]
    mask = None
    if any(st.mask is not None for _, st, _ in items):
        mask = np.concatenate([np.ones(st.W.shape, dtype=bool) if st.mask is None
                               else np.broadcast_to(np.asarray(st.mask, dtype=bool), st.W.shape)
                               for _, st, _ in items])
    sps = []
    for (_, st, _), B in zip(items, sizes):
        sp = st.sparsifiers
        sps.extend(get_sparsifier(s) for s in (sp if isinstance(sp, (list, tuple)) else [sp] * B))

    def per_model(values):
        return np.concatenate([np.broadcast_to(np.asarray(val, dtype=float), (B,)) for val, B in zip(values, sizes)])

    pre = per_model([epochs if st.sparsifiers is None else np.maximum(np.asarray(st.pretrain_epochs) - off, 0)
                     for _, st, off in items]).astype(int)  # dense: the identity never applied
    res = train_iht_batched(X, y, W, v, sparsifiers=sps, epochs=epochs, pretrain_epochs=pre, sparsify_last=False,
                            mask=mask, learning_rate=per_model([tr.kw["learning_rate"] for tr, _, _ in items]),
                            train_v=per_model([tr.kw["train_v"] for tr, _, _ in items]).astype(bool),
                            random_states=[r for tr, _, _ in items for r in tr.rngs],
                            order_groups=np.zeros(len(W), dtype=int), **common)
    out, start = [], 0
    for (tr, st, off), B in zip(items, sizes):
        sl = slice(start, start + B)
        start += B
        hist = {k: np.asarray(h)[sl].copy() for k, h in res.history.items()}
        div = np.asarray(res.diverged, dtype=bool)[sl]
        Wp, vp = res.W[sl], res.v[sl]
        if st.sparsify_last and off + epochs == st.epochs:  # as train_iht_batched(sparsify_last=True)
            for b in np.flatnonzero(~div):
                Wp[b] = check_sparsifier_output(sps[sl.start + b], Wp[b], model=b)
            hist["nnz"][:, -1] = np.count_nonzero(np.nan_to_num(Wp), axis=(1, 2))  # diverged: frozen at 0
        tr.absorb(hist, div, epochs)
        out.append((Wp, vp))
    return out


_COMMON_DOC = """
    epochs : int, default=25
        Total epoch budget of each returned model (see the module docstring for the split).
    batch_size : int or None, default=20
        Minibatch size; None for full-batch gradient descent.
    learning_rate : float or ndarray of shape (n_models,), default=1e-3
    train_v : bool, default=False
        Train the output weights too (otherwise v stays at v0).
    activation : str, Activation or callable, default="relu2"
    X_test, y_test : ndarray or None, default=None
        Test set for the per-epoch test loss (never used for any choice).
    dtype : numpy dtype, default=np.float64
    random_state : None, int, Generator or sequence of n_models of them, default=None
        Minibatch shuffling.
    on_divergence : {"raise", "flag"}, default="raise"
        As in :func:`sparsenet.train.train_iht_batched`.
    chunk_size : int or None, default=None
        Rows per chunk of the full-data passes.
    loss_history : bool, default=True
        Train and test losses after every epoch; False: at the start and end of each training stage
        only, NaN between (see :func:`sparsenet.train.train_iht_batched`)."""


def _with_common_doc(func):
    """Put :data:`_COMMON_DOC` where the docstring says ``{common}`` (a docstring built with ``+``
    is an expression, not a docstring: ``__doc__`` would be None)."""
    func.__doc__ = func.__doc__.replace("\n    {common}\n", _COMMON_DOC + "\n")
    return func


def _common(epochs, owner):
    return check_scalar(epochs, "epochs", kind="int", low=0, owner=owner)


# --------------------------------------------------------------------------------------------------
# Methods


@_with_common_doc
@_staged
def prune_finetune(X, y, W0, v0, *, n_nonzero, epochs=25, dense_fraction=0.5, batch_size=20,
                   learning_rate=1e-3, train_v=False, activation="relu2", X_test=None, y_test=None,
                   dtype=np.float64, random_state=None, on_divergence="raise", chunk_size=None,
                   loss_history=True):
    """Dense training, one-shot magnitude pruning to ``n_nonzero`` weights, fine-tuning on that support.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    v0 : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    n_nonzero : int or ndarray of int of shape (n_models,)
        Weights kept, in [1, n_features·n_hidden].
    dense_fraction : float, default=0.5
        Share of ``epochs`` spent on dense training (``round(dense_fraction·epochs)`` epochs).
    {common}

    Returns
    -------
    result : BaselineResult
        ``W`` with exactly ``n_nonzero`` non-zero entries per model (generically: a fine-tuned weight
        landing exactly on 0.0 would lower the count), ``support`` = the pruning mask,
        ``info = {"dense_epochs", "finetune_epochs"}``.

    References
    ----------
    Han, Pool, Tran and Dally, "Learning both weights and connections for efficient neural
    networks", NeurIPS 2015.
    """
    owner = "prune_finetune"
    X, y, W, v, single = _prepare(X, y, W0, v0, owner)
    B, d, k = W.shape
    epochs = _common(epochs, owner)
    n_keep = _n_nonzero(n_nonzero, B, d * k, owner)
    dense_fraction = check_scalar(dense_fraction, "dense_fraction", low=0.0, high=1.0, owner=owner)
    dense_epochs = int(round(dense_fraction * epochs))
    tr = _Trainer(X, y, batch_size=batch_size, learning_rate=learning_rate, train_v=train_v,
                  activation=activation, X_test=X_test, y_test=y_test, dtype=dtype,
                  rngs=_streams(random_state, B), on_divergence=on_divergence, chunk_size=chunk_size,
                  loss_history=loss_history)

    def stages(W, v):
        W, v = yield _Stage(W, v, dense_epochs)
        mask = magnitude_mask(np.nan_to_num(W), n_keep)
        W, v = yield _Stage(W * mask, v, epochs - dense_epochs, mask=mask)
        W = W * mask  # also when the fine-tuning stage has 0 epochs
        return tr.result(W, v, single, mask, {"dense_epochs": dense_epochs,
                                              "finetune_epochs": epochs - dense_epochs})

    return tr, stages(W, v)


@_with_common_doc
@_staged
def iterative_magnitude_pruning(X, y, W0, v0, *, n_nonzero, n_rounds=4, rewind=False, epochs=25,
                                batch_size=20, learning_rate=1e-3, train_v=False, activation="relu2",
                                X_test=None, y_test=None, dtype=np.float64, random_state=None,
                                on_divergence="raise", chunk_size=None,
                                loss_history=True):
    """Iterative magnitude pruning: train, prune a fixed fraction, retrain on the support, repeat.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    v0 : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    n_nonzero : int or ndarray of int of shape (n_models,)
        Weights kept at the end, in [1, n_features·n_hidden].
    n_rounds : int, default=4
        Number of prunings; the kept counts follow :func:`imp_schedule` (geometric).
    rewind : bool, default=False
        After each pruning restart from the initial weights on the surviving support (W0 ⊙ mask, v0;
        "lottery ticket" rewinding) instead of fine-tuning the trained weights.
    {common}

    Returns
    -------
    result : BaselineResult
        ``W`` with exactly ``n_nonzero`` non-zero entries per model (generically), ``support`` = the
        last mask, ``info = {"phase_epochs", "schedule"}`` (schedule: (n_models, n_rounds) counts).

    References
    ----------
    Frankle and Carbin, "The lottery ticket hypothesis", ICLR 2019.
    """
    owner = "iterative_magnitude_pruning"
    X, y, W, v, single = _prepare(X, y, W0, v0, owner)
    W_init, v_init = W.copy(), v.copy()
    B, d, k = W.shape
    epochs = _common(epochs, owner)
    n_keep = _n_nonzero(n_nonzero, B, d * k, owner)
    n_rounds = check_scalar(n_rounds, "n_rounds", kind="int", low=1, owner=owner)
    schedule = np.array([imp_schedule(d * k, int(n), n_rounds) for n in n_keep])  # (B, R)
    phases = [len(p) for p in np.array_split(np.arange(epochs), n_rounds + 1)]
    tr = _Trainer(X, y, batch_size=batch_size, learning_rate=learning_rate, train_v=train_v,
                  activation=activation, X_test=X_test, y_test=y_test, dtype=dtype,
                  rngs=_streams(random_state, B), on_divergence=on_divergence, chunk_size=chunk_size,
                  loss_history=loss_history)

    def stages(W, v):
        W, v = yield _Stage(W, v, phases[0])
        mask = np.ones(W.shape, dtype=bool)
        for r in range(n_rounds):
            mask = magnitude_mask(np.nan_to_num(W), schedule[:, r], support=mask)
            if rewind:
                W, v = W_init * mask, v_init.copy()
            W, v = yield _Stage(W * mask, v, phases[r + 1], mask=mask)
            W = W * mask
        return tr.result(W, v, single, mask, {"phase_epochs": phases, "schedule": schedule.tolist(),
                                              "rewind": bool(rewind)})

    return tr, stages(W, v)


def _l1_prox_op(alphas):
    """``prox(W, step)`` for models with penalties ``alphas`` (n_models,): soft threshold at α·step."""
    alphas = np.asarray(alphas, dtype=float)[:, None, None]

    def prox(W, step):
        if W.shape[0] != alphas.shape[0]:  # pragma: no cover - _prepare forbids stacked data sets
            raise ValueError("l1 prox got a subset of the models; use one shared data set.")
        return soft_threshold(W, alphas * step)

    prox.l1_alpha = alphas[:, 0, 0]  # lets sparsenet.train run this prox inside its compiled epoch
    return prox


@_with_common_doc
def l1_prox(X, y, W0, v0, *, n_nonzero=None, alpha=None, epochs=25, alpha_range=(1e-4, 1e1), n_grid=8,
            n_refine=2, batch_size=20, learning_rate=1e-3, train_v=False, activation="relu2", X_test=None,
            y_test=None, dtype=np.float64, random_state=None, on_divergence="raise", chunk_size=None,
            loss_history=True):
    """L1-regularized training by proximal (stochastic) gradient, the penalty chosen for a target sparsity.

    Minimizes ``mean((ŷ − y)²) + α‖W‖₁``: after every gradient step with step size η the weights are
    soft-thresholded at α·η (ISTA; with minibatches, proximal SGD).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    v0 : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    n_nonzero : int, ndarray of int of shape (n_models,) or None, default=None
        Target number of non-zero weights: α is chosen so that the trained W has as close to this many
        non-zeros as possible. Exactly one of ``n_nonzero`` and ``alpha`` must be given.
    alpha : float, ndarray of shape (n_models,) or None, default=None
        Fixed penalty α >= 0 (no selection).
    alpha_range : tuple of two floats, default=(1e-4, 10.0)
        First log-spaced grid of α for the selection.
    n_grid : int, default=8
        Values of α tried per round (trained together as one batch).
    n_refine : int, default=2
        Further rounds, each on a log grid inside the bracket [α with too many non-zeros, α with at
        most the target] found so far (a multi-point bisection).
    {common}

    Returns
    -------
    result : BaselineResult
        The run of the selected α (its W, v, history), ``support = W != 0``,
        ``info = {"alpha": (n_models,), "nnz": (n_models,), "n_nonzero": target, "tried": [(alpha, nnz)...]}``.

    Notes
    -----
    The selection uses the training data only: the number of non-zeros of each trained candidate.
    Among all candidates the one with ``|nnz − n_nonzero|`` smallest wins (ties: smaller α, less
    shrinkage). Each candidate is trained with the same minibatch stream as the returned model (common
    random numbers: the candidates of one model form one order group of
    :func:`sparsenet.train.train_iht_batched`, so each step gathers one minibatch for all of them), and
    ``l1_prox(..., alpha=result.info["alpha"], random_state=same)`` reproduces the result exactly.
    The non-zero count need not reach the target exactly; ``info["nnz"]`` reports what was reached.

    References
    ----------
    Beck and Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
    problems", SIAM J. Imaging Sciences, 2009.
    """
    owner = "l1_prox"
    X, y, W, v, single = _prepare(X, y, W0, v0, owner)
    B, d, k = W.shape
    epochs = _common(epochs, owner)
    if (n_nonzero is None) == (alpha is None):
        raise ValueError("Give exactly one of 'n_nonzero' (target sparsity) and 'alpha' (fixed penalty) to "
                         f"l1_prox. Got n_nonzero={n_nonzero!r} and alpha={alpha!r}.")
    # Each model's own minibatch seed, reused by every candidate α of that model.
    seeds = [int(g.integers(2**63)) for g in _streams(random_state, B)]
    common = dict(batch_size=batch_size, learning_rate=learning_rate, train_v=train_v, activation=activation,
                  X_test=X_test, y_test=y_test, dtype=dtype, on_divergence=on_divergence, chunk_size=chunk_size,
                  loss_history=loss_history)

    def train(model_idx, alphas):
        lr = np.asarray(learning_rate, dtype=float)
        kw = dict(common, learning_rate=lr if lr.ndim == 0 else lr[model_idx])
        # The candidates of one model share its order (one order group): one gather and one pair of
        # products per step for all of them (sparsenet.train's grouped path).
        tr = _Trainer(X, y, rngs=[np.random.default_rng(seeds[b]) for b in model_idx], order_groups=model_idx,
                      **kw)
        Wt, vt = tr.run(W[model_idx], v[model_idx], epochs, prox=_l1_prox_op(alphas))
        return tr, Wt, vt

    if alpha is not None:
        alphas = np.broadcast_to(np.asarray(alpha, dtype=float), (B,)).copy()
        if np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"The 'alpha' parameter of {owner} must be a float in the range [0, inf). "
                             f"Got {alpha!r} instead.")
        tr, Wt, vt = train(np.arange(B), alphas)
        nnz = np.count_nonzero(Wt, axis=(1, 2))
        return tr.result(Wt, vt, single, Wt != 0, {"alpha": alphas.tolist(), "nnz": nnz.tolist()})

    target = _n_nonzero(n_nonzero, B, d * k, owner)
    lo, hi = (check_scalar(a, "alpha_range", low=0.0, closed="neither", owner=owner) for a in alpha_range)
    if not lo < hi:
        raise ValueError(f"The 'alpha_range' parameter of {owner} must be (low, high) with 0 < low < high. "
                         f"Got {alpha_range!r} instead.")
    n_grid = check_scalar(n_grid, "n_grid", kind="int", low=2, owner=owner)
    n_refine = check_scalar(n_refine, "n_refine", kind="int", low=0, owner=owner)

    grids = np.tile(np.geomspace(lo, hi, n_grid), (B, 1))
    tried = [[] for _ in range(B)]  # per model: (alpha, nnz, batch, row)
    batches = []
    for _ in range(n_refine + 1):
        model_idx = np.repeat(np.arange(B), n_grid)
        tr, Wt, vt = train(model_idx, grids.ravel())
        nnz = np.count_nonzero(Wt, axis=(1, 2)).reshape(B, n_grid)
        batches.append((tr, Wt, vt))
        new = np.empty_like(grids)
        for b in range(B):
            for j in range(n_grid):
                tried[b].append((float(grids[b, j]), int(nnz[b, j]), len(batches) - 1, b * n_grid + j))
            pts = sorted(tried[b])
            # Bracket: the largest α with too many non-zeros below the smallest α reaching the target.
            ok = [a for a, z, *_ in pts if z <= target[b]]
            a_hi = ok[0] if ok else pts[-1][0] * (hi / lo) ** 0.5
            over = [a for a, z, *_ in pts if z > target[b] and a < a_hi]
            a_lo = over[-1] if over else a_hi / (hi / lo) ** 0.5
            new[b] = np.geomspace(a_lo, a_hi, n_grid + 2)[1:-1]
        grids = new

    pick = [min(tried[b], key=lambda t: (abs(t[1] - target[b]), t[0])) for b in range(B)]
    hist = {}
    W_out = np.stack([batches[p[2]][1][p[3]] for p in pick])
    v_out = np.stack([batches[p[2]][2][p[3]] for p in pick])
    for key in batches[0][0].history:
        hist[key] = np.stack([batches[p[2]][0].history[key][p[3]] for p in pick])
    diverged = np.array([batches[p[2]][0].diverged[p[3]] for p in pick])
    info = {"alpha": [p[0] for p in pick], "nnz": [p[1] for p in pick], "n_nonzero": target.tolist(),
            "tried": [[(a, z) for a, z, *_ in sorted(t)] for t in tried]}
    out = _Trainer.__new__(_Trainer)
    out.history, out.diverged, out.epochs = hist, diverged, epochs
    return out.result(W_out, v_out, single, W_out != 0, info)


def refit_support(X, y, W, v, *, support=None, epochs=5, batch_size=20, learning_rate=1e-3, train_v=False,
                  activation="relu2", X_test=None, y_test=None, dtype=np.float64, random_state=None,
                  on_divergence="raise", chunk_size=None,
                  loss_history=True):
    """Train on a fixed support (debiasing after hard thresholding, or an oracle-support fit).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
        Starting weights; entries outside the support are set to zero.
    v : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    support : ndarray of bool of W's shape or None, default=None
        Weights allowed to be non-zero; None means ``W != 0``.
    epochs : int, default=5
        Epochs on the support.
    batch_size : int or None, default=20
    learning_rate : float or ndarray of shape (n_models,), default=1e-3
    train_v : bool, default=False
    activation : str, Activation or callable, default="relu2"
    X_test, y_test : ndarray or None, default=None
    dtype : numpy dtype, default=np.float64
    random_state : None, int, Generator or sequence of n_models of them, default=None
    on_divergence : {"raise", "flag"}, default="raise"
    chunk_size : int or None, default=None
    loss_history : bool, default=True

    Returns
    -------
    result : BaselineResult
        ``W`` zero outside ``support`` (the support never grows), ``support`` as used.
    """
    owner = "refit_support"
    X, y, Wb, vb, single = _prepare(X, y, W, v, owner)
    epochs = _common(epochs, owner)
    mask = Wb != 0 if support is None else np.broadcast_to(np.asarray(support, dtype=bool), Wb.shape).copy()
    tr = _Trainer(X, y, batch_size=batch_size, learning_rate=learning_rate, train_v=train_v,
                  activation=activation, X_test=X_test, y_test=y_test, dtype=dtype,
                  rngs=_streams(random_state, Wb.shape[0]), on_divergence=on_divergence, chunk_size=chunk_size,
                  loss_history=loss_history)
    Wr, vr = tr.run(Wb * mask, vb, epochs, mask=mask)
    return tr.result(Wr * mask, vr, single, mask, {"refit_epochs": epochs})


@_with_common_doc
@_staged
def iht_refit(X, y, W0, v0, *, sparsifier, epochs=25, refit_epochs=5, pretrain_epochs=5, batch_size=20,
              learning_rate=1e-3, train_v=False, activation="relu2", X_test=None, y_test=None, dtype=np.float64,
              random_state=None, on_divergence="raise", chunk_size=None,
              loss_history=True):
    """IHT followed by a refit of its final support (debiasing), within one epoch budget.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    v0 : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    sparsifier : Sparsifier, dict, None or sequence of them
        IHT's hard-thresholding operator (see :func:`sparsenet.train.train_iht_batched`).
    refit_epochs : int, default=5
        Epochs on the final IHT support, taken from ``epochs`` (IHT gets ``epochs − refit_epochs``).
    pretrain_epochs : int, default=5
        Dense epochs at the start of the IHT stage.
    {common}

    Returns
    -------
    result : BaselineResult
        ``support`` = the IHT support (W != 0 after the last thresholding), unchanged by the refit.
    """
    owner = "iht_refit"
    X, y, W, v, single = _prepare(X, y, W0, v0, owner)
    epochs = _common(epochs, owner)
    refit_epochs = check_scalar(refit_epochs, "refit_epochs", kind="int", low=0, high=epochs, owner=owner)
    if isinstance(sparsifier, (list, tuple)):
        sparsifier = [get_sparsifier(s) for s in sparsifier]
    tr = _Trainer(X, y, batch_size=batch_size, learning_rate=learning_rate, train_v=train_v,
                  activation=activation, X_test=X_test, y_test=y_test, dtype=dtype,
                  rngs=_streams(random_state, W.shape[0]), on_divergence=on_divergence, chunk_size=chunk_size,
                  loss_history=loss_history)

    def stages(W, v):
        W, v = yield _Stage(W, v, epochs - refit_epochs, sparsifiers=sparsifier, pretrain_epochs=pretrain_epochs,
                            sparsify_last=True)
        mask = np.nan_to_num(W) != 0
        W, v = yield _Stage(W, v, refit_epochs, mask=mask)
        return tr.result(W * mask, v, single, mask, {"iht_epochs": epochs - refit_epochs,
                                                     "refit_epochs": refit_epochs})

    return tr, stages(W, v)
