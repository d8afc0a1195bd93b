"""Iterative hard thresholding (IHT) training of one-hidden-layer networks, many models at once.

The loss is the mean squared error L(W, v) = mean_i (Σ_j v_j φ(w_jᵀx_i) − y_i)². IHT (Jain, Tewari
and Kar, 2014) takes gradient steps on L and, at the start of every epoch after ``pretrain_epochs``
dense epochs, replaces W by its sparsification (``Threshold``, ``TopFraction``, ...); once more
after the last epoch when ``sparsify_last`` so that the returned W is exactly sparse.

Every model carries a leading batch axis: ``train_iht_batched`` trains B independent models (own
seed, sparsifier, learning rate, pre-training length, data set) with one batched forward and one
batched backward matrix product per step; ``train_iht`` is the B = 1 case.

Compiled epochs.  By default a minibatch epoch of all models of a call, and the per-epoch losses of
problems with d <= 128, run in compiled code (:mod:`sparsenet._sgd_kernels`, numba): one call per
epoch instead of interpreter work per step.  It covers the shipped activations, masks and the L1
prox of :func:`sparsenet.baselines.l1_prox`; anything else, or ``SPARSENET_KERNELS=numpy``, runs the
numpy code below, which stays the reference the tests compare against (equal to rounding).

Performance notes (numpy path).  Minibatch steps run in preallocated buffers (``_MinibatchWorkspace``): one
gather of the B minibatches from [X | y], the forward product, a fused activation kernel that
yields φ and φ' from one pass (``_FUSED``), the backward product and the in-place update.
Full-data passes (full-batch steps, per-epoch losses) stream X in row chunks sized for the cache
(``_default_chunk``), with one forward product X_c·W and one backward product X_cᵀ·G per chunk
for all models stacked into one d × (B·k) matrix, and no n-sized temporaries.

Models that share a minibatch order (``order_groups``: the variants of one trial of a sweep) take the
grouped path (``_grouped_minibatch_epoch``): U groups × G models, one gather per group per step and
one forward product Xb (U, m, d) @ W (U, d, k·G) and one backward product Xbᵀ @ G (U, m, k·G) for all
of them, the weights kept in that layout for the whole epoch.
"""

import os
from dataclasses import dataclass

import numpy as np

from ._threads import one_blas_thread
from ._validation import check_data, check_random_state, check_scalar, check_weights
from .activations import ACTIVATIONS, get_activation
from .sparsify import Dense, Threshold, TopFraction, check_sparsifier_output, get_sparsifier

__all__ = ["IHTResult", "train_iht", "train_iht_batched", "loss_and_grad", "full_batch_step"]

_DIVERGED = 1e30  # a loss above this counts as divergence (the next steps overflow anyway)
_CHUNK_X_BYTES = 32 << 20  # full-data passes: bytes of one chunk of X
_CHUNK_TMP_BYTES = 4 << 20  # full-data passes: bytes of the chunk-sized temporaries
# Minibatch path: copy X into one [X | y] array (one gather per step) up to this size; 0: never (X, y
# are gathered from the stacked problems as they are: no copy, and no slower per step, measured).
_JOINT_BYTES = 0
_ONE_BLAS_THREAD = True  # minibatch training runs with one BLAS thread (see sparsenet._threads)


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


# ---------------------------------------------------------------------------------------------
# Fused activation kernels.  ``_fused(act)`` returns ``f(Z, A) -> s`` that writes φ(Z) into A and
# φ'(Z)/s into Z (in place), so a step needs no n-sized temporaries; ``s`` is a scalar folded
# into the per-model output weights (relu2: φ' = 2·max(z, 0) comes from the same maximum as
# φ = max(z, 0)², one pass instead of three).


def _fused_relu2(Z, A):
    np.maximum(Z, 0.0, out=Z)
    np.multiply(Z, Z, out=A)
    return 2.0


def _fused_relu(Z, A):
    np.maximum(Z, 0.0, out=A)
    np.greater(Z, 0.0, out=Z)
    return 1.0


def _fused_tanh(Z, A):
    np.tanh(Z, out=A)
    np.multiply(A, A, out=Z)
    np.subtract(1.0, Z, out=Z)
    return 1.0


def _fused_sigmoid(Z, A):
    # same operations, in the same order, as activations._sigmoid: 1/2 + tanh(z/2)/2
    np.multiply(Z, 0.5, out=A)
    np.tanh(A, out=A)
    np.multiply(A, 0.5, out=A)
    np.add(A, 0.5, out=A)
    np.subtract(1.0, A, out=Z)
    np.multiply(Z, A, out=Z)
    return 1.0


_FUSED = {"relu2": _fused_relu2, "relu": _fused_relu, "tanh": _fused_tanh, "sigmoid": _fused_sigmoid}


def _fused(act):
    """In-place value-and-derivative kernel of ``act`` (generic fallback for user activations)."""
    fn = _FUSED.get(act.name)
    if fn is not None and ACTIVATIONS.get(act.name) == act:
        return fn

    def generic(Z, A):
        A[...] = act.function(Z)
        Z[...] = act.derivative(Z)
        return 1.0

    generic.shipped = act.name if ACTIVATIONS.get(act.name) == act else None  # compiled kernel, if any
    return generic


# ---------------------------------------------------------------------------------------------
# Compiled epochs (sparsenet._sgd_kernels, numba).  The minibatch epoch functions below hand the
# whole epoch to one compiled loop when it can run it (a shipped activation; no prox other than
# an L1 soft threshold); the numpy code stays as the reference (tests compare both).
# SPARSENET_KERNELS=numpy (or _KERNELS = "numpy") selects the numpy path.

_KERNELS = os.environ.get("SPARSENET_KERNELS", "compiled")
_COMPILED_LOSS_MAX_D = 128  # per-epoch losses in compiled code up to this many features (BLAS above)


def _kernel_args(fused, prox):
    """(module, activation code, L1 levels per model or None), or None when the numpy path must run."""
    if _KERNELS == "numpy":
        return None
    name = {id(f): n for n, f in _FUSED.items()}.get(id(fused), getattr(fused, "shipped", None))
    l1 = None
    if prox is not None:
        l1 = getattr(prox, "l1_alpha", None)  # an L1 prox says so (sparsenet.baselines); others: numpy
        if l1 is None:
            return None
    try:
        from . import _sgd_kernels
    except ImportError:  # pragma: no cover - numba missing: the numpy path
        return None
    code = _sgd_kernels.ACTIVATION_CODES.get(name)
    return None if code is None else (_sgd_kernels, code, l1)


def _kernel_data(Xy):
    """X (N, d) and y as the kernel reads them: [X | y] itself with y in its last column, or (X, y)."""
    if isinstance(Xy, tuple):
        return np.ascontiguousarray(Xy[0]), np.ascontiguousarray(Xy[1]), -1
    return np.ascontiguousarray(Xy), Xy[:0, 0].copy(), Xy.shape[1] - 1


def _compiled_epoch(kern, Xy, order, Wf, vg, c, vc, batch_size, mask, l1, train_v):
    """Run ``kern`` (module, code, _) on C-contiguous (U, d, k·G) weights and (U, k, G) v, in place."""
    mod, code, _ = kern
    X, y, ycol = _kernel_data(Xy)
    dt = Wf.dtype
    empty = np.zeros((0,) * 3, dtype=dt)
    mod.epoch_kernel(Wf.shape[1], Wf.shape[2])(X, y, ycol, np.ascontiguousarray(order, dtype=np.intp), Wf, vg,
                      np.ascontiguousarray(c, dtype=dt), np.ascontiguousarray(vc, dtype=dt), code, int(batch_size),
                      empty if mask is None else np.ascontiguousarray(mask, dtype=dt),
                      np.zeros((0, 0), dtype=dt) if l1 is None else np.ascontiguousarray(l1, dtype=dt), bool(train_v))


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
    Z = np.matmul(X, W)
    A = np.empty_like(Z)
    s = _fused(act)(Z, A)  # A = φ(XW), Z = φ'(XW) / s
    r = np.matmul(A, v[..., None])[..., 0] - y
    m = X.shape[-2]
    Z *= (s * v)[..., None, :]
    Z *= r[..., None]
    grad_W = np.matmul(np.swapaxes(X, -1, -2), Z)
    grad_W *= 2.0 / m
    grad_v = np.matmul(np.swapaxes(A, -1, -2), r[..., None])[..., 0] * (2.0 / m)
    return np.mean(r * r, axis=-1), grad_W, grad_v


def _chunks(n, chunk_size):
    step = n if not chunk_size else int(chunk_size)
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def _default_chunk(n, d, k, B, itemsize):
    # X rows are views (no copy).  A chunk of X stays under 32 MiB, so that the backward product
    # finds it in the last-level cache right after the forward one, and the chunk-sized
    # temporaries (Z and A, chunk × B·k each, plus chunk × B) under 4 MiB; never below 256 rows
    # (BLAS efficiency).  n = 1e5, d = 1000, k = 50: 8192 rows in float32, 4096 in float64.
    rows_x = _CHUNK_X_BYTES // max(d * itemsize, 1)
    rows_tmp = _CHUNK_TMP_BYTES // max(itemsize * (2 * B * k + B), 1)
    return int(max(1, min(n, max(256, min(rows_x, rows_tmp)))))


def full_batch_step(X, y, W, v, activation, *, chunk_size=None, want_grad=True, want_grad_v=True):
    """Loss and full-data gradient of B models sharing one data set, streaming X in row chunks.

    The B models are stacked into one d×(B·k) matrix so that each chunk costs exactly one forward
    product X_c·W and one backward product X_cᵀ·G for all models together; everything else is
    in place in two chunk-sized buffers reused across chunks.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    W : ndarray of shape (B, d, k)
    v : ndarray of shape (B, k)
    activation : str, Activation or callable
    chunk_size : int or None
        Rows per chunk; None keeps a chunk of X under 32 MiB and the temporaries under 4 MiB.
    want_grad : bool, default=True
    want_grad_v : bool, default=True
        Whether grad_v is computed (None otherwise; it costs one extra pass over φ(XW)).

    Returns
    -------
    loss : ndarray of shape (B,)
    grad_W : ndarray of shape (B, d, k) or None
    grad_v : ndarray of shape (B, k) or None
    """
    act = get_activation(activation)
    fused = _fused(act)
    n, d = X.shape
    B, _, k = W.shape
    dtype = np.result_type(X.dtype, W.dtype)
    Wcat = np.ascontiguousarray(np.moveaxis(W, 0, 1).reshape(d, B * k), dtype=dtype)
    v = np.asarray(v, dtype=dtype)
    chunk_size = min(n, int(chunk_size or _default_chunk(n, d, k, B, np.dtype(dtype).itemsize)))
    Zbuf = np.empty((chunk_size, B * k), dtype=dtype)
    Abuf = np.empty((chunk_size, B * k), dtype=dtype)
    predbuf = np.empty((chunk_size, B), dtype=dtype)
    loss = np.zeros(B, dtype=dtype)
    if want_grad:
        gW = np.zeros((d, B * k), dtype=dtype)
        gW_c = np.empty((d, B * k), dtype=dtype)
    gv = np.zeros((B, k), dtype=dtype) if want_grad and want_grad_v else None
    s = 1.0
    for sl in _chunks(n, chunk_size):
        Xc = X[sl]
        m = Xc.shape[0]
        Z, A, r = Zbuf[:m], Abuf[:m], predbuf[:m]
        np.matmul(Xc, Wcat, out=Z)
        s = fused(Z, A)
        A3 = A.reshape(m, B, k)
        # ŷ per model: a BLAS gemv for one model, einsum (no strided batched gemv) for several
        if B == 1:
            np.matmul(A, v[0], out=r[:, 0])
        else:
            np.einsum("mbk,bk->mb", A3, v, out=r)
        r -= y[sl, None]
        loss += np.einsum("mb,mb->b", r, r)
        if want_grad:
            Z3 = Z.reshape(m, B, k)
            Z3 *= r[:, :, None]  # G = (ŷ − y) ⊙ φ'(XW) / s; the factor s·v is applied to ∇W at the end
            np.matmul(Xc.T, Z, out=gW_c)
            gW += gW_c
            if gv is not None:
                gv += (r[:, 0] @ A)[None] if B == 1 else np.einsum("mbk,mb->bk", A3, r)
    loss /= n
    if not want_grad:
        return loss, None, None
    # Xᵀ[G ⊙ (s·v)] = (XᵀG) diag(s·v): one d × B·k product instead of a pass over every chunk
    gW *= ((2.0 * s / n) * v).reshape(1, B * k)
    gW = np.ascontiguousarray(np.moveaxis(gW.reshape(d, B, k), 1, 0))
    return loss, gW, None if gv is None else gv * (2.0 / n)


class _MinibatchWorkspace:
    """Preallocated per-step buffers of the stacked minibatch step (one set per batch length).

    The hidden-unit arrays are kept transposed, (B, k, m): the broadcasts by the per-sample
    residual and the per-unit output weights then run along the contiguous m axis (inner loops
    of length m instead of k), which measured 2× faster for k = 5, m = 20.
    """

    def __init__(self, Xy, B, m, k, d):
        joint = not isinstance(Xy, tuple)
        dtype = Xy.dtype if joint else Xy[0].dtype
        if joint:
            self.Xyb = np.empty((B, m, d + 1), dtype=dtype)  # gathered rows of [X | y]
            self.Xb = self.Xyb[:, :, :d]
            self.yb = self.Xyb[:, :, d]
        else:
            self.Xyb = None
            self.Xb = np.empty((B, m, d), dtype=dtype)
            self.yb = np.empty((B, m), dtype=dtype)
        self.XbT = self.Xb.transpose(0, 2, 1)
        self.ZT = np.empty((B, k, m), dtype=dtype)
        self.G = self.ZT.transpose(0, 2, 1)
        self.AT = np.empty((B, k, m), dtype=dtype)
        self.pred = np.empty((B, 1, m), dtype=dtype)
        self.r = self.pred[:, 0, :]
        self.rcol = self.pred.transpose(0, 2, 1)
        self.gW = np.empty((B, d, k), dtype=dtype)
        self.gv = np.empty((B, k, 1), dtype=dtype)


def _minibatch_epoch(Xy, flat_order, W, v, c, vc, fused, batch_size, mask, prox, step, train_any_v):
    """One epoch of stacked minibatch SGD for B models, updating W and v in place.

    Per step: one gather of the B minibatches (rows of [X | y]), one batched forward product,
    the fused activation, one batched backward product and the update, all into preallocated
    buffers.  ``c`` (B, 1, 1) = 2η/m and ``vc`` (B, 1) = 2η·train_v/m fold the constants of the
    gradient into the per-model output weights so that G = φ'(XW) ⊙ (c·s·v) ⊙ (ŷ − y).
    """
    kern = _kernel_args(fused, prox)
    if kern is not None:
        _compiled_minibatch_epoch(kern, Xy, flat_order, W, v, c, vc, batch_size, mask, step, train_any_v)
        return
    B, n = flat_order.shape
    joint = not isinstance(Xy, tuple)
    d = Xy.shape[1] - 1 if joint else Xy[0].shape[1]
    k = W.shape[2]
    spaces = {}
    WT = W.transpose(0, 2, 1)  # views: W and v are updated in place
    vrow = v[:, None, :]
    csv = None
    matmul, multiply, subtract = np.matmul, np.multiply, np.subtract
    for s0 in range(0, n, batch_size):
        idx = flat_order[:, s0:s0 + batch_size]
        m = idx.shape[1]
        ws = spaces.get(m)
        if ws is None:
            ws = spaces[m] = _MinibatchWorkspace(Xy, B, m, k, d)
            cm = c * (batch_size / m)  # c was computed for full batches
            csv = None
        # mode="clip": the indices are valid, and mode="raise" would buffer ``out`` (a copy per
        # step); the ndarray method skips the np.take wrapper (~1 µs a step)
        if joint:
            Xy.take(idx, axis=0, out=ws.Xyb, mode="clip")
        else:
            Xy[0].take(idx, axis=0, out=ws.Xb, mode="clip")
            Xy[1].take(idx, out=ws.yb, mode="clip")
        ZT, AT, pred = ws.ZT, ws.AT, ws.pred
        matmul(WT, ws.XbT, out=ZT)  # (XW)ᵀ
        s = fused(ZT, AT)
        matmul(vrow, AT, out=pred)  # ŷ
        subtract(ws.r, ws.yb, out=ws.r)
        if csv is None:
            csv = (cm * s) * v[:, :, None]
        multiply(ZT, csv, out=ZT)
        multiply(ZT, pred, out=ZT)  # Gᵀ = (2η/m)·φ'(XW)ᵀ ⊙ v ⊙ (ŷ − y)
        matmul(ws.XbT, ws.G, out=ws.gW)
        subtract(W, ws.gW, out=W)
        if train_any_v:
            matmul(AT, ws.rcol, out=ws.gv)
            gv = ws.gv[:, :, 0]
            gv *= vc * (batch_size / m)
            v -= gv
            csv = (cm * s) * v[:, :, None]
        if mask is not None:
            W *= mask
        if prox is not None:
            W[...] = prox(W, step)


def _compiled_minibatch_epoch(kern, Xy, flat_order, W, v, c, vc, batch_size, mask, step, train_any_v):
    """:func:`_minibatch_epoch` in compiled code: models whose rows of ``flat_order`` are equal (e.g.
    the candidates of one model in ``l1_prox``) run as one group (G of them), each model computing
    exactly what it computes alone."""
    B, d, k = W.shape
    first = {}
    label = np.array([first.setdefault(row.tobytes(), len(first)) for row in flat_order], dtype=np.intp)
    sizes = np.bincount(label)
    l1 = None if kern[2] is None else np.asarray(kern[2], dtype=W.dtype).reshape(B) * step.reshape(B)
    for G in np.unique(sizes):
        gids = np.flatnonzero(sizes == G)
        perm = np.concatenate([np.flatnonzero(label == g) for g in gids])
        U, G = len(gids), int(G)
        Wg, vg = _to_grouped(W, perm, U, G), _to_grouped(v, perm, U, G)
        maskg = None if mask is None else _to_grouped(mask, perm, U, G).reshape(U, d, k * G)
        _compiled_epoch(kern, Xy, flat_order[perm[::G]], Wg.reshape(U, d, k * G), vg,
                        c[perm, 0, 0].reshape(U, G), vc[perm, 0].reshape(U, G), batch_size, maskg,
                        None if l1 is None else l1[perm].reshape(U, G), train_any_v)
        _from_grouped(Wg, W, perm)
        _from_grouped(vg, v, perm)


class _GroupedWorkspace:
    """Per-step buffers of the grouped minibatch step: U groups of G models sharing one order.

    Hidden-unit arrays are (U, m, k·G) with the unit axis k outside the model axis G, so that the
    prediction (a sum over k) and the per-model broadcasts run over contiguous rows of length G.
    """

    def __init__(self, Xy, U, G, m, k, d):
        joint = not isinstance(Xy, tuple)
        dtype = Xy.dtype if joint else Xy[0].dtype
        if joint:
            self.Xyb = np.empty((U, m, d + 1), dtype=dtype)  # one gathered minibatch per group
            self.Xb = self.Xyb[:, :, :d]
            self.yb = self.Xyb[:, :, d:]
        else:
            self.Xyb = None
            self.Xb = np.empty((U, m, d), dtype=dtype)
            self.yb = np.empty((U, m, 1), dtype=dtype)
        self.XbT = self.Xb.transpose(0, 2, 1)
        self.Z = np.empty((U, m, k * G), dtype=dtype)
        self.A = np.empty((U, m, k * G), dtype=dtype)
        self.Z4 = self.Z.reshape(U, m, k, G)
        self.A4 = self.A.reshape(U, m, k, G)
        self.pred = np.empty((U, m, G), dtype=dtype)
        self.r4 = self.pred[:, :, None, :]
        self.gW = np.empty((U, d, k * G), dtype=dtype)
        self.gv = np.empty((U, k, G), dtype=dtype)


def _to_grouped(a, perm, U, G):
    """(B, ..., k) per-model array -> (U, ..., k, G) grouped layout (models ``perm``, group-major)."""
    a = a[perm]
    a = a.reshape((U, G) + a.shape[1:])
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _from_grouped(ag, out, perm):
    """Inverse of :func:`_to_grouped`, written into ``out`` (B, ..., k) at rows ``perm``."""
    a = np.moveaxis(ag, -1, 1)
    out[perm] = a.reshape((-1,) + a.shape[2:])


def _grouped_minibatch_epoch(Xy, order, W, v, c, vc, fused, batch_size, maskg, perm, U, G, spaces,
                             train_any_v, *, prox=None, step=None):
    """One epoch of minibatch SGD for U groups × G models, the models of a group sharing one order.

    ``order`` (U, n) holds each group's rows; ``perm`` (U·G,) the models, group-major.  Per step:
    ONE gather per group (a single take for all groups), one forward product
    Xb (U, m, d) @ W (U, d, k·G), the fused activation, the predictions, and one backward product
    Xbᵀ (U, d, m) @ G (U, m, k·G) -- instead of a gather and three tiny products per model.  The
    weights stay in the grouped layout for the whole epoch (converted once on entry and on exit).
    ``prox`` may only be an L1 prox (``prox.l1_alpha``, see :func:`_plan`): after every step (and the
    mask) each model's weights are soft-thresholded at α·``step`` of that model.
    """
    n = order.shape[1]
    joint = not isinstance(Xy, tuple)
    d = Xy.shape[1] - 1 if joint else Xy[0].shape[1]
    k = W.shape[2]
    Wg = _to_grouped(W, perm, U, G)  # (U, d, k, G)
    Wf = Wg.reshape(U, d, k * G)
    vg = _to_grouped(v, perm, U, G)  # (U, k, G)
    thr = None  # L1 soft-threshold level α·η of each model, (U, G)
    if prox is not None:
        thr = (np.asarray(prox.l1_alpha, dtype=W.dtype).reshape(-1) * step.reshape(-1))[perm].reshape(U, G)
    kern = _kernel_args(fused, None)
    if kern is not None:  # the compiled epoch, same layout
        _compiled_epoch(kern, Xy, order, Wf, vg, c[perm, 0, 0].reshape(U, G), vc[perm, 0].reshape(U, G),
                        batch_size, None if maskg is None else maskg.reshape(U, d, k * G), thr, train_any_v)
        _from_grouped(Wg, W, perm)
        _from_grouped(vg, v, perm)
        return
    thr4 = None if thr is None else thr.reshape(U, 1, 1, G)
    vg4 = vg[:, None]
    cg = c[perm, 0, 0].reshape(U, 1, 1, G)
    vcg = vc[perm, 0].reshape(U, 1, G)
    csv = None
    m_prev = None
    matmul, multiply, subtract, einsum = np.matmul, np.multiply, np.subtract, np.einsum
    for s0 in range(0, n, batch_size):
        idx = order[:, s0:s0 + batch_size]
        m = idx.shape[1]
        ws = spaces.get((U, G, m))
        if ws is None:
            ws = spaces[(U, G, m)] = _GroupedWorkspace(Xy, U, G, m, k, d)
        if m != m_prev:
            m_prev = m
            cm = cg * (batch_size / m)  # c was computed for full batches
            vcm = vcg * (batch_size / m)
            csv = None
        if joint:
            Xy.take(idx, axis=0, out=ws.Xyb, mode="clip")
        else:
            Xy[0].take(idx, axis=0, out=ws.Xb, mode="clip")
            Xy[1].take(idx, out=ws.yb[:, :, 0], mode="clip")
        Z4, A4, pred = ws.Z4, ws.A4, ws.pred
        matmul(ws.Xb, Wf, out=ws.Z)  # XW of every model of every group
        s = fused(ws.Z, ws.A)
        einsum("umkg,ukg->umg", A4, vg, out=pred)  # ŷ (one pass: product and sum over the k units)
        subtract(pred, ws.yb, out=pred)
        if csv is None:
            csv = (cm * s) * vg4
        multiply(Z4, csv, out=Z4)
        multiply(Z4, ws.r4, out=Z4)  # G = (2η/m)·φ'(XW) ⊙ v ⊙ (ŷ − y)
        matmul(ws.XbT, ws.Z, out=ws.gW)
        subtract(Wf, ws.gW, out=Wf)
        if train_any_v:
            einsum("umkg,umg->ukg", A4, pred, out=ws.gv)  # φ(XW)ᵀ(ŷ − y), summed over the m samples
            multiply(ws.gv, vcm, out=ws.gv)
            subtract(vg, ws.gv, out=vg)
            csv = (cm * s) * vg4
        if maskg is not None:
            multiply(Wg, maskg, out=Wg)
        if thr4 is not None:  # soft threshold, as baselines.soft_threshold: sign(W)·max(|W| − α·η, 0)
            Wg[...] = np.sign(Wg) * np.maximum(np.abs(Wg) - thr4, 0.0)
    _from_grouped(Wg, W, perm)
    _from_grouped(vg, v, perm)




def _per_model(value, B, name, dtype=float):
    kind = "a bool" if dtype is bool else "a number"
    bad = f"The '{name}' parameter of train_iht must be {kind} or an array of them, one per model ({B})."
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{bad} Got {value!r} instead.") from None
    # Strings, objects and (for numbers) bools are refused rather than coerced: "False" is truthy.
    if raw.dtype.kind not in ("b" if dtype is bool else "iuf"):
        raise ValueError(f"{bad} Got {value!r} instead.")
    arr = raw.astype(dtype)
    if arr.ndim == 0:
        return np.full(B, arr, dtype=dtype)
    if arr.shape != (B,):
        raise ValueError(f"The '{name}' parameter must be a scalar or have shape ({B},) (one per model). "
                         f"Got shape {arr.shape} instead.")
    return arr


def _losses(X, y, W, v, data_index, act, chunk_size, X_test=None, y_test=None):
    """Full-data MSE of each model on its own training set (X: (P, n, d)) and test set (or None)."""
    B = W.shape[0]
    out = np.empty(B, dtype=np.float64)
    out_test = None if X_test is None else np.empty(B, dtype=np.float64)
    # Small d (the sweeps' problems): one compiled call for every data set, training and test rows;
    # large d: BLAS products in chunks.
    kern = _kernel_args(_fused(act), None) if X.shape[2] <= _COMPILED_LOSS_MAX_D else None
    if kern is not None:
        models = np.argsort(data_index, kind="stable")
        starts = np.searchsorted(data_index[models], np.arange(X.shape[0] + 1))
        Xt, yt = (X[:0], y[:0]) if X_test is None else (X_test, y_test)
        kern[0].problem_losses(np.ascontiguousarray(X), np.ascontiguousarray(y), np.ascontiguousarray(Xt),
                               np.ascontiguousarray(yt), np.ascontiguousarray(W), np.ascontiguousarray(v), models,
                               starts, kern[1], out, out if out_test is None else out_test)
        return out, out_test
    for p in np.unique(data_index):
        sel = np.flatnonzero(data_index == p)
        out[sel] = full_batch_step(X[p], y[p], W[sel], v[sel], act, chunk_size=chunk_size, want_grad=False)[0]
        if X_test is not None:
            out_test[sel] = full_batch_step(X_test[p], y_test[p], W[sel], v[sel], act, chunk_size=chunk_size,
                                            want_grad=False)[0]
    return out, out_test


# ---------------------------------------------------------------------------------------------
# train_iht_batched = _validate (inputs -> _Inputs) -> _plan (which path, buffers) -> _run (epochs).


@dataclass(frozen=True)
class _Inputs:
    """Validated arguments of :func:`train_iht_batched` (arrays owned by the call: W, v are updated)."""

    X: np.ndarray  # (P, n, d)
    y: np.ndarray  # (P, n)
    W: np.ndarray  # (B, d, k), a copy trained in place
    v: np.ndarray  # (B, k)
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    epochs: int
    batch_size: int | None  # None: full batch
    lr: np.ndarray  # (B,)
    pre: np.ndarray  # (B,) pre-training epochs
    tv: np.ndarray  # (B,) bool, train v
    sparsifiers: tuple  # B callables
    data_index: np.ndarray  # (B,)
    mask: np.ndarray | None  # (B, d, k) in dtype
    prox: object
    act: object
    group_of: np.ndarray  # (B,) order group of each model, numbered by first appearance
    firsts: np.ndarray  # first model of each group
    rngs: tuple  # one shuffling stream per group
    has_groups: bool  # order_groups given
    on_divergence: str
    chunk_size: int | None
    sparsify_last: bool
    loss_history: bool  # full losses every epoch (else at epoch 0 and the last; a probe in between)


@dataclass(frozen=True)
class _Plan:
    """How the epochs run: ``path`` in {"full", "minibatch", "grouped"} and what that path needs."""

    path: str
    Xy: object = None  # (P·n, d+1) [X | y] or the pair (X, y) flattened over problems
    buckets: tuple = ()  # grouped: (group ids, models group-major, U, G, grouped mask)
    offsets: np.ndarray | None = None  # grouped: first row of each group's problem in Xy


def _validate(X, y, W0, v0, *, sparsifiers, epochs, batch_size, learning_rate, pretrain_epochs, train_v,
              activation, data_index, X_test, y_test, sparsify_last, mask, prox, dtype, random_states,
              on_divergence, chunk_size, order_groups, loss_history=True):
    """Check every argument of :func:`train_iht_batched` once; return them normalized as :class:`_Inputs`."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"The 'dtype' parameter of train_iht must be numpy.float32 or numpy.float64. "
                         f"Got {dtype!r} instead.")
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
    if not isinstance(loss_history, (bool, np.bool_)):
        raise ValueError(f"The 'loss_history' parameter of {owner} must be a bool. Got {loss_history!r} instead.")
    if isinstance(sparsifiers, (list, tuple)):
        if len(sparsifiers) != B:
            raise ValueError(f"The 'sparsifiers' parameter must hold one sparsifier per model ({B}). "
                             f"Got {len(sparsifiers)} instead.")
        sps = tuple(get_sparsifier(s) for s in sparsifiers)
    else:
        sps = (get_sparsifier(sparsifiers),) * B
    raw_index = np.zeros(B, dtype=np.intp) if data_index is None else np.asarray(data_index)
    if raw_index.dtype.kind not in "iu" or raw_index.shape != (B,) or raw_index.min(initial=0) < 0 \
            or raw_index.max(initial=0) >= P:
        raise ValueError(f"The 'data_index' parameter must have shape ({B},) with values in [0, {P - 1}]. "
                         f"Got {data_index!r} instead.")
    data_index = raw_index.astype(np.intp)
    if (X_test is None) != (y_test is None):
        raise ValueError("Give both 'X_test' and 'y_test' (a test set) or neither. "
                         f"Got X_test={'None' if X_test is None else 'an array'} and "
                         f"y_test={'None' if y_test is None else 'an array'}.")
    if X_test is not None:
        X_test, y_test = check_data(X_test, y_test, dtype=dtype, allow_batch=True)
        if X_test.ndim == 2:
            X_test, y_test = X_test[None], y_test[None]
        if X_test.shape[0] != P or X_test.shape[2] != d:
            raise ValueError(f"Input 'X_test' must have shape (n_test, {d}) or ({P}, n_test, {d}) to match X. "
                             f"Got {X_test.shape} instead.")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape not in (W.shape, W.shape[1:]):
            raise ValueError(f"The 'mask' parameter must have shape {W.shape[1:]} or {W.shape} (the weights'). "
                             f"Got shape {mask.shape} instead.")
        mask = np.broadcast_to(mask, W.shape).astype(dtype)
        W *= mask
    act = get_activation(activation)
    if random_states is None:
        random_states = [None] * B
    if not isinstance(random_states, (list, tuple, np.ndarray)) or len(random_states) != B:
        raise ValueError(f"The 'random_states' parameter must be a list of one seed or Generator per model "
                         f"({B}). Got {random_states!r} instead.")
    if order_groups is None:
        group_of = np.arange(B)
    else:
        labels = np.asarray(order_groups)
        if labels.shape != (B,):
            raise ValueError(f"The 'order_groups' parameter must have shape ({B},) (one label per model). "
                             f"Got shape {labels.shape} instead.")
        _, first, group_of = np.unique(labels, return_index=True, return_inverse=True)
        group_of = np.argsort(np.argsort(first))[group_of.ravel()]  # groups numbered by first appearance
        if np.any(data_index != data_index[np.sort(first)][group_of]):
            raise ValueError("Models sharing an order group must share 'data_index' (one data set per order).")
    firsts = np.unique(group_of, return_index=True)[1]  # first model of each group
    rngs = tuple(check_random_state(random_states[b]) for b in firsts)
    return _Inputs(X=X, y=y, W=W, v=v, X_test=X_test, y_test=y_test, epochs=epochs, batch_size=batch_size, lr=lr,
                   pre=pre, tv=tv, sparsifiers=sps, data_index=data_index, mask=mask, prox=prox, act=act,
                   group_of=group_of, firsts=firsts, rngs=rngs, has_groups=order_groups is not None,
                   on_divergence=on_divergence, chunk_size=chunk_size, sparsify_last=bool(sparsify_last),
                   loss_history=bool(loss_history))


def _plan(inp):
    """Choose the path (full batch, per-model minibatch, grouped minibatch) and build its data layout."""
    if inp.batch_size is None:
        return _Plan(path="full")
    P, n, d = inp.X.shape
    # Minibatch rows are gathered from X (P·n, d) and y (P·n,) as views of the stacked problems.
    # The joint (P·n, d+1) array [X | y] (one take per step, numpy path) costs a copy of every
    # training set per call and was no faster per step in the compiled kernels (same bits; paper
    # tasks fig10, d <= 100: 5.30 -> 4.85 s CPU of train_iht_batched; P=10, n=6000, d=20, 40
    # models: 0.336 -> 0.324 s per call); it is kept below _JOINT_BYTES (default 0: never).
    if inp.X.nbytes <= _JOINT_BYTES:
        Xy = np.concatenate([inp.X, inp.y[..., None]], axis=-1).reshape(P * n, d + 1)
    else:
        Xy = (inp.X.reshape(P * n, d), inp.y.reshape(P * n))
    n_groups = len(inp.firsts)
    sizes = np.bincount(inp.group_of, minlength=n_groups)
    l1_prox = inp.prox is not None and getattr(inp.prox, "l1_alpha", None) is not None
    if not (inp.has_groups and (inp.prox is None or l1_prox) and sizes.max(initial=0) > 1):
        return _Plan(path="minibatch", Xy=Xy)  # a general prox runs per model
    # Grouped path: the models of each group size G form U groups × G models, group-major.
    members = [np.flatnonzero(inp.group_of == g) for g in range(n_groups)]
    buckets = []
    for G in np.unique(sizes):
        gids = np.flatnonzero(sizes == G)
        perm = np.concatenate([members[g] for g in gids])
        maskg = None if inp.mask is None else _to_grouped(inp.mask, perm, len(gids), int(G))
        buckets.append((gids, perm, len(gids), int(G), maskg))
    offsets = (inp.data_index[inp.firsts] * n)[:, None]
    return _Plan(path="grouped", Xy=Xy, buckets=tuple(buckets), offsets=offsets)


_PROBE_ROWS = 256  # loss_history=False: rows of each training set whose loss detects divergence


class _History:
    """Per-epoch losses and counts of B models; owns divergence handling (raise, or flag and freeze).

    Without ``loss_history`` the full losses are computed at epoch 0 and after the last epoch only;
    in between, divergence is detected on the loss of the first ``_PROBE_ROWS`` training rows.
    """

    def __init__(self, inp, step, v_step):
        B, E = inp.W.shape[0], inp.epochs + 1
        self.inp, self.step, self.v_step = inp, step, v_step
        self.train = np.full((B, E), np.nan)
        self.test = np.full((B, E), np.nan)
        self.nnz = np.zeros((B, E), dtype=np.int64)
        self.diverged = np.zeros(B, dtype=bool)
        if not inp.loss_history:
            m = min(inp.X.shape[1], _PROBE_ROWS)
            self.X_probe = np.ascontiguousarray(inp.X[:, :m])
            self.y_probe = np.ascontiguousarray(inp.y[:, :m])

    def record(self, e):
        inp = self.inp
        W, v = inp.W, inp.v
        with np.errstate(all="ignore"):
            if inp.loss_history or e == 0 or e == inp.epochs:
                train, test = _losses(inp.X, inp.y, W, v, inp.data_index, inp.act, inp.chunk_size, inp.X_test,
                                      inp.y_test)
                self.train[:, e] = train
                if test is not None:
                    self.test[:, e] = test
                check, what = self.train[:, e], "train loss"
            else:
                check = _losses(self.X_probe, self.y_probe, W, v, inp.data_index, inp.act, inp.chunk_size)[0]
                what = f"train loss on the first {self.X_probe.shape[1]} rows"
        self.nnz[:, e] = np.count_nonzero(W, axis=(1, 2))
        bad = ~np.isfinite(check) | (check > _DIVERGED)
        bad &= ~self.diverged
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            if inp.on_divergence == "raise":
                lr = inp.lr
                raise ValueError(
                    f"Training diverged at epoch {e} ({what} = {check[b]:.3g} for model {b}); "
                    f"try a smaller learning_rate (got {lr[b]:g}), e.g. {lr[b] / 10:g}."
                )
            self.diverged[bad] = True
            # Freeze diverged models at zero so they stop producing overflow; report them as NaN.
            W[bad] = 0.0
            v[bad] = 0.0
            self.step[bad] = 0.0
            self.v_step[bad] = 0.0

    def as_dict(self):
        return {"train_loss": self.train, "test_loss": self.test, "nnz": self.nnz}


def _sparsifier_groups(sparsifiers):
    """The models of each shipped sparsifier kind (Threshold; TopFraction of one p; Dense) as one group,
    sparsified together; any other sparsifier (a user callable) alone: a list of (kind, models,
    parameters)."""
    groups, alone = {}, []
    for b, sp in enumerate(sparsifiers):
        if type(sp) is Threshold:
            groups.setdefault(("threshold",), []).append(b)
        elif type(sp) is TopFraction:
            groups.setdefault(("top_fraction", sp.p), []).append(b)
        elif type(sp) is Dense:
            groups.setdefault(("dense",), []).append(b)
        else:
            alone.append(("one", np.array([b]), None))
    out = []
    for key, members in groups.items():
        members = np.array(members)
        if key[0] == "threshold":
            params = np.array([sparsifiers[b].t for b in members])  # each model's own t
        elif key[0] == "top_fraction":
            params = TopFraction(key[1])  # applied to the group's stacked matrices
        else:
            params = None
        out.append((key[0], members, params))
    return out + alone


def _sparsify(inp, selected, diverged, groups):
    """Apply each selected model's sparsifier, refusing an output of the wrong shape or non-finite.

    The models of one group (:func:`_sparsifier_groups`) are sparsified by one array operation: the
    same values as one call of each model's sparsifier (thresholds compared in W's dtype, as the
    scalar ``t`` is), at a fraction of the Python work per epoch.
    """
    W = inp.W
    todo = selected & ~diverged
    for kind, members, params in groups:
        mine = todo[members]
        if not mine.any():
            continue
        idx = members[mine]
        if kind == "one":
            W[idx[0]] = check_sparsifier_output(inp.sparsifiers[idx[0]], W[idx[0]], model=int(idx[0]))
            continue
        Wi = W[idx]
        if kind == "threshold":
            t = params[mine].astype(W.dtype)[:, None, None]
            out = np.where(np.abs(Wi) > t, Wi, 0.0).astype(W.dtype, copy=False)
        elif kind == "top_fraction":
            out = params(Wi)
        else:  # dense: W as it is
            out = Wi
        bad = ~np.isfinite(out).all(axis=(1, 2))
        if bad.any():  # the error (and its wording) of the model's own check
            b = int(idx[np.flatnonzero(bad)[0]])
            check_sparsifier_output(inp.sparsifiers[b], W[b], model=b)
        W[idx] = out


def _full_batch_epoch(inp, step, v_step):
    """One full-batch gradient step of every model on its own data set (in place)."""
    W, v, mask = inp.W, inp.v, inp.mask
    for p in np.unique(inp.data_index):
        sel = np.flatnonzero(inp.data_index == p)
        _, gW, gv = full_batch_step(inp.X[p], inp.y[p], W[sel], v[sel], inp.act, chunk_size=inp.chunk_size,
                                    want_grad_v=bool(inp.tv[sel].any()))
        W[sel] -= step[sel] * gW
        if gv is not None:
            v[sel] -= v_step[sel] * gv
        if mask is not None:
            W[sel] *= mask[sel]
        if inp.prox is not None:
            W[sel] = inp.prox(W[sel], step[sel])


def _run(inp, plan):
    """The epoch loop: sparsify (after pre-training), one epoch on the planned path, record."""
    B, n = inp.W.shape[0], inp.X.shape[1]
    P = inp.X.shape[0]
    step = inp.lr.astype(inp.W.dtype)[:, None, None]
    v_step = (inp.lr * inp.tv).astype(inp.W.dtype)[:, None]
    hist = _History(inp, step, v_step)
    fused = _fused(inp.act)
    train_any_v = bool(inp.tv.any())
    order = np.empty((B, n), dtype=np.intp) if plan.path == "minibatch" else None
    gorder = np.empty((len(inp.rngs), n), dtype=np.intp) if plan.path == "grouped" else None
    spaces = {}
    groups = _sparsifier_groups(inp.sparsifiers)
    with one_blas_thread(_ONE_BLAS_THREAD and plan.path != "full" and inp.epochs > 0):
        hist.record(0)
        for e in range(inp.epochs):
            _sparsify(inp, inp.pre <= e, hist.diverged, groups)
            with np.errstate(all="ignore"):
                if plan.path == "full":
                    _full_batch_epoch(inp, step, v_step)
                else:
                    c = step * (2.0 / inp.batch_size)
                    vc = v_step * (2.0 / inp.batch_size)
                    if plan.path == "grouped":
                        for g, rng in enumerate(inp.rngs):  # one shuffling stream per group
                            gorder[g] = rng.permutation(n)
                        if P > 1:
                            gorder += plan.offsets  # rows of the stacked (P·n, d+1) array
                        for gids, perm, U, G, maskg in plan.buckets:
                            _grouped_minibatch_epoch(plan.Xy, gorder[gids], inp.W, inp.v, c, vc, fused,
                                                     inp.batch_size, maskg, perm, U, G, spaces, train_any_v,
                                                     prox=inp.prox, step=step)
                    else:
                        if not inp.has_groups:
                            for b, rng in enumerate(inp.rngs):  # each model's own shuffling stream
                                order[b] = rng.permutation(n)
                        else:
                            order[...] = np.stack([rng.permutation(n) for rng in inp.rngs])[inp.group_of]
                        if P > 1:
                            order += (inp.data_index * n)[:, None]  # rows of the stacked (P·n, d+1) array
                        _minibatch_epoch(plan.Xy, order, inp.W, inp.v, c, vc, fused, inp.batch_size, inp.mask,
                                         inp.prox, step, train_any_v)
            hist.record(e + 1)
    if inp.sparsify_last:  # also at epochs = 0: the returned W is always exactly sparse
        _sparsify(inp, np.ones(B, dtype=bool), hist.diverged, groups)
        hist.nnz[:, -1] = np.count_nonzero(inp.W, axis=(1, 2))
    inp.W[hist.diverged] = np.nan
    inp.v[hist.diverged] = np.nan
    return IHTResult(W=inp.W, v=inp.v, history=hist.as_dict(), n_iter_=inp.epochs, diverged=hist.diverged)


def train_iht_batched(X, y, W0, v0, *, sparsifiers, epochs=25, batch_size=20, learning_rate=1e-3,
                      pretrain_epochs=5, train_v=False, activation="relu2", data_index=None, X_test=None,
                      y_test=None, sparsify_last=True, mask=None, prox=None, dtype=np.float64,
                      random_states=None, on_divergence="raise", chunk_size=None, order_groups=None,
                      loss_history=True):
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
        Dense epochs before the first sparsification, ``>= 0``. With ``pretrain_epochs >= epochs``
        training is dense and the sparsifier acts once, after the last epoch (one-shot pruning).
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
        (n_models, 1, 1) (e.g. soft thresholding for an L1 penalty).  With ``order_groups`` only an
        L1 prox that gives its penalties as ``prox.l1_alpha`` (n_models,) keeps the grouped path
        (e.g. :func:`sparsenet.baselines.l1_prox`); any other prox trains each model on its own.
    dtype : numpy dtype, default=np.float64
        Computation precision (float32 halves memory and time on large problems).
    random_states : sequence of n_models seeds or Generators, or None, default=None
        Minibatch shuffling streams, one per model (with ``order_groups``: one per group, the
        entry of its first model).
    on_divergence : {"raise", "flag"}, default="raise"
        A non-finite loss raises ValueError, or marks the model diverged and freezes it (W, v NaN).
    chunk_size : int or None, default=None
        Rows per chunk of the full-data passes (memory bound for large n).
    order_groups : array-like of shape (n_models,) or None, default=None
        Models with equal labels share one minibatch order (common random numbers, e.g. every
        variant of one trial of a sweep): the shuffling stream of a group is the ``random_states``
        entry of its first model, and the models of a group must share ``data_index``.  Each model
        then gets what training it alone with that seed gives (to round-off), but a step gathers one
        minibatch per group and runs one forward and one backward product per group for all its
        models (models stored group-major, (d, k·G) per group).  None: every model has its own order.
    loss_history : bool, default=True
        Record the train and test losses after every epoch.  False: only at epoch 0 and after the
        last epoch (the history holds NaN in between; ``nnz`` is still recorded every epoch), which
        saves a full pass over the training and test data per epoch.  Divergence is then detected
        every epoch on the loss of each model on the first min(n_samples, 256) rows of its own
        training set, and on the full loss at the recorded epochs, with the same effect as below (a
        model whose full loss alone passes the limit in an intermediate epoch is caught at a later
        check).  A model that does not diverge ends with the same W, v and recorded losses.

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

    Structure: ``_validate`` (every check, once) -> ``_plan`` (full batch, per-model minibatch or
    grouped minibatch, and the data layout of that path) -> ``_run`` (the epoch loop; one epoch is
    ``_full_batch_epoch``, ``_minibatch_epoch`` or ``_grouped_minibatch_epoch``; ``_History``
    records losses and handles divergence). A sparsifier's output is checked every time it is
    applied: wrong shape or non-finite values raise ValueError.
    """
    inp = _validate(X, y, W0, v0, sparsifiers=sparsifiers, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, pretrain_epochs=pretrain_epochs, train_v=train_v,
                    activation=activation, data_index=data_index, X_test=X_test, y_test=y_test,
                    sparsify_last=sparsify_last, mask=mask, prox=prox, dtype=dtype, random_states=random_states,
                    on_divergence=on_divergence, chunk_size=chunk_size, order_groups=order_groups,
                    loss_history=loss_history)
    return _run(inp, _plan(inp))


def train_iht(X, y, W0, v0, *, sparsifier, epochs=25, batch_size=20, learning_rate=1e-3, pretrain_epochs=5,
              train_v=False, activation="relu2", X_test=None, y_test=None, sparsify_last=True, mask=None,
              prox=None, dtype=np.float64, random_state=None, chunk_size=None, loss_history=True):
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
        Dense epochs before the first sparsification (``>= epochs``: dense training, then one-shot
        sparsification after the last epoch when ``sparsify_last``).
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
    loss_history : bool, default=True
        Losses after every epoch; False: at epoch 0 and the last only (see :func:`train_iht_batched`).

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
        random_states=[random_state], on_divergence="raise", chunk_size=chunk_size, loss_history=loss_history,
    )
    history = {key: val[0] for key, val in res.history.items()}
    return IHTResult(W=res.W[0], v=res.v[0], history=history, n_iter_=res.n_iter_, diverged=False)
