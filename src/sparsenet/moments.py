"""Hermite-moment contractions of (X, y) in O(n·d·Σr) time, never forming a d^j array.

The order-j Hermite moment of the data is the symmetric tensor

    M_j = E[y · He_j(x)],  He_j(x) = Σ_P (−1)^{|P|} (⊗_{m∉P} x) ⊗ (⊗_{(p,q)∈P} δ_pq),

summed over the partial matchings P of the j modes (TENSOR_INIT.md §2). By Stein's identity
M_j = Σ_i v_i m_j(‖w_i‖) w̄_i^{⊗j} for y = Σ_i v_i φ(w_iᵀx), x ~ N(0, I_d). The tensor
initialization only ever needs M_j contracted with thin matrices, which this module computes
from the projections X A_m.
"""

import math
from functools import lru_cache
from itertools import permutations

import numpy as np
from scipy.linalg import blas

__all__ = ["hermite_contract", "partial_matchings", "control_variate_targets", "symmetrize"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Largest number of float64 entries held by one chunk's row-wise products (about 32 MB).
_MAX_CHUNK_ENTRIES = 4_000_000
# Narrower symmetric products stay with one gemm (syrk's triangle bookkeeping costs more there).
_SYRK_MIN_WIDTH = 64


def partial_matchings(j):
    """All partial matchings of the modes 0..j−1.

    Parameters
    ----------
    j : int
        Number of modes (the tensor order).

    Returns
    -------
    matchings : list of tuple of (int, int)
        Each matching is a tuple of disjoint pairs (p, q), p < q; the empty matching comes first.
        There are 1, 1, 2, 4, 10 of them for j = 0..4.
    """

    def rec(modes):
        if not modes:
            return [()]
        first, rest = modes[0], modes[1:]
        out = list(rec(rest))  # first mode unpaired
        for i, other in enumerate(rest):
            remaining = rest[:i] + rest[i + 1:]
            out.extend(((first, other),) + m for m in rec(remaining))
        return out

    return rec(tuple(range(j)))


@lru_cache(maxsize=None)
def _plan(j):
    """The terms of an order-j contraction, computed once per j: (matching, its unpaired modes, the
    einsum subscripts of its term) for every partial matching, and the distinct unpaired sets."""
    terms = []
    for P in partial_matchings(j):
        paired = {m for pair in P for m in pair}
        U = tuple(m for m in range(j) if m not in paired)
        subs = ["".join(_LETTERS[m] for m in U)] + [_LETTERS[p] + _LETTERS[q] for p, q in P]
        terms.append((P, U, ",".join(subs) + "->" + _LETTERS[:j]))
    return tuple(terms), tuple(sorted({U for _, U, _ in terms}, key=len))


@lru_cache(maxsize=None)
def _triu_pairs(r):
    """``np.triu_indices(r)``, computed once per r (read-only)."""
    ia, ib = np.triu_indices(r)
    ia.flags.writeable = False
    ib.flags.writeable = False
    return ia, ib


def _fold_vectors(w, Zs):
    """Fold width-1 projections (vector modes) into the weights; returns (w, wider projections)."""
    for Z in Zs:
        if Z.shape[1] == 1:
            w = w * Z[:, 0]
    return w, [Z for Z in Zs if Z.shape[1] != 1]


def _syrk_accumulate(w, Z, C):
    """C += Σ_n w_n z_n z_nᵀ in C's upper triangle through BLAS syrk (half the flops of a gemm).

    Each row enters once: the weights are split by sign, the rows scaled by sqrt(|w_n|), and the
    positive and negative parts accumulated with alpha = +1 and −1. C is Fortran-ordered (d, d);
    only its upper triangle is meaningful (see :func:`_fill_symmetric`).
    """
    syrk = blas.dsyrk if C.dtype == np.float64 else blas.ssyrk
    for sign, rows in ((1.0, np.flatnonzero(w > 0)), (-1.0, np.flatnonzero(w < 0))):
        if rows.size == 0:
            continue
        Zs = Z[rows]
        Zs *= np.sqrt(np.abs(w[rows]))[:, None]
        # Zsᵀ is a Fortran-ordered (d, m) view: syrk forms Zsᵀ Zs without a copy.
        out = syrk(sign, Zs.T, beta=1.0, c=C, trans=0, lower=0, overwrite_c=1)
        if out is not C:  # pragma: no cover - f2py copies only a non-Fortran C
            C[...] = out
    return C


def _fill_symmetric(C):
    """Symmetric matrix from the upper triangle of C."""
    upper = np.triu(C)
    return upper + np.triu(upper, 1).T


def _weighted_products(w, Zs):
    """Σ_n w_n ⊗_m Z_m[n, :] for a list of (n, r_m) arrays (row-wise outer products)."""
    shape = tuple(Z.shape[1] for Z in Zs)
    # Width-1 projections (vector modes) are folded into the weights first.
    w, Zs = _fold_vectors(w, Zs)
    if not Zs:
        return np.full(shape, w.sum())
    if len(Zs) == 1:
        return (w @ Zs[0]).reshape(shape)
    if len(Zs) == 2 and Zs[0] is Zs[1] and Zs[0].shape[1] >= _SYRK_MIN_WIDTH:
        C = _syrk_accumulate(w, Zs[0], np.zeros((shape[0], shape[0]), order="F"))
        return _fill_symmetric(C).reshape(shape)
    if len(Zs) == 3 and Zs[0] is Zs[1] is Zs[2]:
        # Fully symmetric: only the pairs a <= b of the first two modes, one gemm (half the flops).
        Z = Zs[0]
        r = Z.shape[1]
        ia, ib = _triu_pairs(r)
        # Gᵀ[p] = (w ⊙ Z[:, a_p]) ⊙ Z[:, b_p] (p = (a, b) in triu order), written row block by
        # row block into one buffer from the rows of Zᵀ: the products of fancy-indexing the
        # columns of Z, without its gathers and n-sized temporaries (8x faster at n=6000, r=5).
        ZT = np.ascontiguousarray(Z.T)
        ZTw = ZT * w
        GT = np.empty((len(ia), Z.shape[0]), dtype=ZTw.dtype)
        start = 0
        for a in range(r):
            np.multiply(ZTw[a], ZT[a:], out=GT[start:start + r - a])
            start += r - a
        half = GT @ Z
        out = np.empty((r, r, r))
        out[ia, ib] = half
        out[ib, ia] = half
        return out.reshape(shape)
    G = Zs[0] * w[:, None]
    for Z in Zs[1:-1]:
        # Row-wise Khatri–Rao product: (n, r_1···r_m) ⊙ (n, r_{m+1}).
        G = (G[:, :, None] * Z[:, None, :]).reshape(G.shape[0], -1)
    return (G.T @ Zs[-1]).reshape(shape)


def hermite_contract(X, y, mats, *, chunk_size=None, projections=None):
    """Contract the empirical Hermite moment M̂_j with one matrix (or vector) per mode.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs, assumed ~ N(0, I_d).
    y : ndarray of shape (n_samples,)
        Targets (or residual targets, see :func:`control_variate_targets`).
    mats : sequence of length j of (ndarray of shape (n_features, r_m), ndarray of shape (n_features,) or None)
        A_m for each mode m = 1..j: a matrix, a vector (its mode is squeezed from the output),
        or None for the identity I_d (then X itself is the projection, no product is formed).
    chunk_size : int or None, default=None
        Number of rows of X processed at a time; None picks a size that keeps the temporary
        row-wise products below about 32 MB. The result does not depend on it beyond rounding.
    projections : sequence of length j of (ndarray of shape (n_samples, r_m) or None) or None
        Precomputed X A_m for some modes (the caller's cache of X V, say), so that no pass over X
        is spent recomputing them; None entries (or None) are computed here.

    Returns
    -------
    T : ndarray
        M̂_j(A_1, …, A_j) with one axis of size r_m per matrix mode, in the mode order 1..j
        (a 0-d array when every A_m is a vector).

    Notes
    -----
    .. math::

        \\hat M_j(A_1,\\dots,A_j) = \\sum_P (-1)^{|P|}\\,
        \\hat E\\Big[y \\bigotimes_{m\\notin P} A_m^\\top x\\Big] \\otimes
        \\bigotimes_{(p,q)\\in P} A_p^\\top A_q,

    each term the outer product of its data part with its Gram matrices A_pᵀA_q (a broadcast product
    for one pair, one ``einsum`` whose output subscript lists the modes in order for more).
    Symmetric data parts go through BLAS: two identical matrix modes (P̂2 = M̂2(I, I, …)) by
    ``syrk`` on sqrt(|y|)-scaled rows split by the sign of y (each row enters once: n·d²/2
    multiply-adds, half a gemm), three identical modes by one gemm over the pairs a <= b.
    The data part costs O(n·d·Σ r_m) for the projections Z_m = X A_m plus O(n·Π r_m) for the
    products over the unpaired modes; memory is O(chunk_size·(d + Π r_m)). The result matches
    the explicit d^j tensor contraction to rounding (tests/test_moments.py).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, d = X.shape
    j = len(mats)
    As, is_vec = [], []
    for A in mats:
        if A is None:
            As.append(None)
            is_vec.append(False)
            continue
        A = np.asarray(A, dtype=float)
        is_vec.append(A.ndim == 1)
        As.append(A[:, None] if A.ndim == 1 else A)
    sizes = [d if A is None else A.shape[1] for A in As]

    terms, subsets = _plan(j)

    # Distinct projection matrices (the same V is often passed for several modes).
    keys = []
    for A in As:
        key = None if A is None else next((i for i, B in enumerate(As) if B is A), None)
        keys.append(key)

    if chunk_size is None:
        widest = max([1] + [math.prod(sizes[m] for m in U) // max(sizes[m] for m in U) for U in subsets if U])
        chunk_size = max(256, _MAX_CHUNK_ENTRIES // max(widest, d))
    chunk_size = int(chunk_size)

    # Products over exactly two matrix modes with the same projection (e.g. P2 = M2(I, I, α, …))
    # are symmetric: accumulated in one triangle by syrk over all chunks, filled at the end.
    def wide(U):
        return [m for m in U if not is_vec[m]]

    tri = {}
    for U in subsets:
        W = wide(U)
        if len(W) == 2 and keys[W[0]] == keys[W[1]] and (keys[W[0]] is not None or As[W[0]] is None) \
                and sizes[W[0]] >= _SYRK_MIN_WIDTH:
            tri[U] = np.zeros((sizes[W[0]],) * 2, order="F")
    if projections is not None and len(projections) != j:
        raise ValueError(f"projections must have one entry per mode ({j}); got {len(projections)}.")

    data = {U: np.zeros(tuple(sizes[m] for m in U)) for U in subsets if U not in tri}
    for start in range(0, n, chunk_size):
        Xc = X[start:start + chunk_size]
        yc = y[start:start + chunk_size]
        proj = {}
        Z = []
        for m, (A, key) in enumerate(zip(As, keys)):
            if key is None:
                Z.append(Xc)
            else:
                if key not in proj:
                    given = None if projections is None else projections[m]
                    if given is not None:
                        given = np.asarray(given, dtype=float)
                        proj[key] = (given[:, None] if given.ndim == 1 else given)[start:start + chunk_size]
                    else:
                        proj[key] = Xc @ A
                Z.append(proj[key])
        products = {}  # unpaired sets with the same projections (e.g. (0,), (1,), (2,) of M3(V, V, V)) share them
        for U in subsets:
            if U in tri:
                w, Zw = _fold_vectors(yc, [Z[m] for m in U])
                _syrk_accumulate(w, Zw[0], tri[U])
            else:
                Zu = [Z[m] for m in U]
                same = tuple(map(id, Zu))
                if same not in products:
                    products[same] = _weighted_products(yc, Zu)
                data[U] += products[same]
    for U, C in tri.items():
        data[U] = _fill_symmetric(C).reshape(tuple(sizes[m] for m in U))
    for U in subsets:
        data[U] /= n

    grams = {}

    def gram(p, q):
        A, B = As[p], As[q]
        if A is None and B is None:
            return np.eye(d)
        if A is None:
            return B
        if B is None:
            return A.T
        if (keys[p], keys[q]) not in grams:  # the same AᵀB for every pair of modes holding A and B
            grams[keys[p], keys[q]] = A.T @ B
        return grams[keys[p], keys[q]]

    def spread(T, modes):  # T with its axes in place among the j modes (size 1 elsewhere); modes ascending
        return T.reshape([sizes[m] if m in modes else 1 for m in range(j)])

    out = np.zeros(tuple(sizes))
    for P, U, subs in terms:
        if len(P) == 0:
            term = data[U]
        elif len(P) == 1:  # one product per entry, data·gram: einsum's bits, without its parsing
            term = spread(data[U], U) * spread(gram(*P[0]), P[0])
        else:
            term = np.einsum(subs, data[U], *[gram(p, q) for p, q in P])
        if len(P) % 2:
            out -= term
        else:
            out += term
    squeeze = tuple(m for m in range(j) if is_vec[m])
    return out.squeeze(axis=squeeze) if squeeze else out


def control_variate_targets(X, y, V=None):
    """Residual targets with the same Hermite moments of order ≥ 1 (or ≥ 3) and less variance.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    V : ndarray of shape (n_features, k) or None, default=None
        Orthonormal basis of the estimated span of W; when given, the order-2 part of y in
        span(V) is removed too.

    Returns
    -------
    y1 : ndarray of shape (n_samples,)
        y − ȳ − xᵀM̂_1 with M̂_1 = Ê[y x]: same M_j for j ≥ 2 (use for order-2 moments).
    y2 : ndarray of shape (n_samples,) or None
        y1 − ½(zᵀQ̂z − tr Q̂), z = Vᵀx, Q̂ = M̂_2(V, V) computed with y1: same M_j for j ≥ 3
        (use for order ≥ 3 moments). None when V is None.

    Notes
    -----
    Hermite polynomials are orthogonal under N(0, I): E[He_j(x) He_i(x)] = 0 for i < j, so
    subtracting a polynomial of degree < j in x from y leaves M_j unchanged in expectation
    (TENSOR_INIT.md §10).
    """
    ybar = y.mean()
    M1 = X.T @ y / X.shape[0]
    y1 = y - ybar - X @ M1
    if V is None:
        return y1, None
    Zv = X @ V
    Q = (Zv * y1[:, None]).T @ Zv / X.shape[0] - np.mean(y1) * (V.T @ V)
    y2 = y1 - 0.5 * (((Zv @ Q) * Zv).sum(axis=1) - np.trace(Q))
    return y1, y2


def symmetrize(T):
    """Average a cubical tensor over all permutations of its axes.

    Parameters
    ----------
    T : ndarray of shape (k,) * j

    Returns
    -------
    S : ndarray of shape (k,) * j
    """
    perms = list(permutations(range(T.ndim)))
    return sum(np.transpose(T, p) for p in perms) / len(perms)
