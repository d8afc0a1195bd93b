"""Hermite-moment contractions of (X, y) in O(n·d·Σr) time, never forming a d^j array.

The order-j Hermite moment of the data is the symmetric tensor

    M_j = E[y · He_j(x)],  He_j(x) = Σ_P (−1)^{|P|} (⊗_{m∉P} x) ⊗ (⊗_{(p,q)∈P} δ_pq),

summed over the partial matchings P of the j modes (TENSOR_INIT.md §2). By Stein's identity
M_j = Σ_i v_i m_j(‖w_i‖) w̄_i^{⊗j} for y = Σ_i v_i φ(w_iᵀx), x ~ N(0, I_d). The tensor
initialization only ever needs M_j contracted with thin matrices, which this module computes
from the projections X A_m.
"""

from itertools import permutations

import numpy as np

__all__ = ["hermite_contract", "partial_matchings", "control_variate_targets", "symmetrize"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Largest number of float64 entries held by one chunk's row-wise products (about 32 MB).
_MAX_CHUNK_ENTRIES = 4_000_000


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


def _weighted_products(w, Zs):
    """Σ_n w_n ⊗_m Z_m[n, :] for a list of (n, r_m) arrays (row-wise outer products)."""
    shape = tuple(Z.shape[1] for Z in Zs)
    # Width-1 projections (vector modes) are folded into the weights first.
    for Z in Zs:
        if Z.shape[1] == 1:
            w = w * Z[:, 0]
    Zs = [Z for Z in Zs if Z.shape[1] != 1]
    if not Zs:
        return np.full(shape, w.sum())
    if len(Zs) == 1:
        return (w @ Zs[0]).reshape(shape)
    G = Zs[0] * w[:, None]
    for Z in Zs[1:-1]:
        # Row-wise Khatri–Rao product: (n, r_1···r_m) ⊙ (n, r_{m+1}).
        G = (G[:, :, None] * Z[:, None, :]).reshape(G.shape[0], -1)
    return (G.T @ Zs[-1]).reshape(shape)


def hermite_contract(X, y, mats, *, chunk_size=None):
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

    each term assembled with one ``einsum`` whose output subscript lists the modes in order.
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

    matchings = partial_matchings(j)
    unpaired = []
    for P in matchings:
        paired = {m for pair in P for m in pair}
        unpaired.append(tuple(m for m in range(j) if m not in paired))
    subsets = sorted(set(unpaired), key=len)

    # Distinct projection matrices (the same V is often passed for several modes).
    keys = []
    for A in As:
        key = None if A is None else next((i for i, B in enumerate(As) if B is A), None)
        keys.append(key)

    if chunk_size is None:
        widest = max([1] + [int(np.prod([sizes[m] for m in U])) // max(sizes[m] for m in U) for U in subsets if U])
        chunk_size = max(256, _MAX_CHUNK_ENTRIES // max(widest, d))
    chunk_size = int(chunk_size)

    data = {U: np.zeros(tuple(sizes[m] for m in U)) for U in subsets}
    for start in range(0, n, chunk_size):
        Xc = X[start:start + chunk_size]
        yc = y[start:start + chunk_size]
        proj = {}
        Z = []
        for A, key in zip(As, keys):
            if key is None:
                Z.append(Xc)
            else:
                if key not in proj:
                    proj[key] = Xc @ A
                Z.append(proj[key])
        for U in subsets:
            data[U] += _weighted_products(yc, [Z[m] for m in U])
    for U in subsets:
        data[U] /= n

    def gram(p, q):
        A, B = As[p], As[q]
        if A is None and B is None:
            return np.eye(d)
        if A is None:
            return B
        if B is None:
            return A.T
        return A.T @ B

    out = np.zeros(tuple(sizes))
    target = _LETTERS[:j]
    for P, U in zip(matchings, unpaired):
        operands, subs = [data[U]], ["".join(_LETTERS[m] for m in U)]
        for p, q in P:
            operands.append(gram(p, q))
            subs.append(_LETTERS[p] + _LETTERS[q])
        term = np.einsum(",".join(subs) + "->" + target, *operands)
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
