"""Compiled loops of :mod:`sparsenet.tensor_init` (numba): CP-ALS sweeps and the shifted PowerMethod.

One ALS refinement of a k×k×k tensor (k ~ 5) runs up to 100 sweeps of three k×k normal-equation
updates for each start.  In numpy every sweep is ~25 calls on arrays of a few dozen numbers, so the
interpreter and dispatch cost dwarfs the arithmetic; here every sweep of every start is one call.

The operations are those of the numpy reference ``_als_numpy`` in the same order per start (update A
from B, C; B from the new A and C; C from the new A, B; the relative fit of the first unfolding; stop
when no start's fit changed by ``tol``): sums run in a different order than BLAS, so the two agree to
rounding (tested), and each is bit-identical run to run (no threads, no fast-math).  The k×k systems
are solved by LAPACK's LU (numba's ``np.linalg.solve``), as numpy's.

:func:`power_blocks` is the PowerMethod's subspace iteration with an explicit matrix: up to 100
blocks of two d×d by d×k products and two QR factorizations (LAPACK's, as numpy's) per call.

Compiled once per machine (``cache=True``: stored next to this file in ``__pycache__``).
"""

import math

import numpy as np
from numba import njit

__all__ = ["als_sweeps", "power_blocks", "warm_up"]


@njit(cache=True, nogil=True)
def _update(Tm, U, V, ridge, out):
    """out = T_(m) (U ⊙ V) [(UᵀU) * (VᵀV) + ridge I]⁻¹ for the mode-m tensor Tm[a, b, c] (k×k×k)."""
    k = U.shape[0]
    G = np.empty((k, k))
    for r in range(k):
        for q in range(k):
            gu = 0.0
            gv = 0.0
            for b in range(k):
                gu += U[b, r] * U[b, q]
                gv += V[b, r] * V[b, q]
            G[r, q] = gu * gv
        G[r, r] += ridge
    RT = np.empty((k, k))  # RT[r, a] = Σ_bc Tm[a, b, c] U[b, r] V[c, r]
    for a in range(k):
        for r in range(k):
            acc = 0.0
            for b in range(k):
                inner = 0.0
                for c in range(k):
                    inner += Tm[a, b, c] * V[c, r]
                acc += inner * U[b, r]
            RT[r, a] = acc
    X = np.linalg.solve(G, RT)  # G symmetric: out = R G⁻¹ = (G⁻¹ Rᵀ)ᵀ
    for a in range(k):
        for r in range(k):
            out[a, r] = X[r, a]


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
    for sweep in range(max_sweeps):
        for s in range(S):
            _update(T1, B[s], C[s], ridge, A[s])
            _update(T2, A[s], C[s], ridge, B[s])
            _update(T3, A[s], B[s], ridge, C[s])
            res = 0.0
            for a in range(k):
                for b in range(k):
                    for c in range(k):
                        model = 0.0
                        for r in range(k):
                            model += A[s, a, r] * (B[s, b, r] * C[s, c, r])
                        e = T1[a, b, c] - model
                        res += e * e
            fit[s] = math.sqrt(res) / tnorm
        if sweep > 0:
            done = True
            for s in range(S):
                if not abs(prev[s] - fit[s]) < tol:  # NaN never converges, as np.max(...) < tol
                    done = False
            if done:
                return sweep + 1
        prev[:] = fit
    return max_sweeps


@njit(cache=True, nogil=True)
def power_blocks(A, V, n_blocks, tol):
    """Subspace iteration V ← qr(A[s] V[s]) for s = 0, 1 (A: (2, d, d), V: (2, d, k) orthonormal).

    Stops after the first block whose projector change ‖V_t V_tᵀ − V_{t−1} V_{t−1}ᵀ‖_F (the larger of
    the two) is below ``tol``. Returns the last V and the blocks run, or −1 when it never stopped.
    The loop of :func:`sparsenet.tensor_init._shifted_power` with an explicit matrix.
    """
    k = V.shape[2]
    for t in range(n_blocks):
        new = np.empty_like(V)
        converged = True
        for s in range(2):
            q, _ = np.linalg.qr(np.dot(A[s], V[s]))
            new[s] = q
            ss = 0.0  # Σ_ij (q_iᵀ V_j)²
            for i in range(k):
                for j in range(k):
                    o = 0.0
                    for r in range(q.shape[0]):
                        o += q[r, i] * V[s, r, j]
                    ss += o * o
            dl = math.sqrt(max(2.0 * k - 2.0 * ss, 0.0))
            if not dl < tol:  # NaN never converges, as np.max(...) < tol
                converged = False
        V = new
        if converged:
            return V, t + 1
    return V, -1


def warm_up():
    """Compile (or load from the cache) the kernels once."""
    T = np.ones((2, 2, 2))
    U = np.eye(2)[None].copy()
    als_sweeps(T, T, T, U.copy(), U.copy(), U.copy(), 1, 1e-8, 1e-10)
    power_blocks(np.stack([np.eye(3), np.eye(3)]), np.stack([np.eye(3)[:, :1], np.eye(3)[:, :1]]), 1, 1e-10)
