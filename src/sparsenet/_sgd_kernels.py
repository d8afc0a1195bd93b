"""Compiled minibatch SGD epochs (numba): the hot loop of :mod:`sparsenet.train`.

One epoch of minibatch SGD for many small models is millions of tiny products (a 20 × 20 minibatch
against a 20 × 5 W).  In numpy each step pays interpreter and dispatch overhead that dwarfs its
arithmetic; here the whole epoch -- every step of every model -- is one call of a compiled loop.

Layout.  ``U`` groups of ``G`` models, the models of a group sharing one minibatch order (the variants
of one trial of a sweep; ``G = 1`` when every model has its own order).  The hidden weights of a
group are one ``(d, k·G)`` matrix with the unit axis outside the model axis (``kk = j·G + g``), as in
:func:`sparsenet.train._grouped_minibatch_epoch`: the forward product, the backward product and the
activation then run over contiguous rows of length ``k·G`` (vectorized by the compiler).

Arithmetic.  Per step and model, with ``m`` rows of the minibatch and ``c = 2η/m``:
``Z = X_b W``, ``A = φ(Z)``, ``ŷ = A v``, ``r = ŷ − y_b``, ``W ← W − X_bᵀ [c · φ'(Z) ⊙ v ⊙ r]``,
then (when v is trained) ``v ← v − (2η_v/m) Aᵀ r`` with the pre-step A and r, the mask, and the
soft threshold of an L1 penalty (``prox``).  The same operations, in the same order, as the numpy
reference path; sums run in a different order than BLAS, so the two agree to rounding (tested),
and each is bit-identical run to run (no threads; of the fast-math flags only ``contract``, which
lets the compiler fuse a multiply and an add into one FMA instruction).

Two loop orders (:func:`epoch_kernel` picks one).  :func:`grouped_epoch` (many columns) keeps each
group's weights in a buffer padded with zero columns to a multiple of 16 and runs both products as
fused compiled loops along its rows (two rows and four rank-one updates per pass: no BLAS call
per step, no scalar remainder of the vectorized loops; one epoch of 10 groups at d = 20, k·G = 95
measured 42.6 ms with one BLAS call per product, 22.2 ms so, best of 10-15 CPU timings each).  :func:`narrow_epoch` (few columns, e.g. one model of k = 5) keeps everything
transposed so that its loops run along the rows of the minibatch and the d features instead.
Both compute the same operations in the same order up to the compiler's choice of FMA, so they
agree to rounding (tested).  Both prefetch the scattered rows of the minibatch two steps ahead.
The per-epoch losses of every model on its training and test set are one call
(:func:`problem_losses`), rows innermost in chunks of 128, the units model by model, two at a time.

Compiled once per machine (``cache=True``: the machine code is stored next to this file in
``__pycache__`` and loaded by later processes, pool workers included).
"""

import math

import numpy as np
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic
from llvmlite import ir

__all__ = ["ACTIVATION_CODES", "grouped_epoch", "narrow_epoch", "problem_losses", "epoch_kernel", "warm_up"]

# Shipped activations with a compiled value-and-derivative (anything else takes the numpy path).
ACTIVATION_CODES = {"relu2": 0, "relu": 1, "tanh": 2, "sigmoid": 3, "leaky_relu": 4, "softplus": 5}
_LEAKY = 0.01


@njit(cache=True, nogil=True, fastmath={"contract"})
def _act(code, z):
    """(φ(z), φ'(z)) of the activation ``code``, written as the numpy functions of activations.py."""
    if z != z:  # NaN propagates, as through np.maximum (divergence must show in the loss)
        return z, z
    if code == 0:  # relu2
        p = z if z > 0.0 else 0.0
        return p * p, 2.0 * p
    if code == 1:  # relu
        if z > 0.0:
            return z, 1.0
        return 0.0, 0.0
    if code == 2:  # tanh
        t = math.tanh(z)
        return t, 1.0 - t * t
    if code == 3:  # sigmoid = 1/2 + tanh(z/2)/2
        s = 0.5 + 0.5 * math.tanh(0.5 * z)
        return s, s * (1.0 - s)
    if code == 4:  # leaky relu
        if z > 0.0:
            return z, 1.0
        return _LEAKY * z, _LEAKY
    # softplus = log(1 + e^z), derivative the sigmoid
    sp = (z if z > 0.0 else 0.0) + math.log1p(math.exp(-abs(z)))
    s = 0.5 + 0.5 * math.tanh(0.5 * z)
    return sp, s


@intrinsic
def _prefetch(typingctx, arr, i, j):
    """A prefetch hint (read, keep in every cache level) for the cache line of ``arr[i, j]``."""
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1], args[2]],
                                       wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _prefetch_rows(X, rows):
    """Ask for every cache line of the rows ``rows`` of X ahead of their use (the loads of a
    minibatch's scattered rows miss the caches; the hint lets them overlap the steps before)."""
    last = X.shape[1] - 1
    for i in range(rows.shape[0]):
        row = rows[i]
        for l in range(0, last, 8):
            _prefetch(X, row, l)
        _prefetch(X, row, last)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _gather(X, y, ycol, rows, Xb, yb):
    """Rows ``rows`` of X into Xb (m, d) and their targets into yb (a separate loop: the loads of
    the scattered rows overlap)."""
    d = Xb.shape[1]
    for i in range(rows.shape[0]):
        row = rows[i]
        xr = X[row]
        xb = Xb[i]
        for l in range(d):
            xb[l] = xr[l]
        yb[i] = X[row, ycol] if ycol >= 0 else y[row]


@njit(cache=True, nogil=True, fastmath={"contract"})
def _xw(Xb, m, W, Z):
    """``Z[:m] = Xb[:m] W``: two rows of Z at a time, one pass over their columns for every four
    features (eight fused rank-one updates: six loads and two stores per eight FMAs, contiguous,
    vectorized).  Each element is the same chain of FMAs over l = 0, 1, ..., d − 1."""
    d = Xb.shape[1]
    Kp = Z.shape[1]
    d4 = d - d % 4
    m2 = m - m % 2
    for i in range(0, m2, 2):
        xa = Xb[i]
        xb = Xb[i + 1]
        za = Z[i]
        zb = Z[i + 1]
        for kk in range(Kp):
            za[kk] = 0.0
            zb[kk] = 0.0
        for l in range(0, d4, 4):
            a0, a1, a2, a3 = xa[l], xa[l + 1], xa[l + 2], xa[l + 3]
            b0, b1, b2, b3 = xb[l], xb[l + 1], xb[l + 2], xb[l + 3]
            w0, w1, w2, w3 = W[l], W[l + 1], W[l + 2], W[l + 3]
            for kk in range(Kp):
                u0, u1, u2, u3 = w0[kk], w1[kk], w2[kk], w3[kk]
                za[kk] = za[kk] + a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3
                zb[kk] = zb[kk] + b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3
        for l in range(d4, d):
            a0 = xa[l]
            b0 = xb[l]
            w0 = W[l]
            for kk in range(Kp):
                za[kk] = za[kk] + a0 * w0[kk]
                zb[kk] = zb[kk] + b0 * w0[kk]
    for i in range(m2, m):
        xr = Xb[i]
        zi = Z[i]
        for kk in range(Kp):
            zi[kk] = 0.0
        for l in range(0, d4, 4):
            x0, x1, x2, x3 = xr[l], xr[l + 1], xr[l + 2], xr[l + 3]
            w0, w1, w2, w3 = W[l], W[l + 1], W[l + 2], W[l + 3]
            for kk in range(Kp):
                zi[kk] = zi[kk] + x0 * w0[kk] + x1 * w1[kk] + x2 * w2[kk] + x3 * w3[kk]
        for l in range(d4, d):
            x0 = xr[l]
            w0 = W[l]
            for kk in range(Kp):
                zi[kk] = zi[kk] + x0 * w0[kk]


@njit(cache=True, nogil=True, fastmath={"contract"})
def _w_minus_xtg(W, Xb, m, Gz):
    """``W -= Xbᵀ Gz`` (over the first m rows): two rows of W at a time, one pass for every four
    rows of the minibatch (each element: W − x_0 g_0 − x_1 g_1 − ..., one FMA per row, in order)."""
    d = W.shape[0]
    Kp = W.shape[1]
    m4 = m - m % 4
    d2 = d - d % 2
    for l in range(0, d2, 2):
        wa = W[l]
        wb = W[l + 1]
        for i in range(0, m4, 4):
            a0, a1, a2, a3 = Xb[i, l], Xb[i + 1, l], Xb[i + 2, l], Xb[i + 3, l]
            b0, b1, b2, b3 = Xb[i, l + 1], Xb[i + 1, l + 1], Xb[i + 2, l + 1], Xb[i + 3, l + 1]
            g0, g1, g2, g3 = Gz[i], Gz[i + 1], Gz[i + 2], Gz[i + 3]
            for kk in range(Kp):
                h0, h1, h2, h3 = g0[kk], g1[kk], g2[kk], g3[kk]
                wa[kk] = wa[kk] - a0 * h0 - a1 * h1 - a2 * h2 - a3 * h3
                wb[kk] = wb[kk] - b0 * h0 - b1 * h1 - b2 * h2 - b3 * h3
        for i in range(m4, m):
            a0 = Xb[i, l]
            b0 = Xb[i, l + 1]
            g0 = Gz[i]
            for kk in range(Kp):
                wa[kk] = wa[kk] - a0 * g0[kk]
                wb[kk] = wb[kk] - b0 * g0[kk]
    for l in range(d2, d):
        wl = W[l]
        for i in range(0, m4, 4):
            x0, x1, x2, x3 = Xb[i, l], Xb[i + 1, l], Xb[i + 2, l], Xb[i + 3, l]
            g0, g1, g2, g3 = Gz[i], Gz[i + 1], Gz[i + 2], Gz[i + 3]
            for kk in range(Kp):
                wl[kk] = wl[kk] - x0 * g0[kk] - x1 * g1[kk] - x2 * g2[kk] - x3 * g3[kk]
        for i in range(m4, m):
            x0 = Xb[i, l]
            g0 = Gz[i]
            for kk in range(Kp):
                wl[kk] = wl[kk] - x0 * g0[kk]


@njit(cache=True, nogil=True, fastmath={"contract"})
def _two_units(XT, m, wa, wb, za, zb):
    """za = XT[:, :m]ᵀ wa and zb = XT[:, :m]ᵀ wb (rows innermost): two hidden units share the loads of
    the transposed rows, four features per pass (one FMA chain over l, the order every kernel uses)."""
    d = XT.shape[0]
    d4 = d - d % 4
    for i in range(m):
        za[i] = 0.0
        zb[i] = 0.0
    for l in range(0, d4, 4):
        a0, a1, a2, a3 = wa[l], wa[l + 1], wa[l + 2], wa[l + 3]
        b0, b1, b2, b3 = wb[l], wb[l + 1], wb[l + 2], wb[l + 3]
        x0, x1, x2, x3 = XT[l], XT[l + 1], XT[l + 2], XT[l + 3]
        for i in range(m):
            u0, u1, u2, u3 = x0[i], x1[i], x2[i], x3[i]
            za[i] = za[i] + u0 * a0 + u1 * a1 + u2 * a2 + u3 * a3
            zb[i] = zb[i] + u0 * b0 + u1 * b1 + u2 * b2 + u3 * b3
    for l in range(d4, d):
        a0 = wa[l]
        b0 = wb[l]
        x0 = XT[l]
        for i in range(m):
            za[i] = za[i] + x0[i] * a0
            zb[i] = zb[i] + x0[i] * b0


@njit(cache=True, nogil=True, fastmath={"contract"})
def _one_unit(XT, m, wa, za):
    """za = XT[:, :m]ᵀ wa: :func:`_two_units` for the last unit of an odd count (the same FMA chain)."""
    d = XT.shape[0]
    d4 = d - d % 4
    for i in range(m):
        za[i] = 0.0
    for l in range(0, d4, 4):
        a0, a1, a2, a3 = wa[l], wa[l + 1], wa[l + 2], wa[l + 3]
        x0, x1, x2, x3 = XT[l], XT[l + 1], XT[l + 2], XT[l + 3]
        for i in range(m):
            za[i] = za[i] + x0[i] * a0 + x1[i] * a1 + x2[i] * a2 + x3[i] * a3
    for l in range(d4, d):
        a0 = wa[l]
        x0 = XT[l]
        for i in range(m):
            za[i] = za[i] + x0[i] * a0


@njit(cache=True, nogil=True, fastmath={"contract"})
def grouped_epoch(X, y, ycol, order, W, v, c, vc, code, batch_size, mask, l1, train_v):
    """One epoch of minibatch SGD for U groups × G models, in place.

    Each group's weights are copied into a buffer whose rows are padded with zero columns to a
    multiple of 16 (the compiled loops then run without a scalar remainder), the products are
    fused compiled loops (:func:`_xw`, :func:`_w_minus_xtg`), the rows of the next minibatch
    are gathered while the current one is computed on, and those of the minibatch two steps
    ahead are prefetched (scattered rows of a data set larger than the L2 cache).

    Parameters
    ----------
    X : ndarray of shape (N, d) or (N, d + 1)
        Rows of every data set (stacked problems); with ``ycol >= 0`` the targets are its column ``ycol``.
    y : ndarray of shape (N,)
        Targets when ``ycol < 0`` (ignored otherwise).
    ycol : int
    order : ndarray of int of shape (U, n)
        Rows of X of each group's epoch, in minibatch order.
    W : ndarray of shape (U, d, k·G)
        Hidden weights, unit-major within a group (updated in place).
    v : ndarray of shape (U, k, G)
        Output weights (updated in place when ``train_v``).
    c, vc : ndarray of shape (U, G)
        ``2η/batch_size`` and ``2η_v/batch_size`` of each model (η_v = 0 for a fixed v).
    code : int
        Activation, see :data:`ACTIVATION_CODES`.
    batch_size : int
    mask : ndarray of shape (U, d, k·G) or (0, 0, 0)
        Multiplied into W after every step (fixed support); empty for none.
    l1 : ndarray of shape (U, G) or (0, 0)
        Soft-threshold level α·η of each model after every step (L1 proximal step); empty for none.
    train_v : bool
    """
    U, n = order.shape
    d = W.shape[1]
    k, G = v.shape[1], v.shape[2]
    K = k * G
    Kp = (K + 15) // 16 * 16
    dt = W.dtype
    Xb = np.empty((batch_size, d), dtype=dt)  # the current minibatch
    Xn = np.empty((batch_size, d), dtype=dt)  # the next one
    yb = np.empty(batch_size, dtype=dt)
    yn = np.empty(batch_size, dtype=dt)
    Z = np.zeros((batch_size, Kp), dtype=dt)  # X_b W, then φ'(Z), then the backward factor
    A = np.zeros((batch_size, Kp), dtype=dt)  # φ(Z)
    Wu = np.zeros((d, Kp), dtype=dt)  # the group's weights, zero-padded columns
    r = np.empty((batch_size, G), dtype=dt)
    cv = np.empty(K, dtype=dt)
    gv = np.empty(K, dtype=dt)
    use_mask = mask.shape[0] > 0
    use_l1 = l1.shape[0] > 0
    for u in range(U):
        Wsrc = W[u]
        for l in range(d):
            for kk in range(K):
                Wu[l, kk] = Wsrc[l, kk]
        vu = v[u]
        _gather(X, y, ycol, order[u, :min(batch_size, n)], Xn, yn)
        _prefetch_rows(X, order[u, batch_size:2 * batch_size])
        for s0 in range(0, n, batch_size):
            m = min(batch_size, n - s0)
            scale = batch_size / m  # c was computed for full batches
            Xb, Xn = Xn, Xb
            yb, yn = yn, yb
            s2 = s0 + 2 * batch_size  # the rows two steps ahead asked for now (as in narrow_epoch)
            if s2 < n:
                _prefetch_rows(X, order[u, s2:min(s2 + batch_size, n)])
            _xw(Xb, m, Wu, Z)  # forward: Z = X_b W
            s1 = s0 + batch_size
            if s1 < n:
                _gather(X, y, ycol, order[u, s1:min(s1 + batch_size, n)], Xn, yn)
            for j in range(k):
                for g in range(G):
                    cv[j * G + g] = (c[u, g] * scale) * vu[j, g]
            # activation, residuals r = ŷ − y, and c·φ'(Z) ⊙ v ⊙ r (into Z)
            for i in range(m):
                zi = Z[i]
                ai = A[i]
                ri = r[i]
                if code == 0:  # relu2, inline (NaN propagates as through np.maximum)
                    for kk in range(Kp):
                        z = zi[kk]
                        p = z if not (z <= 0.0) else 0.0
                        ai[kk] = p * p
                        zi[kk] = 2.0 * p
                else:
                    for kk in range(Kp):
                        a, dz = _act(code, zi[kk])
                        ai[kk] = a
                        zi[kk] = dz
                yi = yb[i]
                v0 = vu[0]
                for g in range(G):  # the first unit from 0.0 (no zeroing pass)
                    ri[g] = 0.0 + ai[g] * v0[g]
                for j in range(1, k):
                    vj = vu[j]
                    aj = ai[j * G:]
                    for g in range(G):
                        ri[g] += aj[g] * vj[g]
                for g in range(G):
                    ri[g] -= yi
                for j in range(k):
                    zj = zi[j * G:]
                    cj = cv[j * G:]
                    for g in range(G):
                        zj[g] = zj[g] * cj[g] * ri[g]
                if code != 0:  # padding columns contribute nothing (relu2: φ'(0) = 0 already)
                    for kk in range(K, Kp):
                        zi[kk] = 0.0
            _w_minus_xtg(Wu, Xb, m, Z)  # backward: W -= X_bᵀ G
            if train_v:
                for kk in range(K):
                    gv[kk] = 0.0
                for i in range(m):
                    ai = A[i]
                    ri = r[i]
                    for j in range(k):
                        aj = ai[j * G:]
                        gj = gv[j * G:]
                        for g in range(G):
                            gj[g] += aj[g] * ri[g]
                for j in range(k):
                    for g in range(G):
                        vu[j, g] -= gv[j * G + g] * (vc[u, g] * scale)
            if use_mask:
                Mu = mask[u]
                for l in range(d):
                    wl = Wu[l]
                    ml = Mu[l]
                    for kk in range(K):
                        wl[kk] *= ml[kk]
            if use_l1:
                for l in range(d):
                    for j in range(k):
                        for g in range(G):
                            t = l1[u, g]
                            w = Wu[l, j * G + g]
                            a = abs(w) - t
                            if a > 0.0:
                                Wu[l, j * G + g] = a if w > 0.0 else -a
                            elif a <= 0.0:  # a NaN weight stays NaN (divergence shows, as in numpy)
                                Wu[l, j * G + g] = 0.0
        for l in range(d):
            for kk in range(K):
                Wsrc[l, kk] = Wu[l, kk]


def epoch_kernel(d, K):
    """The epoch kernel for d features and K = k·G columns per group: :func:`narrow_epoch` below 64
    columns, :func:`grouped_epoch` from there (measured, one core, n = 6000, batch 20, one run each:
    narrow 1.8x faster at K = 5 and 1.6x at K = 20 (d = 20), 2x at K = 5 (d = 100); a tie at
    K = 65; grouped 1.2x faster at K = 95 (d = 20))."""
    return narrow_epoch if K < 64 else grouped_epoch


@njit(cache=True, nogil=True, fastmath={"contract"})
def narrow_epoch(X, y, ycol, order, W, v, c, vc, code, batch_size, mask, l1, train_v):
    """:func:`grouped_epoch` for few columns (k·G small): the weights kept transposed, (k·G, d), and
    every array of a step transposed (rows of the minibatch innermost), so that the loops run along
    the m rows (forward, activation, residuals) or the d features (backward) instead of the few
    columns.  The same operations in the same order as :func:`grouped_epoch` (equal to rounding)."""
    U, n = order.shape
    d = W.shape[1]
    k, G = v.shape[1], v.shape[2]
    K = k * G
    dt = W.dtype
    WT = np.empty((K, d), dtype=dt)
    Xb = np.empty((batch_size, d), dtype=dt)
    XbT = np.empty((d, batch_size), dtype=dt)
    yb = np.empty(batch_size, dtype=dt)
    ZT = np.empty((K, batch_size), dtype=dt)  # (X_b W)ᵀ, then φ', then the backward factor
    AT = np.empty((K, batch_size), dtype=dt)
    rT = np.empty((G, batch_size), dtype=dt)
    Xn = np.empty((batch_size, d), dtype=dt)  # the next minibatch, gathered during this step
    yn = np.empty(batch_size, dtype=dt)
    Wx = np.empty(d, dtype=dt)
    use_mask = mask.shape[0] > 0
    use_l1 = l1.shape[0] > 0
    for u in range(U):
        Wu = W[u]
        vu = v[u]
        for l in range(d):
            for kk in range(K):
                WT[kk, l] = Wu[l, kk]
        _gather(X, y, ycol, order[u, :min(batch_size, n)], Xn, yn)
        _prefetch_rows(X, order[u, batch_size:3 * batch_size])
        for s0 in range(0, n, batch_size):
            m = min(batch_size, n - s0)
            scale = batch_size / m
            m4 = m - m % 4
            Xb, Xn = Xn, Xb
            yb, yn = yn, yb
            for i in range(m):
                xr = Xb[i]
                for l in range(d):
                    XbT[l, i] = xr[l]
            K2 = K - K % 2
            for kk in range(0, K2, 2):  # forward, two units at a time (sharing the loads of X_bᵀ)
                _two_units(XbT, m, WT[kk], WT[kk + 1], ZT[kk], ZT[kk + 1])
            if K2 < K:  # an odd count's last unit alone (was computed twice: 6 units' work for k = 5)
                _one_unit(XbT, m, WT[K2], ZT[K2])
            # the next minibatch gathered now, the one two steps after it asked for (measured: ~20 %
            # less time per epoch with each model's own 6000-row data set)
            s1 = s0 + batch_size
            if s1 < n:
                _gather(X, y, ycol, order[u, s1:min(s1 + batch_size, n)], Xn, yn)
                _prefetch_rows(X, order[u, min(s1 + 2 * batch_size, n):min(s1 + 3 * batch_size, n)])
            for kk in range(K):
                zk = ZT[kk]
                ak = AT[kk]
                if code == 0:
                    for i in range(m):
                        z = zk[i]
                        p = z if not (z <= 0.0) else 0.0
                        ak[i] = p * p
                        zk[i] = 2.0 * p
                else:
                    for i in range(m):
                        a, dz = _act(code, zk[i])
                        ak[i] = a
                        zk[i] = dz
            for g in range(G):
                rg = rT[g]
                for i in range(m):
                    rg[i] = 0.0
                for j in range(k):
                    aj = AT[j * G + g]
                    vj = vu[j, g]
                    for i in range(m):
                        rg[i] += aj[i] * vj
                for i in range(m):
                    rg[i] -= yb[i]
            for j in range(k):
                for g in range(G):
                    zk = ZT[j * G + g]
                    rg = rT[g]
                    cvk = (c[u, g] * scale) * vu[j, g]
                    for i in range(m):
                        zk[i] = zk[i] * cvk * rg[i]
            for kk in range(0, K, 2):  # W -= X_bᵀ G as rows of Wᵀ, two at a time, four rows of X_b per pass
                two = kk + 1 < K
                wa = WT[kk]
                wb = WT[kk + 1] if two else Wx
                ga = ZT[kk]
                gb = ZT[kk + 1] if two else ZT[kk]
                for i in range(0, m4, 4):
                    a0, a1, a2, a3 = ga[i], ga[i + 1], ga[i + 2], ga[i + 3]
                    b0, b1, b2, b3 = gb[i], gb[i + 1], gb[i + 2], gb[i + 3]
                    x0, x1, x2, x3 = Xb[i], Xb[i + 1], Xb[i + 2], Xb[i + 3]
                    for l in range(d):
                        u0, u1, u2, u3 = x0[l], x1[l], x2[l], x3[l]
                        wa[l] = wa[l] - u0 * a0 - u1 * a1 - u2 * a2 - u3 * a3
                        wb[l] = wb[l] - u0 * b0 - u1 * b1 - u2 * b2 - u3 * b3
                for i in range(m4, m):
                    a0 = ga[i]
                    b0 = gb[i]
                    x0 = Xb[i]
                    for l in range(d):
                        wa[l] = wa[l] - x0[l] * a0
                        wb[l] = wb[l] - x0[l] * b0
            if train_v:
                for j in range(k):
                    for g in range(G):
                        aj = AT[j * G + g]
                        rg = rT[g]
                        acc = 0.0
                        for i in range(m):
                            acc += aj[i] * rg[i]
                        vu[j, g] -= acc * (vc[u, g] * scale)
            if use_mask:
                Mu = mask[u]
                for kk in range(K):
                    for l in range(d):
                        WT[kk, l] *= Mu[l, kk]
            if use_l1:
                for j in range(k):
                    for g in range(G):
                        t = l1[u, g]
                        for l in range(d):
                            w = WT[j * G + g, l]
                            a = abs(w) - t
                            if a > 0.0:
                                WT[j * G + g, l] = a if w > 0.0 else -a
                            elif a <= 0.0:  # a NaN weight stays NaN (divergence shows, as in numpy)
                                WT[j * G + g, l] = 0.0
        for l in range(d):
            for kk in range(K):
                Wu[l, kk] = WT[kk, l]


_LOSS_ROWS = 128  # rows of a loss chunk (20 KB of transposed rows at d = 20, in L1; 64 measured ~8 % slower)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _terms(za, zb, mc, code, pa, va, pb, vb, first_a, same):
    """Add v φ(z) of two units over a chunk to the predictions of their models: ``pa += va φ(za)``,
    then ``pb += vb φ(zb)`` (``pb`` may be ``pa``: two units of one model, added in unit order); a
    model's first unit starts from 0.0.  One pass, every unit the same FMA: p ← fma(φ(z), v, p)."""
    if code == 0:
        if same:
            if first_a:
                for i in range(mc):
                    s = za[i]
                    t = zb[i]
                    s = s if not (s <= 0.0) else 0.0
                    t = t if not (t <= 0.0) else 0.0
                    pa[i] = 0.0 + (s * s) * va + (t * t) * vb
            else:
                for i in range(mc):
                    s = za[i]
                    t = zb[i]
                    s = s if not (s <= 0.0) else 0.0
                    t = t if not (t <= 0.0) else 0.0
                    pa[i] = pa[i] + (s * s) * va + (t * t) * vb
            return
        for i in range(mc):
            s = za[i]
            t = zb[i]
            s = s if not (s <= 0.0) else 0.0
            t = t if not (t <= 0.0) else 0.0
            pa[i] = (0.0 if first_a else pa[i]) + (s * s) * va
            pb[i] = 0.0 + (t * t) * vb
        return
    for i in range(mc):
        s, _ = _act(code, za[i])
        t, _ = _act(code, zb[i])
        if same:
            pa[i] = (0.0 if first_a else pa[i]) + s * va + t * vb
        else:
            pa[i] = (0.0 if first_a else pa[i]) + s * va
            pb[i] = 0.0 + t * vb


@njit(cache=True, nogil=True, fastmath={"contract"})
def _sq_errors(X, y, WT, vk, k, code, XcT, Zc, PT, ET):
    """Add (ŷ − y)² of G models over the rows of X into ET (G, chunk), element by element.

    Rows run innermost, ``chunk`` at a time.  The K = k·G units are taken model by model, two at a
    time (the two may belong to neighbouring models): z = Σ_l W_l X_l over the chunk (four features
    per pass, the same FMA chain over l as the epochs), then v φ(z) of both added to their models'
    predictions in one pass (unit order, from 0.0), and once a model's last unit is in, its squared
    errors -- every loop contiguous over the rows of the chunk.  A model's arithmetic does not
    depend on its neighbours.
    """
    n, d = X.shape
    K = WT.shape[0]
    ch = _LOSS_ROWS
    za = Zc[0]
    zb = Zc[1]
    for i0 in range(0, n, ch):
        mc = min(ch, n - i0)
        for i in range(mc):
            for l in range(d):
                XcT[l, i] = X[i0 + i, l]
        yc = y[i0:i0 + mc]
        for kk in range(0, K, 2):
            two = kk + 1 < K
            kb = kk + 1 if two else kk
            _two_units(XcT, mc, WT[kk], WT[kb], za, zb)
            ga, gb = kk // k, kb // k
            pa, pb = PT[ga % 2], PT[gb % 2]
            if two:
                _terms(za, zb, mc, code, pa, vk[kk], pb, vk[kb], kk % k == 0, ga == gb)
            else:  # the last unit alone: its term once (zb, a copy, is added to a scratch row)
                _terms(za, zb, mc, code, pa, vk[kk], PT[2], 0.0, kk % k == 0, False)
            for g in range(ga, gb + 1 if two else ga + 1):
                if (g + 1) * k - 1 <= kb:  # the model's last unit is in: its squared errors
                    g2 = g % 2
                    for i in range(mc):
                        e = PT[g2, i] - yc[i]
                        ET[g, i] += e * e


@njit(cache=True, nogil=True, fastmath={"contract"})
def problem_losses(X, y, X_test, y_test, W, v, models, starts, code, out, out_test):
    """Mean squared error of every model on its own training set and test set, in one call.

    Parameters
    ----------
    X : ndarray of shape (P, n, d)
    y : ndarray of shape (P, n)
    X_test : ndarray of shape (P, n_test, d) or (0, 0, d)
    y_test : ndarray of shape (P, n_test) or (0, 0)
    W : ndarray of shape (B, d, k)
    v : ndarray of shape (B, k)
    models : ndarray of int of shape (B,)
        The models, grouped by data set: ``models[starts[p]:starts[p + 1]]`` are those of data set p.
    starts : ndarray of int of shape (P + 1,)
    code : int
        Activation, see :data:`ACTIVATION_CODES`.
    out, out_test : ndarray of float64 of shape (B,)
        Receive mean_i (ŷ_i − y_i)² of each model (``out_test`` untouched without a test set).

    Notes
    -----
    The squared errors are summed per model in a fixed order (element by element over chunks of
    :data:`_LOSS_ROWS` rows, then over the chunk), whatever the other models of the call: a model's
    loss does not depend on which models it is computed with.
    """
    P = starts.shape[0] - 1
    d = X.shape[2]
    k = W.shape[2]
    dt = W.dtype
    ch = _LOSS_ROWS
    # rows of the chunk buffers 8 wider than the chunk (a stride of 1088 bytes, not 1024: measured
    # 4-9 % less CPU per call, same bits; the cause -- cache-set or 4K-alias conflicts -- not measured)
    XcT = np.empty((d, ch + 8), dtype=dt)
    Zc = np.empty((2, ch + 8), dtype=dt)
    PT = np.empty((3, ch + 8), dtype=dt)
    for p in range(P):
        G = starts[p + 1] - starts[p]
        if G == 0:
            continue
        K = k * G
        WT = np.empty((K, d), dtype=dt)  # model-major: row g·k + j is unit j of model g
        vk = np.empty(K, dtype=dt)
        for g in range(G):
            b = models[starts[p] + g]
            for j in range(k):
                vk[g * k + j] = v[b, j]
                for l in range(d):
                    WT[g * k + j, l] = W[b, l, j]
        ET = np.empty((G, ch), dtype=np.float64)
        for t in range(2):
            if t == 0:
                Xp, yp, dest = X[p], y[p], out
            elif X_test.shape[0] > 0:
                Xp, yp, dest = X_test[p], y_test[p], out_test
            else:
                break
            ET[:, :] = 0.0
            _sq_errors(Xp, yp, WT, vk, k, code, XcT, Zc, PT, ET)
            for g in range(G):
                acc = 0.0
                for i in range(ch):
                    acc += ET[g, i]
                dest[models[starts[p] + g]] = acc / Xp.shape[0]


def warm_up():
    """Compile (or load from the cache) every kernel for float64 data, on tiny inputs."""
    d, k = 2, 1
    X = np.zeros((2, d + 1))
    for kernel in (grouped_epoch, narrow_epoch):
        kernel(X, X[0, :0].copy(), d, np.zeros((1, 2), dtype=np.intp), np.zeros((1, d, k)), np.zeros((1, k, 1)),
               np.zeros((1, 1)), np.zeros((1, 1)), 0, 2, np.zeros((0, 0, 0)), np.zeros((0, 0)), False)
    Xp = np.zeros((1, 2, d))
    problem_losses(Xp, np.zeros((1, 2)), Xp, np.zeros((1, 2)), np.zeros((1, d, k)), np.zeros((1, k)),
                   np.zeros(1, dtype=np.intp), np.array([0, 1], dtype=np.intp), 0, np.zeros(1), np.zeros(1))
