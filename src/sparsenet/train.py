"""Iterative hard thresholding (IHT) training of one-hidden-layer networks, many models at once.

The loss is the mean squared error L(W, v) = mean_i (Σ_j v_j φ(w_jᵀx_i) − y_i)². IHT (Jain, Tewari
and Kar, 2014) takes gradient steps on L and, at the start of every epoch after ``pretrain_epochs``
dense epochs, replaces W by its sparsification (``Threshold``, ``TopFraction``, ...); once more
after the last epoch when ``sparsify_last`` so that the returned W is exactly sparse.

Every model carries a leading batch axis: ``train_iht_batched`` trains B independent models (own
seed, sparsifier, learning rate, pre-training length, data set) with one batched forward and one
batched backward matrix product per step; ``train_iht`` is the B = 1 case.
"""

from dataclasses import dataclass

import numpy as np

from ._validation import check_data, check_random_state, check_scalar, check_weights
from .activations import get_activation
from .sparsify import get_sparsifier

__all__ = ["IHTResult", "train_iht", "train_iht_batched", "loss_and_grad", "full_batch_step"]

_DIVERGED = 1e30  # a loss above this counts as divergence (the next steps overflow anyway)


@dataclass
class IHTResult:
    """Outcome of IHT training.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_hidden) or (n_models, n_features, n_hidden)
    v : ndarray of shape (n_hidden,) or (n_models, n_hidden)
    history : dict of ndarray
        ``"train_loss"``, ``"test_loss"`` (NaN without a test set) and ``"nnz"``, one entry per epoch
        plus the initial state at index 0: shape (epochs + 1,) or (n_models, epochs + 1).
    n_iter_ : int
        Number of epochs run.
    diverged : bool or ndarray of shape (n_models,)
        Models whose loss became non-finite (only with ``on_divergence="flag"``; their W, v are NaN).
    """

    W: np.ndarray
    v: np.ndarray
    history: dict
    n_iter_: int
    diverged: np.ndarray | bool = False


def _forward(Xb, W, v, act):
    """Pre-activations Z (B, m, k), activations A and predictions (B, m)."""
    Z = np.matmul(Xb, W)
    A = act.function(Z)
    return Z, A, np.matmul(A, v[:, :, None])[..., 0]


def loss_and_grad(X, y, W, v, activation="relu2"):
    """Mean squared error and its gradients for a batch of models.

    Parameters
    ----------
    X : ndarray of shape (B, m, d)
    y : ndarray of shape (B, m)
    W : ndarray of shape (B, d, k)
    v : ndarray of shape (B, k)
    activation : str, Activation or callable, default="relu2"

    Returns
    -------
    loss : ndarray of shape (B,)
        mean_i (ŷ_i − y_i)².
    grad_W : ndarray of shape (B, d, k)
        (2/m) Xᵀ [(ŷ − y) ⊙ φ'(XW) ⊙ v].
    grad_v : ndarray of shape (B, k)
        (2/m) φ(XW)ᵀ (ŷ − y).
    """
    act = get_activation(activation)
    Z, A, pred = _forward(X, W, v, act)
    r = pred - y
    m = X.shape[-2]
    G = r[..., None] * act.derivative(Z) * v[:, None, :]
    grad_W = np.matmul(np.swapaxes(X, -1, -2), G) * (2.0 / m)
    grad_v = np.matmul(np.swapaxes(A, -1, -2), r[..., None])[..., 0] * (2.0 / m)
    return np.mean(r * r, axis=-1), grad_W, grad_v


def _chunks(n, chunk_size):
    step = n if not chunk_size else int(chunk_size)
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def _default_chunk(n, d, k, B, itemsize):
    # Bound the n-sized temporaries (Z, G: chunk×B·k each, plus the gathered rows) to ~64 MiB.
    per_row = itemsize * (4 * B * k + d)
    return int(max(1024, min(n, (64 << 20) // max(per_row, 1))))


def full_batch_step(X, y, W, v, activation, *, chunk_size=None, want_grad=True):
    """Loss and full-data gradient of B models sharing one data set, streaming X in row chunks.

    The B models are stacked into one d×(B·k) matrix so that each chunk costs exactly one forward
    product X_c·W and one backward product X_cᵀ·G for all models together.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    W : ndarray of shape (B, d, k)
    v : ndarray of shape (B, k)
    activation : Activation
    chunk_size : int or None
        Rows per chunk; None picks a size that keeps the temporaries near 64 MiB.
    want_grad : bool, default=True

    Returns
    -------
    loss : ndarray of shape (B,)
    grad_W : ndarray of shape (B, d, k) or None
    grad_v : ndarray of shape (B, k) or None
    """
    n, d = X.shape
    B, _, k = W.shape
    Wcat = np.ascontiguousarray(np.moveaxis(W, 0, 1).reshape(d, B * k))
    chunk_size = chunk_size or _default_chunk(n, d, k, B, X.itemsize)
    loss = np.zeros(B, dtype=W.dtype)
    gW = np.zeros((d, B * k), dtype=W.dtype) if want_grad else None
    gv = np.zeros((B, k), dtype=W.dtype) if want_grad else None
    for sl in _chunks(n, chunk_size):
        Xc = X[sl]
        Z = (Xc @ Wcat).reshape(-1, B, k)
        A = activation.function(Z)
        r = np.einsum("mbk,bk->mb", A, v) - y[sl, None]
        loss += np.einsum("mb,mb->b", r, r)
        if want_grad:
            G = activation.derivative(Z)
            G *= r[:, :, None]
            G *= v[None]
            gW += Xc.T @ G.reshape(-1, B * k)
            gv += np.einsum("mbk,mb->bk", A, r)
    loss /= n
    if not want_grad:
        return loss, None, None
    gW = np.moveaxis(gW.reshape(d, B, k), 1, 0) * (2.0 / n)
    return loss, gW, gv * (2.0 / n)


def _per_model(value, B, name, dtype=float):
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(B, arr, dtype=dtype)
    if arr.shape != (B,):
        raise ValueError(f"The '{name}' parameter must be a scalar or have shape ({B},) (one per model). "
                         f"Got shape {arr.shape} instead.")
    return arr


def _losses(X, y, W, v, data_index, act, chunk_size):
    """Full-data MSE of each model on its own data set (X: (P, n, d))."""
    out = np.empty(W.shape[0], dtype=np.float64)
    for p in np.unique(data_index):
        sel = np.flatnonzero(data_index == p)
        out[sel] = full_batch_step(X[p], y[p], W[sel], v[sel], act, chunk_size=chunk_size, want_grad=False)[0]
    return out


def train_iht_batched(X, y, W0, v0, *, sparsifiers, epochs=25, batch_size=20, learning_rate=1e-3,
                      pretrain_epochs=5, train_v=False, activation="relu2", data_index=None, X_test=None,
                      y_test=None, sparsify_last=True, mask=None, prox=None, dtype=np.float64,
                      random_states=None, on_divergence="raise", chunk_size=None):
    """Train B one-hidden-layer networks by IHT as one stacked array computation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_problems, n_samples, n_features)
        Training inputs: one data set shared by all models, or P data sets of the same shape.
    y : ndarray of shape (n_samples,) or (n_problems, n_samples)
    W0 : ndarray of shape (n_models, n_features, n_hidden)
        Initial hidden weights.
    v0 : ndarray of shape (n_models, n_hidden)
        Initial output weights.
    sparsifiers : Sparsifier, dict, None or sequence of n_models of them
        Hard-thresholding operator of each model (None: dense).
    epochs : int, default=25
        Number of passes over the data, ``>= 0``.
    batch_size : int or None, default=20
        Minibatch size (samples reshuffled every epoch, each model with its own generator);
        None means full-batch gradient descent, one step per epoch.
    learning_rate : float or ndarray of shape (n_models,), default=1e-3
        Step size, ``> 0``.
    pretrain_epochs : int or ndarray of shape (n_models,), default=5
        Dense epochs before the first sparsification, ``>= 0``.
    train_v : bool or ndarray of shape (n_models,), default=False
        Whether the output weights are trained; otherwise they stay at v0.
    activation : str, Activation or callable, default="relu2"
    data_index : ndarray of shape (n_models,) or None, default=None
        Data set (row of X) of each model; None means all models use X[0].
    X_test, y_test : ndarray or None, default=None
        Test set(s), shaped like X and y, for the per-epoch test loss.
    sparsify_last : bool, default=True
        Apply the sparsifier once more after the last epoch so that W is exactly sparse (the
        report's code did not).
    mask : ndarray of bool, shape (n_features, n_hidden) or (n_models, n_features, n_hidden), default=None
        Fixed support: weights outside the mask are held at zero (fine-tuning on a support).
    prox : callable or None, default=None
        ``prox(W, step) -> W`` applied after every gradient step, with ``step`` of shape
        (n_models, 1, 1) (e.g. soft thresholding for an L1 penalty).
    dtype : numpy dtype, default=np.float64
        Computation precision (float32 halves memory and time on large problems).
    random_states : sequence of n_models seeds or Generators, or None, default=None
        Minibatch shuffling streams, one per model.
    on_divergence : {"raise", "flag"}, default="raise"
        A non-finite loss raises ValueError, or marks the model diverged and freezes it (W, v NaN).
    chunk_size : int or None, default=None
        Rows per chunk of the full-data passes (memory bound for large n).

    Returns
    -------
    result : IHTResult
        With a leading model axis on W, v, the history arrays and ``diverged``.

    Raises
    ------
    ValueError
        Bad shapes or ranges, or divergence with ``on_divergence="raise"``.

    Notes
    -----
    Step: W ← W − η ∇_W L on a minibatch, with ∇_W L = (2/m) Xᵀ[(ŷ − y) ⊙ φ'(XW) ⊙ vᵀ]; for B models
    both products are single batched ``matmul`` calls. Sparsifiers, divergence checks and the
    history run once per epoch, so their cost does not grow with the number of steps.
    """
    X, y = check_data(X, y, dtype=dtype, allow_batch=True)
    if X.ndim == 2:
        X, y = X[None], y[None]
    P, n, d = X.shape
    W, v = check_weights(W0, v0, d, dtype=dtype, allow_batch=True)
    if W.ndim == 2:
        raise ValueError(f"Input 'W0' of train_iht_batched must be 3-D (n_models, n_features, n_hidden). "
                         f"Got shape {W.shape} instead; use train_iht for one model.")
    B, _, k = W.shape
    owner = "train_iht"
    epochs = check_scalar(epochs, "epochs", kind="int", low=0, owner=owner)
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1, owner=owner)
        batch_size = min(batch_size, n)
    lr = _per_model(learning_rate, B, "learning_rate")
    if not np.all(np.isfinite(lr) & (lr > 0)):
        raise ValueError(f"The 'learning_rate' parameter of {owner} must be a float in the range (0, inf). "
                         f"Got {learning_rate!r} instead.")
    pre = _per_model(pretrain_epochs, B, "pretrain_epochs", dtype=float)
    if np.any(pre < 0) or np.any(pre != np.round(pre)):
        raise ValueError(f"The 'pretrain_epochs' parameter of {owner} must be an int in the range [0, inf). "
                         f"Got {pretrain_epochs!r} instead.")
    tv = _per_model(train_v, B, "train_v", dtype=bool)
    if on_divergence not in ("raise", "flag"):
        raise ValueError(f"The 'on_divergence' parameter must be 'raise' or 'flag'. Got {on_divergence!r} instead.")
    if isinstance(sparsifiers, (list, tuple)):
        if len(sparsifiers) != B:
            raise ValueError(f"The 'sparsifiers' parameter must hold one sparsifier per model ({B}). "
                             f"Got {len(sparsifiers)} instead.")
        sps = [get_sparsifier(s) for s in sparsifiers]
    else:
        sps = [get_sparsifier(sparsifiers)] * B
    data_index = np.zeros(B, dtype=np.intp) if data_index is None else np.asarray(data_index, dtype=np.intp)
    if data_index.shape != (B,) or data_index.min(initial=0) < 0 or data_index.max(initial=0) >= P:
        raise ValueError(f"The 'data_index' parameter must have shape ({B},) with values in [0, {P - 1}]. "
                         f"Got {data_index!r} instead.")
    has_test = X_test is not None
    if has_test:
        X_test, y_test = check_data(X_test, y_test, dtype=dtype, allow_batch=True)
        if X_test.ndim == 2:
            X_test, y_test = X_test[None], y_test[None]
        if X_test.shape[0] != P or X_test.shape[2] != d:
            raise ValueError(f"Input 'X_test' must have shape (n_test, {d}) or ({P}, n_test, {d}) to match X. "
                             f"Got {X_test.shape} instead.")
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), W.shape).astype(dtype)
        W *= mask
    act = get_activation(activation)
    if random_states is None:
        random_states = [None] * B
    if len(random_states) != B:
        raise ValueError(f"The 'random_states' parameter must hold one seed per model ({B}). "
                         f"Got {len(random_states)} instead.")
    rngs = [check_random_state(rs) for rs in random_states]

    hist_train = np.full((B, epochs + 1), np.nan)
    hist_test = np.full((B, epochs + 1), np.nan)
    hist_nnz = np.zeros((B, epochs + 1), dtype=np.int64)
    diverged = np.zeros(B, dtype=bool)
    step = lr.astype(dtype)[:, None, None]
    v_step = (lr * tv).astype(dtype)[:, None]

    def record(e):
        with np.errstate(all="ignore"):
            hist_train[:, e] = _losses(X, y, W, v, data_index, act, chunk_size)
            if has_test:
                hist_test[:, e] = _losses(X_test, y_test, W, v, data_index, act, chunk_size)
        hist_nnz[:, e] = np.count_nonzero(W, axis=(1, 2))
        bad = ~np.isfinite(hist_train[:, e]) | (hist_train[:, e] > _DIVERGED)
        bad &= ~diverged
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            if on_divergence == "raise":
                raise ValueError(
                    f"Training diverged at epoch {e} (train loss = {hist_train[b, e]:.3g} for model {b}); "
                    f"try a smaller learning_rate (got {lr[b]:g}), e.g. {lr[b] / 10:g}."
                )
            diverged[bad] = True
            # Freeze diverged models at zero so they stop producing overflow; report them as NaN.
            W[bad] = 0.0
            v[bad] = 0.0
            step[bad] = 0.0
            v_step[bad] = 0.0

    def sparsify(selected):
        for b in np.flatnonzero(selected & ~diverged):
            W[b] = sps[b](W[b])

    record(0)
    full = batch_size is None
    for e in range(epochs):
        sparsify(pre <= e)
        with np.errstate(all="ignore"):
            if full:
                for p in np.unique(data_index):
                    sel = np.flatnonzero(data_index == p)
                    _, gW, gv = full_batch_step(X[p], y[p], W[sel], v[sel], act, chunk_size=chunk_size)
                    W[sel] -= step[sel] * gW
                    v[sel] -= v_step[sel] * gv
                    if mask is not None:
                        W[sel] *= mask[sel]
                    if prox is not None:
                        W[sel] = prox(W[sel], step[sel])
            else:
                order = np.stack([rng.permutation(n) for rng in rngs])  # (B, n)
                rows_of = data_index[:, None]
                for s in range(0, n, batch_size):
                    rows = order[:, s:s + batch_size]
                    Xb = X[rows_of, rows]
                    _, gW, gv = loss_and_grad(Xb, y[rows_of, rows], W, v, act)
                    W -= step * gW
                    v -= v_step * gv
                    if mask is not None:
                        W *= mask
                    if prox is not None:
                        W = prox(W, step)
        record(e + 1)
    if sparsify_last and epochs > 0:
        sparsify(np.ones(B, dtype=bool))
        hist_nnz[:, -1] = np.count_nonzero(W, axis=(1, 2))
    W[diverged] = np.nan
    v[diverged] = np.nan
    history = {"train_loss": hist_train, "test_loss": hist_test, "nnz": hist_nnz}
    return IHTResult(W=W, v=v, history=history, n_iter_=epochs, diverged=diverged)


def train_iht(X, y, W0, v0, *, sparsifier, epochs=25, batch_size=20, learning_rate=1e-3, pretrain_epochs=5,
              train_v=False, activation="relu2", X_test=None, y_test=None, sparsify_last=True, mask=None,
              prox=None, dtype=np.float64, random_state=None, chunk_size=None):
    """Train one sparse one-hidden-layer network by iterative hard thresholding.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    W0 : ndarray of shape (n_features, n_hidden)
        Initial hidden weights (e.g. from :func:`sparsenet.tensor_init`).
    v0 : ndarray of shape (n_hidden,)
        Initial output weights.
    sparsifier : Sparsifier, dict or None
        ``Threshold(t)``, ``TopFraction(p)``, ``Dense()`` (None) or any callable W -> W.
    epochs : int, default=25
        Number of epochs, ``>= 0``.
    batch_size : int or None, default=20
        Minibatch size (reshuffled every epoch); None for full-batch gradient descent.
    learning_rate : float, default=1e-3
        Step size, ``> 0``.
    pretrain_epochs : int, default=5
        Dense epochs before the first sparsification.
    train_v : bool, default=False
        Train the output weights too (otherwise v stays at v0).
    activation : str, Activation or callable, default="relu2"
    X_test, y_test : ndarray or None, default=None
        Test set for the per-epoch test loss.
    sparsify_last : bool, default=True
        Sparsify once more after the last epoch, so the returned W is exactly sparse.
    mask : ndarray of bool of shape (n_features, n_hidden) or None, default=None
        Fixed support: weights outside it stay zero.
    prox : callable or None, default=None
        ``prox(W, step) -> W`` after every gradient step (W of shape (1, d, k)).
    dtype : numpy dtype, default=np.float64
    random_state : None, int or numpy.random.Generator, default=None
        Minibatch shuffling.
    chunk_size : int or None, default=None
        Rows per chunk of full-data passes.

    Returns
    -------
    result : IHTResult
        ``W`` (d, k), ``v`` (k,), ``history`` (arrays of length epochs + 1, index 0 = initial state),
        ``n_iter_``.

    Raises
    ------
    ValueError
        Bad input, or divergence (non-finite loss): the message suggests a smaller learning rate.

    Examples
    --------
    >>> from sparsenet import make_planted, tensor_init, train_iht, Threshold
    >>> prob = make_planted(2000, 10, 3, thresh_gt=0.15, random_state=0)
    >>> W0, v0 = tensor_init(prob.X, prob.y, 3, random_state=0)
    >>> res = train_iht(prob.X, prob.y, W0, v0, sparsifier=Threshold(0.075), epochs=2, random_state=0)
    >>> res.W.shape
    (10, 3)
    """
    W0 = np.asarray(W0)
    v0 = np.asarray(v0)
    if W0.ndim != 2:
        raise ValueError(f"Input 'W0' must be 2-D of shape (n_features, n_hidden). Got shape {W0.shape} instead.")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"Input 'X' must be 2-D of shape (n_samples, n_features). Got shape {X.shape} instead.")
    res = train_iht_batched(
        X, y, W0[None], v0[None], sparsifiers=sparsifier, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, pretrain_epochs=pretrain_epochs, train_v=train_v, activation=activation,
        X_test=X_test, y_test=y_test, sparsify_last=sparsify_last,
        mask=None if mask is None else np.asarray(mask)[None], prox=prox, dtype=dtype,
        random_states=[random_state], on_divergence="raise", chunk_size=chunk_size,
    )
    history = {key: val[0] for key, val in res.history.items()}
    return IHTResult(W=res.W[0], v=res.v[0], history=history, n_iter_=res.n_iter_, diverged=False)
