"""Compiled loops of :mod:`sparsenet.tensor_init` (numba): CP-ALS sweeps and the shifted PowerMethod.

One ALS refinement of a k×k×k tensor (k ~ 5) runs up to 100 sweeps of three k×k normal-equation
updates for each start.  In numpy every sweep is ~25 calls on arrays of a few dozen numbers, so the
interpreter and dispatch cost dwarfs the arithmetic; here every sweep of every start is one call.

The operations are those of the numpy reference ``_als_sweeps_numpy`` in the same order per start
(update A from B, C; B from the new A and C; C from the new A, B; the relative fit of the first
unfolding; stop when no start's fit changed by ``tol``); sums run in a different order than BLAS and
the k×k systems are solved by Gaussian elimination with partial pivoting written out (numba's
``np.linalg.solve`` costs ~7 s more compilation), so the two agree to rounding where ALS converges
(tested; a start that wanders for all its sweeps can end elsewhere under any rounding change, as
under another BLAS). Each is bit-identical run to run (no threads, no fast-math). On the 452
initializations of the paper reproduction the init error changed by at most 7e-6.

:func:`power_blocks` is the PowerMethod's subspace iteration with an explicit matrix: up to 100
blocks of two d×d by d×k products (BLAS) and two QR factorizations (LAPACK, numba's ``np.linalg.qr``)
per call: the calls of the numpy loop, so the iterates are the same bits (tested).

Compiled once per machine (``cache=True``: stored next to this file in ``__pycache__``; ~7 s of CPU
the first time, ~0.5 s to load in a new process).
"""

import math

import numpy as np
from numba import njit

__all__ = ["als_sweeps", "power_blocks", "warm_up"]


@njit(cache=True, nogil=True)
def _gram(U, out):
    """out = UᵀU for a k×k factor U (each sum over rows in order; the lower triangle mirrored, the
    same products as computing it)."""
    k = U.shape[0]
    for r in range(k):
        for q in range(r, k):
            acc = 0.0
            for b in range(k):
                acc += U[b, r] * U[b, q]
            out[r, q] = acc
            out[q, r] = acc


@njit(cache=True, nogil=True)
def _update(Tm, U, V, gU, gV, ridge, out, G, RT):
    """out = T_(m) (U ⊙ V) [(UᵀU) * (VᵀV) + ridge I]⁻¹ for the mode-m tensor Tm[a, b, c] (k×k×k)
    and k×k factors U, V with Gram matrices gU, gV; G, RT (k×k) are work arrays.

    Every sum runs in the reference order (over c, then over b), each in a scalar accumulator: the
    same additions, in the same order, as accumulating the k columns r side by side in work arrays,
    faster (no loads and stores of the partial sums; with the fit below, the sweeps take 0.69x the
    time of that form at k = 5, 0.81x at k = 10).
    """
    k = Tm.shape[0]
    for r in range(k):
        for q in range(k):
            G[r, q] = gU[r, q] * gV[r, q]
        G[r, r] += ridge
    for a in range(k):  # RT[r, a] = Σ_b (Σ_c Tm[a, b, c] V[c, r]) U[b, r]
        for r in range(k):
            acc = 0.0
            for b in range(k):
                s = 0.0
                for c in range(k):
                    s += Tm[a, b, c] * V[c, r]
                acc += s * U[b, r]
            RT[r, a] = acc
    _lu_solve(G, RT)  # G symmetric: out = R G⁻¹ = (G⁻¹ Rᵀ)ᵀ
    for a in range(k):
        for r in range(k):
            out[a, r] = RT[r, a]


@njit(cache=True, nogil=True)
def _lu_solve(G, B):
    """Solve G X = B in place (X in B; G overwritten) by Gaussian elimination with partial pivoting.

    Raises ValueError on an exactly zero pivot (a singular G, as LAPACK's getrf reports it).
    """
    k = G.shape[0]
    m = B.shape[1]
    for j in range(k):
        p = j
        for i in range(j + 1, k):
            if abs(G[i, j]) > abs(G[p, j]):
                p = i
        if not G[p, j] != 0.0:
            raise ValueError("singular matrix")
        if p != j:
            for c in range(k):
                G[j, c], G[p, c] = G[p, c], G[j, c]
            for c in range(m):
                B[j, c], B[p, c] = B[p, c], B[j, c]
        for i in range(j + 1, k):
            f = G[i, j] / G[j, j]
            for c in range(j + 1, k):
                G[i, c] -= f * G[j, c]
            for c in range(m):
                B[i, c] -= f * B[j, c]
    for j in range(k - 1, -1, -1):
        for c in range(m):
            acc = B[j, c]
            for i in range(j + 1, k):
                acc -= G[j, i] * B[i, c]
            B[j, c] = acc / G[j, j]


@njit(cache=True, nogil=True)
def als_sweeps(T1, T2, T3, A, B, C, max_sweeps, tol, ridge):
    """Run the ALS sweeps in place on the starts A, B, C (S, k, k); returns the sweeps run.

    T1, T2, T3 are the tensor with its first, second and third index in front (C-contiguous).
    """
    S, k, _ = A.shape
    tnorm = 0.0
    for a in range(k):
        for b in range(k):
            for c in range(k):
                tnorm += T1[a, b, c] * T1[a, b, c]
    tnorm = math.sqrt(tnorm)
    prev = np.empty(S)
    fit = np.empty(S)
    G = np.empty((k, k))
    RT = np.empty((k, k))
    gA = np.empty((S, k, k))  # Gram matrices of the current factors, each formed once per update
    gB = np.empty((S, k, k))
    gC = np.empty((S, k, k))
    BC = np.empty((k, k, k))  # BC[b, c, r] = B[b, r]·C[c, r]
    for s in range(S):
        _gram(B[s], gB[s])
        _gram(C[s], gC[s])
    for sweep in range(max_sweeps):
        for s in range(S):
            As, Bs, Cs = A[s], B[s], C[s]
            _update(T1, Bs, Cs, gB[s], gC[s], ridge, As, G, RT)
            _gram(As, gA[s])
            _update(T2, As, Cs, gA[s], gC[s], ridge, Bs, G, RT)
            _gram(Bs, gB[s])
            _update(T3, As, Bs, gA[s], gB[s], ridge, Cs, G, RT)
            _gram(Cs, gC[s])
            for b in range(k):  # B[b, r]·C[c, r] once, not once per row a
                for c in range(k):
                    for r in range(k):
                        BC[b, c, r] = Bs[b, r] * Cs[c, r]
            res = 0.0
            for a in range(k):
                for b in range(k):
                    for c in range(k):  # model = Σ_r A[a, r]·(B[b, r]·C[c, r]), r in order
                        m = 0.0
                        for r in range(k):
                            m += As[a, r] * BC[b, c, r]
                        e = T1[a, b, c] - m
                        res += e * e
            fit[s] = math.sqrt(res) / tnorm
        if sweep > 0:
            done = True
            for s in range(S):
                if not abs(prev[s] - fit[s]) < tol:  # NaN never converges, as np.max(...) < tol
                    done = False
            if done:
                return sweep + 1
        for s in range(S):  # (element loops, not slices: they compile several times faster)
            prev[s] = fit[s]
    return max_sweeps


@njit(cache=True, nogil=True)
def power_blocks(A, V, n_blocks, tol):
    """Subspace iteration V ← qr(A[s] V[s]) for s = 0, 1 (A: (2, d, d), V: (2, d, k) orthonormal).

    Stops after the first block whose projector change ‖V_t V_tᵀ − V_{t−1} V_{t−1}ᵀ‖_F (the larger of
    the two) is below ``tol``. Returns the last V and the blocks run, or −1 when it never stopped.
    The loop of :func:`sparsenet.tensor_init._shifted_power` with an explicit matrix.
    """
    d, k = V.shape[1], V.shape[2]
    V = V.copy()
    for t in range(n_blocks):
        converged = True
        for s in range(2):
            q, _ = np.linalg.qr(np.dot(A[s], V[s]))  # BLAS and LAPACK: numpy's calls
            ss = 0.0  # Σ_ij (q_iᵀ V_j)²
            for i in range(k):
                for j in range(k):
                    o = 0.0
                    for r in range(d):
                        o += q[r, i] * V[s, r, j]
                    ss += o * o
            dl = math.sqrt(max(2.0 * k - 2.0 * ss, 0.0))
            if not dl < tol:  # NaN never converges, as np.max(...) < tol
                converged = False
            for i in range(d):
                for j in range(k):
                    V[s, i, j] = q[i, j]
        if converged:
            return V, t + 1
    return V, -1


def warm_up():
    """Compile (or load from the cache) the kernels once."""
    T = np.ones((2, 2, 2))
    U = np.eye(2)[None].copy()
    als_sweeps(T, T, T, U.copy(), U.copy(), U.copy(), 1, 1e-8, 1e-10)
    power_blocks(np.stack([np.eye(3), np.eye(3)]), np.stack([np.eye(3)[:, :1], np.eye(3)[:, :1]]), 1, 1e-10)
