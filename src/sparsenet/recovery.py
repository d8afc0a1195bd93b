"""One call from data to a sparse network: tensor initialization, output signs from data, a solver.

:func:`recover` sees only (X, y) and hyperparameters. Output signs are chosen by the training loss
after a short dense fit (:func:`search_signs`); the initialization is restarted when the loss stays
high; the sparsity-constrained fit is one of :mod:`sparsenet.solvers`.
"""

import hashlib
import itertools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._threads import one_blas_thread
from ._validation import check_data, check_random_state, check_scalar
from .solvers import (GraSP, NetLeastSquares, _levenberg_marquardt, _levenberg_marquardt_many,
                      get_solver)

__all__ = ["RecoverResult", "recover", "search_signs"]


@dataclass
class RecoverResult:
    """Outcome of :func:`recover`.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_hidden)
    v : ndarray of shape (n_hidden,)
    loss : float
        Training mean squared error of the returned model.
    history : dict
        The chosen start's solver history (``"loss"``, ``"nnz"``), its ``"n_iter"``,
        ``"stop_reason"``, the sign search's ``"sign_losses"`` (loss of each pattern tried),
        ``"start_losses"`` (final loss of every start), ``"start_seconds"`` (time of each start's
        initialization and sign search) and ``"start_reused"`` (whether it came from ``start_cache``).
    solver : str
        Name of the solver used (the resolved one for ``solver="auto"``).
    n_starts : int
        Initializations tried (1 + restarts).
    warnings : list of str
        Warnings raised by the initializations (collected, not re-emitted).
    """

    W: np.ndarray
    v: np.ndarray
    loss: float
    history: dict
    solver: str
    n_starts: int
    warnings: list = field(default_factory=list)


def _dense_fit(datafit, W, v, fit_iter):
    """Short dense Levenberg–Marquardt fit of W with v held; returns (W, loss)."""
    theta = datafit.pack({"W": W, "v": v})
    theta = _levenberg_marquardt(datafit, theta, datafit.indices("W"), fit_iter, tol=1e-6)
    return datafit.unpack(theta)["W"].copy(), datafit.value(theta)


def search_signs(X, y, W0, v0, *, activation="relu2", strategy="auto", fit_iter=5, max_exhaustive=8,
                 max_samples=1000, random_state=None):
    """Choose the output signs v ∈ {±1}^k by the training loss after a short dense fit.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden)
        Starting hidden weights (e.g. from :func:`sparsenet.tensor_init`).
    v0 : ndarray of shape (n_hidden,)
        Starting output weights; their signs start the greedy search.
    activation : str, Activation or callable, default="relu2"
    strategy : {"auto", "exhaustive", "greedy", "joint"}, default="auto"
        ``"exhaustive"`` scores all 2^k patterns; ``"greedy"`` starts from sign(v0) and applies the
        best single flip while it lowers the loss (at most k rounds of k fits); ``"joint"`` fits W
        and a real-valued v together from (W0, sign(v0)) and keeps sign(v) (one fit of 4·fit_iter
        iterations, then the pattern is scored as the others); ``"auto"`` is exhaustive for
        k <= ``max_exhaustive``, greedy beyond.
    fit_iter : int, default=5
        Levenberg–Marquardt iterations of each dense fit (W only, v held at the pattern).
    max_exhaustive : int, default=8
        Largest k searched exhaustively under ``"auto"``.
    max_samples : int or None, default=1000
        Patterns are scored on a random subset of at most this many rows (None: all rows); the
        ranking needs far fewer rows than the final fit, and each fit costs O(rows·(dk)²).
    random_state : None, int or numpy.random.Generator, default=None
        Draws that subset.

    Returns
    -------
    v : ndarray of shape (n_hidden,)
        The best pattern (entries ±1).
    W : ndarray of shape (n_features, n_hidden)
        The dense fit of W under it (on the scoring rows).
    losses : dict
        Pattern (tuple of ±1) -> loss after its fit, for every pattern scored.
    """
    X, y = check_data(X, y)
    k = np.shape(W0)[1]
    if strategy not in ("auto", "exhaustive", "greedy", "joint"):
        raise ValueError(f"The 'strategy' parameter of search_signs must be 'auto', 'exhaustive', 'greedy' or "
                         f"'joint'. Got {strategy!r} instead.")
    check_scalar(fit_iter, "fit_iter", kind="int", low=1, owner="search_signs")
    if max_samples is not None:
        max_samples = check_scalar(max_samples, "max_samples", kind="int", low=1, owner="search_signs")
        if len(y) > max_samples:
            rows = np.sort(check_random_state(random_state).choice(len(y), max_samples, replace=False))
            X, y = X[rows], y[rows]
    datafit = NetLeastSquares(X, y, k, activation)
    W0 = np.asarray(W0, dtype=float)
    scored = {}

    def score(patterns):
        """Fit every pattern not scored yet (all in one batched fit); their losses."""
        todo = list(dict.fromkeys(p for p in patterns if p not in scored))
        if todo:
            W, f = _levenberg_marquardt_many(datafit, W0, np.array(todo), fit_iter, tol=1e-6)
            scored.update({p: (W[i], float(f[i])) for i, p in enumerate(todo)})
        return [scored[p][1] for p in patterns]

    with one_blas_thread():
        if strategy == "exhaustive" or (strategy == "auto" and k <= max_exhaustive):
            score(list(itertools.product((1.0, -1.0), repeat=k)))
        elif strategy == "joint":
            theta = datafit.pack({"W": W0, "v": np.where(np.asarray(v0) < 0, -1.0, 1.0)})
            free = np.concatenate([datafit.indices("W"), datafit.indices("v")])
            theta = _levenberg_marquardt(datafit, theta, free, 4 * fit_iter, tol=1e-6)
            score([tuple(np.where(datafit.unpack(theta)["v"] < 0, -1.0, 1.0))])
        else:
            best = tuple(np.where(np.asarray(v0) < 0, -1.0, 1.0))
            (f_best,) = score([best])
            for _ in range(k):
                flips = [best[:j] + (-best[j],) + best[j + 1:] for j in range(k)]
                f_flip = score(flips)
                j = int(np.argmin(f_flip))
                if f_flip[j] >= f_best:
                    break
                best, f_best = flips[j], f_flip[j]
    pattern = min(scored, key=lambda p: scored[p][1])
    return np.array(pattern), scored[pattern][0], {p: val[1] for p, val in scored.items()}


def _initial(X, y, k, activation, rng, caught):
    from .initializers import random_init
    from .tensor_init import tensor_init

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            W0, v0 = tensor_init(X, y, k, activation=activation, random_state=rng)
        except ValueError as exc:  # tensor_init says when it cannot work: fall back to a random start
            caught.append(f"tensor_init failed ({exc}); random start")
            W0, v0 = random_init(X.shape[1], k, random_state=rng)
    caught += [f"{w.category.__name__}: {w.message}" for w in rec]
    return W0, v0


def _rng_key(rng):
    """The state of ``rng`` as a hashable value (equal states: equal draws from here on)."""
    def freeze(value):
        if isinstance(value, dict):
            return tuple((key, freeze(val)) for key, val in value.items())
        if isinstance(value, np.ndarray):  # e.g. MT19937's key, Philox's counter
            return value.dtype.str, value.shape, value.tobytes()
        return value

    return freeze(rng.bit_generator.state)


def _problem_key(X, y, k, activation):
    """What a start depends on besides the random state and the sign strategy: a cache passed to calls
    on other data, k or activation then never hands one of them another problem's start."""
    digest = hashlib.sha256(np.ascontiguousarray(X))  # ~2x blake2b's speed where the CPU has SHA instructions
    digest.update(np.ascontiguousarray(y))
    act = activation if isinstance(activation, str) else _Same(activation)
    return X.shape, digest.digest(), int(k), act


class _Same:
    """Key part of a non-string activation: equal only for the same object, which it keeps alive (a bare
    id, once its object is freed, can be given to another activation and name its start)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def recover(X, y, k, *, sparsifier, activation="relu2", solver="auto", train_v=False, signs="auto",
            max_starts=3, restart_tol=1e-8, random_state=None, start_cache=None):
    r"""Recover a sparse one-hidden-layer network ŷ = φ(XW) v from (X, y).

    Pipeline (only X, y and the arguments are used):

    1. :func:`sparsenet.tensor_init` gives W0 (and a sign guess v0);
    2. :func:`search_signs` picks v ∈ {±1}^k by the loss after a short dense fit of W;
    3. the solver fits W under the sparsifier from that dense fit, v held at the signs (or
       trained with ``train_v``);
    4. while the relative training loss L/mean(y²) exceeds ``restart_tol``, steps 1–3 restart
       from a new initialization (``max_starts`` in all), unless two starts end at the same loss
       (relative difference ≤ 1e-6: the same minimum found twice, as on noisy data); the start
       with the lowest loss wins.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    k : int
        Number of hidden units.
    sparsifier : Sparsifier, dict, None or callable
        Hard-thresholding operator on W (``Threshold(t)``, ``TopFraction(p)``, ...).
    activation : str, Activation or callable, default="relu2"
    solver : str or solver object, default="auto"
        A name in :data:`sparsenet.solvers.SOLVERS` (``"sgd_iht"``, ``"niht"``, ``"htp"``,
        ``"grasp"``) or an object with ``solve``. ``"auto"`` is GraSP with Levenberg–Marquardt
        fits: on the planted problems of the sample-efficiency study (d = 20, k = 5, κ = 2,
        thresh_gt = 0.15, noise-free, 40 trials per n, ``benchmarks/bench_solvers.py``) it
        recovered W* (error < 1e-3) in 38/40 trials at n = 200 (95 % Wilson interval
        [0.83, 0.99]) against 14/40 for HTP, 6/40 for NIHT and 0/40 for the report's SGD IHT.
        Each GraSP iteration fits on the support merged with the largest gradient entries, so it
        can add true entries that the starting support misses.
    train_v : bool, default=False
        Fit the output weights too (after the sign search); otherwise v = the chosen signs, the
        planted model's convention v ∈ {±1}^k.
    signs : {"auto", "exhaustive", "greedy", "init"}, default="auto"
        Sign search strategy (see :func:`search_signs`); ``"init"`` keeps tensor_init's signs.
    max_starts : int, default=3
        Initializations tried at most.
    restart_tol : float, default=1e-8
        Relative training loss below which no restart is made (noise-free data reach ~1e-28; noisy
        data stop when two starts agree).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the initializations (and the SGD solver's shuffling).
    start_cache : dict or None, default=None
        Shares the starts (steps 1–2, the costly part for small problems) between calls on the same
        X, y, k and activation, e.g. one call per solver: a start is computed once per random state
        and sign strategy, and the calls that reuse it return the same result as without the cache
        (the random state is restored to where the start left it). Starts are keyed by the data
        (a digest of X and y), k and activation (an object by identity; the cache holds it) as well,
        so one dict may serve several problems.
        ``history["start_seconds"]``
        holds each start's measured time (the time of its first computation when reused) and
        ``history["start_reused"]`` which starts were reused. Not used
        with the SGD solver, whose shuffling shares the random state.

    Returns
    -------
    result : RecoverResult
        ``.W``, ``.v``, ``.loss``, ``.history``, ``.solver``, ``.n_starts``, ``.warnings``.

    Raises
    ------
    ValueError
        Bad input (named parameter, allowed values, value received).

    Examples
    --------
    >>> from sparsenet import make_planted, recover, Threshold
    >>> prob = make_planted(500, 20, 5, thresh_gt=0.15, random_state=0)
    >>> res = recover(prob.X, prob.y, 5, sparsifier=Threshold(0.075), random_state=0)
    >>> res.W.shape, res.solver
    ((20, 5), 'grasp')
    """
    X, y = check_data(X, y)
    k = check_scalar(k, "k", kind="int", low=1, owner="recover")
    max_starts = check_scalar(max_starts, "max_starts", kind="int", low=1, owner="recover")
    restart_tol = check_scalar(restart_tol, "restart_tol", low=0.0, owner="recover")
    if signs not in ("auto", "exhaustive", "greedy", "init"):
        raise ValueError(f"The 'signs' parameter of recover must be 'auto', 'exhaustive', 'greedy' or 'init'. "
                         f"Got {signs!r} instead.")
    if not isinstance(train_v, (bool, np.bool_)):
        raise ValueError(f"The 'train_v' parameter of recover must be a bool. Got {train_v!r} instead.")
    rng = check_random_state(random_state)
    if isinstance(solver, str) and solver == "auto":
        name, sol = "auto", GraSP()
    else:
        sol = get_solver(solver)
        name = solver if isinstance(solver, str) else type(solver).__name__
    if name == "sgd_iht":
        sol.random_state = rng
    resolved = "grasp" if name == "auto" else name
    datafit = NetLeastSquares(X, y, k, activation)
    scale = max(float(y @ y) / len(y), 1e-300)
    caught, best, starts, seconds, reused = [], None, [], [], []
    cache = {} if start_cache is None or name == "sgd_iht" else start_cache
    problem = () if start_cache is None else _problem_key(X, y, k, activation)
    for start in range(max_starts):
        key = (signs, _rng_key(rng)) + problem
        reused.append(key in cache)
        if key not in cache:
            t0 = time.perf_counter()
            msgs = []
            W0, v0 = _initial(X, y, k, activation, rng, msgs)
            if signs == "init":
                v, W, sign_losses = np.where(v0 < 0, -1.0, 1.0), W0, {}
                if name != "sgd_iht":
                    W, _ = _dense_fit(datafit, W0, v, 5)
            else:
                v, W, sign_losses = search_signs(X, y, W0, v0, activation=activation, strategy=signs,
                                                 random_state=rng)
            if name == "sgd_iht":
                W = W0 if signs == "init" else W  # the report's method starts from the init (or the sign fit)
            cache[key] = (v, W, sign_losses, msgs, rng.bit_generator.state, time.perf_counter() - t0)
        v, W, sign_losses, msgs, state, took = cache[key]
        # the cached start stays as computed whatever the solver or the caller does with the result
        v, W, sign_losses = v.copy(), W.copy(), dict(sign_losses)
        rng.bit_generator.state = state  # where the start left the random state (a no-op when computed now)
        caught += msgs
        seconds.append(took)
        res = sol.solve(datafit, sparsifier, {"W": W, "v": v}, train=("W", "v") if train_v else ("W",))
        starts.append(res.loss)
        if best is None or res.loss < best[0].loss:
            best = (res, sign_losses)
        if best[0].loss <= restart_tol * scale:
            break
        if start > 0 and abs(res.loss - best[0].loss) <= 1e-6 * best[0].loss:
            break  # two starts reached the same minimum: another start is unlikely to find a lower one
    res, sign_losses = best
    history = {**res.history, "n_iter": res.n_iter, "stop_reason": res.stop_reason,
               "sign_losses": sign_losses, "start_losses": starts, "start_seconds": seconds,
               "start_reused": reused}
    return RecoverResult(W=res.W, v=res.v, loss=res.loss, history=history, solver=resolved,
                         n_starts=len(starts), warnings=caught)


