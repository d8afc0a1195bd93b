"""Tensor initialization of a one-hidden-layer network (Zhong et al. 2017, Algorithm 1).

From samples (X, y) of y = Σ_i v_i φ(w_iᵀx), x ~ N(0, I_d), estimate (W, v) up to a permutation
of the hidden units: span(W) from an order-j2 moment (PowerMethod or eigh), the directions from
a k×k×k (or k^4) tensor decomposition, and the norms and signs from two low-order moments
(RecMagSign). The exact recipe is docs/design TENSOR_INIT.md; nothing here sees the truth.
"""

import functools
import time
import warnings

import numpy as np

from ._threads import one_blas_thread
from ._validation import check_data, check_random_state, check_scalar
from .activations import Activation, get_activation
from .moments import hermite_contract, symmetrize

__all__ = ["tensor_init"]

# σ grid for the zero/sign tests and the magnitude inversion of a non-homogeneous φ (§3, §7).
_SIGMA_GRID = np.geomspace(0.05, 20.0, 400)
_ZERO_RTOL = 1e-8
_MAX_COND = 100.0
_N_JENNRICH = 20
_N_RANDOM_STARTS = 2
_MAX_ALS_SWEEPS = 100
_ALS_COMPILED_MAX_K = 12  # compiled ALS sweeps up to this k (numpy's BLAS products above)
_MAX_LM_NFEV = 40
_MAX_POWER_ITER = 1000
_EIGH_MAX_D = 2000
# Iterations the implicit PowerMethod is expected to need (the cost model of subspace="auto").
_EXPECTED_POWER_ITERS = 50


class _Profile:
    """What the algorithm needs to know about φ: m_j, the orders and the inverse of |m_{l1}|."""

    def __init__(self, act):
        self.name = act.name
        self.q = act.degree if act.is_homogeneous else None
        self.parity = act.parity
        if self.q is not None:
            unit = np.asarray(act.hermite(1.0), dtype=float)
            self.unit = unit
            grid = _SIGMA_GRID[:, None] ** self.q * unit
        else:
            grid = act.hermite(_SIGMA_GRID)
            self.unit = grid[np.argmin(np.abs(_SIGMA_GRID - 1.0))]
        self.grid = grid
        # Zero test (§3): |m_j(σ)| <= 1e-8·max_j' |m_j'(σ)| at every σ; the small absolute floor keeps
        # quadrature rounding from counting where every m_j underflows (e.g. sin at large σ).
        thr = _ZERO_RTOL * np.max(np.abs(grid[:, 1:]), axis=1, keepdims=True) + 1e-12 * np.max(np.abs(grid))
        nonzero = np.any(np.abs(grid) > thr, axis=0)
        one_sign = ~(np.any(grid > thr, axis=0) & np.any(grid < -thr, axis=0))
        self.sign = np.sign(grid[-1])

        def first(candidates):
            for j in candidates:
                if nonzero[j]:
                    if not one_sign[j]:
                        raise ValueError(
                            f"Activation {act.name!r}: the Hermite constant m_{j}(σ) changes sign on the "
                            "σ grid [0.05, 20], so the moment of order {j} cannot be used (its sign "
                            "is not identifiable). Use another activation.".replace("{j}", str(j))
                        )
                    return j
            return None

        self.j2 = first([2, 3, 4])
        self.j3 = first([3, 4])
        self.l1 = first([1, 3])
        self.l2 = first([2, 4])
        if self.j2 is None or self.j3 is None:
            which = "j2 (order >= 2)" if self.j2 is None else "j3 (order >= 3)"
            raise ValueError(
                f"Activation {act.name!r} has no usable Hermite moment for {which}: m_2..m_4 = "
                f"{np.array2string(self.unit[2:], precision=4)} at σ = 1 (all of m_3, m_4 zero means W is "
                "not identifiable from moments, e.g. a linear or quadratic φ)."
            )
        if self.l1 is None and self.l2 is None:
            raise ValueError(
                f"Activation {act.name!r} has no usable odd (l1) and no usable even (l2) Hermite moment "
                f"(m_1..m_4 = {np.array2string(self.unit[1:], precision=4)} at σ = 1): the norms of the "
                "hidden weights are not identifiable."
            )
        m0 = grid[:, 0]
        self.m0_const = float(m0[0]) if np.ptp(m0) <= 1e-6 * max(abs(m0[0]), 1e-300) and abs(m0[0]) > 1e-8 else None

    def magnitude(self, target, order):
        """σ with |m_order(σ)| = target (clipped into the invertible range); returns (σ, n_clipped)."""
        target = np.asarray(target, dtype=float)
        if self.q is not None:
            return (target / abs(self.unit[order])) ** (1.0 / self.q), 0
        curve = np.abs(self.grid[:, order])
        if not np.all(np.diff(curve) > 0):
            raise ValueError(
                f"Activation {self.name!r}: |m_{order}(σ)| is not strictly increasing on the σ grid "
                "[0.05, 20], so the norms of the hidden weights are not identifiable from it."
            )
        clipped = np.clip(target, curve[0], curve[-1])
        n_clipped = int(np.sum(clipped != target))
        return np.interp(clipped, curve, _SIGMA_GRID), n_clipped


@functools.lru_cache(maxsize=64)
def _cached_profile(act):
    return _Profile(act)


def _profile(act):
    try:
        return _cached_profile(act)
    except TypeError:  # unhashable user activation
        return _Profile(act)


# ----------------------------------------------------------------------------------------------
# Data parts and moment targets
# ----------------------------------------------------------------------------------------------
class _Part:
    """Rows of one split part, with its control-variate targets computed once."""

    def __init__(self, X, y, control_variate):
        self.X, self.y, self.cv = X, y, control_variate
        self.n = X.shape[0]
        self.ybar = float(y.mean())
        self._M1 = None
        self._y1 = None
        self._y2 = {}
        self._proj = {}

    @property
    def M1(self):
        """Raw E[y x], computed on first use (only α = M̂1 and the control variates need it)."""
        if self._M1 is None:
            self._M1 = self.X.T @ self.y / self.n
        return self._M1

    def proj(self, V):
        """X V, computed once per V (one O(n·d·k) pass shared by R̂, Q̂2 and the targets)."""
        key = id(V)
        if key not in self._proj:
            self._proj[key] = (V, self.X @ V)
        return self._proj[key][1]

    @property
    def y1(self):
        if self._y1 is None:
            self._y1 = self.y - self.ybar - self.X @ self.M1
        return self._y1

    def targets(self, order, V=None):
        """Targets for an order-`order` moment (§10): raw y without control variate."""
        if not self.cv:
            return self.y
        if order == 1:
            return self.y - self.ybar
        if order == 2 or V is None:
            return self.y1
        key = id(V)
        if key not in self._y2:
            Z = self.proj(V)
            y1 = self.y1
            Q = (Z * y1[:, None]).T @ Z / self.n - y1.mean() * (V.T @ V)
            self._y2[key] = (V, y1 - 0.5 * (((Z @ Q) * Z).sum(axis=1) - np.trace(Q)))
        return self._y2[key][1]


def _split_parts(n, split):
    """Row ranges of S_a, S_b, S_c, S_e (§4 step 2)."""
    if split == "none":
        return [(0, n)] * 4
    third = n // 3
    rest = n - 2 * third
    c_end = 2 * third + rest // 2
    return [(0, third), (third, 2 * third), (2 * third, c_end), (c_end, n)]


# ----------------------------------------------------------------------------------------------
# Subspace: eigh or the paper's shifted PowerMethod (§5)
# ----------------------------------------------------------------------------------------------
def _top_abs_eig(P2, k):
    lam, vec = np.linalg.eigh(P2)
    order = np.argsort(-np.abs(lam))
    lam, vec = lam[order], vec[:, order]
    gap = abs(lam[k - 1]) / abs(lam[k]) if k < len(lam) and lam[k] != 0 else np.inf
    return vec[:, :k], lam[: k + 1], gap


def _qr_q(a):
    """``np.linalg.qr(a)[0]`` for a float (stack of) matrices: numpy's own two LAPACK gufuncs (geqrf,
    then orgqr), without its wrapper (the R factor, triu, type checks), so the same bits at a
    fraction of the cost on these small matrices (~5x at 20×5). numpy's ``qr`` is the fallback,
    and raises its own LinAlgError (e.g. on NaN)."""
    try:
        from numpy.linalg import _umath_linalg

        work = np.array(a, dtype=np.float64)  # overwritten by geqrf
        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            return _umath_linalg.qr_reduced(work, _umath_linalg.qr_r_raw(work, signature="d->d"), signature="dd->d")
    except (ImportError, AttributeError, TypeError, FloatingPointError):
        return np.linalg.qr(a)[0]


def _shifted_power(matvec, d, k, rng, shift, max_iter=_MAX_POWER_ITER, tol=1e-10, matrix=None, block=10,
                   compiled=True):
    """Paper's PowerMethod: subspace iteration on C + P2 and C − P2, then keep the k largest |λ|.

    With an explicit ``matrix`` (= P2) the iteration applies (C ± P2)^block between QR steps: the
    same orthonormal columns as ``block`` single steps (QR of A^m V_0 = product of the single-step
    QRs), at a tenth of the cost. The eigenvalues of (C ± P2)/(4C/3) lie in [1/2, 1] for
    C = 3||P2||, so the powers neither overflow nor lose the spectrum. That loop runs in compiled
    code (:func:`sparsenet._tensor_kernels.power_blocks`) unless numba is missing or ``compiled``
    is False.
    """
    V = _qr_q(rng.standard_normal((2, d, k)))
    if matrix is not None and shift > 0:
        eye = np.eye(d)
        S = np.stack([shift * eye + matrix, shift * eye - matrix]) / (4.0 * shift / 3.0)
        A = np.linalg.matrix_power(S, block)

        def step(V):
            return A @ V
    else:
        block = 1

        def step(V):
            PV = matvec(np.concatenate([V[0], V[1]], axis=1))
            return np.stack([shift * V[0] + PV[:, :k], shift * V[1] - PV[:, k:]])
    n_iter = max_iter
    n_blocks = -(-max_iter // block)
    if matrix is not None and shift > 0 and compiled:
        try:
            from . import _tensor_kernels

            Vc, t = _tensor_kernels.power_blocks(np.ascontiguousarray(A), np.ascontiguousarray(V), n_blocks, tol)
            V, n_iter, n_blocks = Vc, (t * block if t > 0 else max_iter), 0
        except Exception:  # noqa: BLE001 - numba missing or a failed factorization: the numpy loop
            pass
    for t in range(n_blocks):
        new = _qr_q(step(V))
        # Projector change ||V_t V_tᵀ − V_{t−1} V_{t−1}ᵀ||_F, without forming d×d matrices.
        overlap = np.einsum("sdi,sdj->sij", new, V)
        delta = np.sqrt(np.maximum(2 * k - 2 * np.sum(overlap**2, axis=(1, 2)), 0.0)).max()
        V = new
        if delta < tol:
            n_iter = (t + 1) * block
            break
    PV = matvec(np.concatenate([V[0], V[1]], axis=1))
    rayleigh = np.abs(np.einsum("di,di->i", np.concatenate([V[0], V[1]], axis=1), PV))
    order = np.argsort(-rayleigh)
    keep = order[:k]
    V1 = V[0][:, keep[keep < k]]
    V2 = V[1][:, keep[keep >= k] - k]
    if V2.shape[1]:
        V2 = _qr_q(V2 - V1 @ (V1.T @ V2))
    Vout = np.concatenate([V1, V2], axis=1)
    lam = rayleigh[order[: k + 1]]
    gap = lam[k - 1] / lam[k] if len(lam) > k and lam[k] > 0 else np.inf
    return Vout, lam, gap, n_iter


def _spectral_norm(matvec, d, rng, n_iter=50):
    x = rng.standard_normal((d, 1))
    x /= np.linalg.norm(x)
    norm = 0.0
    for _ in range(n_iter):
        x = matvec(x)
        norm = np.linalg.norm(x)
        if norm == 0:
            return 0.0
        x /= norm
    return norm


# ----------------------------------------------------------------------------------------------
# Symmetric CP decomposition of the k×k×k tensor (§6)
# ----------------------------------------------------------------------------------------------
def _normalize_columns(U):
    norms = np.linalg.norm(U, axis=-2, keepdims=True)
    return U / np.where(norms > 0, norms, 1.0)


def _khatri_rao(*Us):
    """Column-wise Khatri–Rao product of a batch: (S, k_1, r), (S, k_2, r), … -> (S, k_1·k_2···, r)."""
    out = Us[0]
    for U in Us[1:]:
        out = (out[:, :, None, :] * U[:, None, :, :]).reshape(out.shape[0], -1, out.shape[-1])
    return out


def _batched_lstsq(G, rhs):
    """``np.linalg.lstsq(G[s], rhs[s], rcond=None)[0]`` for every s, in one call.

    numpy's ``lstsq`` takes one matrix; its LAPACK gufunc (gelsd per matrix, the same workspace
    query) takes a batch, so the solutions are the bits of the per-matrix loop (tested) at a
    fraction of its Python overhead (~20 calls per candidate set). The loop is the fallback (a
    numpy without that gufunc, or gelsd failing: the loop then raises numpy's own LinAlgError).
    """
    k = G.shape[-1]
    try:
        from numpy.linalg import _umath_linalg

        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            return _umath_linalg.lstsq(G, rhs[..., None], np.finfo(np.float64).eps * k,
                                       signature="ddd->ddid")[0][..., 0]
    except (ImportError, AttributeError, TypeError, FloatingPointError):
        return np.stack([np.linalg.lstsq(g, r, rcond=None)[0] for g, r in zip(G, rhs)])


def _fit_weights(T, U):
    """Least-squares c for T ≈ Σ_i c_i u_i^{⊗j} for a batch of U (S, k, k); returns c, relative residual."""
    j = T.ndim
    k = T.shape[0]
    G = np.einsum("sai,saj->sij", U, U) ** j
    # rhs[s, i] = T(u_i, …, u_i) = Σ_a u_ai (T_(1) · (u_i ⊙ … ⊙ u_i))_a: one matmul per batch.
    rhs = np.sum((T.reshape(k, -1) @ _khatri_rao(*([U] * (j - 1)))) * U, axis=1)
    try:
        c = np.linalg.solve(G, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:  # some U with repeated columns (e.g. a complex Jennrich pair)
        c = _batched_lstsq(G, rhs)
    tnorm2 = np.sum(T**2)
    res2 = tnorm2 - 2 * np.sum(c * rhs, axis=1) + np.einsum("si,sij,sj->s", c, G, c)
    rel = np.sqrt(np.maximum(res2, 0.0) / tnorm2) if tnorm2 > 0 else np.zeros(len(U))
    return c, rel


def _jennrich(T3, rng, n_pairs=_N_JENNRICH):
    """Jennrich candidates: eigenvectors of T(I,I,a) T(I,I,b)^{-1} for Gaussian a, b (shape (P, k, k))."""
    k = T3.shape[0]
    ab = rng.standard_normal((2, n_pairs, k))
    Ta = (T3.reshape(k * k, k) @ ab[0].T).T.reshape(n_pairs, k, k)
    Tb = (T3.reshape(k * k, k) @ ab[1].T).T.reshape(n_pairs, k, k)
    good = np.abs(np.linalg.det(Tb)) > 1e-300
    if np.all(good):
        try:  # all pairs at once (the same LAPACK calls per pair as the loop below)
            M = np.linalg.solve(Tb.transpose(0, 2, 1), Ta.transpose(0, 2, 1)).transpose(0, 2, 1)
            return _normalize_columns(np.real(np.linalg.eig(M)[1]))
        except np.linalg.LinAlgError:
            pass
    out = np.empty((n_pairs, k, k))
    for p in range(n_pairs):
        if not good[p]:
            out[p] = np.eye(k)
            continue
        try:
            M = np.linalg.solve(Tb[p].T, Ta[p].T).T  # Ta Tb^{-1} = U diag(ratio) U^{-1}
            out[p] = np.real(np.linalg.eig(M)[1])
        except np.linalg.LinAlgError:
            out[p] = np.eye(k)
    return _normalize_columns(out)


def _als(T, starts, max_sweeps=_MAX_ALS_SWEEPS, tol=1e-8, ridge=1e-10, compiled=True):
    """Non-symmetric CP-ALS from a batch of starts (S, k, k), then symmetrized unit columns.

    Each update is the normal equation of one unfolding, A = T_(1) (C ⊙ B) ((BᵀB) * (CᵀC))⁻¹;
    the fit uses the residual of the first unfolding. Stops when the relative fit of every start
    changes by less than ``tol``. For k <= 12 the sweeps run in compiled code
    (:mod:`sparsenet._tensor_kernels`, equal to :func:`_als_sweeps_numpy` up to rounding) unless
    numba is missing or ``compiled`` is False; a failure there (e.g. a non-finite tensor) reruns
    them in numpy. Larger k stays in numpy, whose BLAS products win there (20 sweeps, 3 starts,
    one core: k = 5 0.4 vs 3.7 ms, k = 10 2.2 vs 4.2 ms, k = 15 9.9 vs 8.3 ms, k = 20 25 vs 13 ms).
    """
    A = B = C = None
    if compiled and T.shape[0] <= _ALS_COMPILED_MAX_K:
        try:
            from . import _tensor_kernels

            T = np.asarray(T, dtype=float)
            A, B, C = (np.array(starts, dtype=float) for _ in range(3))
            _tensor_kernels.als_sweeps(np.ascontiguousarray(T), np.ascontiguousarray(T.transpose(1, 0, 2)),
                                       np.ascontiguousarray(T.transpose(2, 0, 1)), A, B, C, int(max_sweeps),
                                       float(tol), float(ridge))
        except Exception:  # noqa: BLE001 - numba missing, or a non-finite / singular system: numpy path
            A = None
    if A is None:
        A, B, C = _als_sweeps_numpy(T, starts, max_sweeps, tol, ridge)
    A, B, C = _normalize_columns(A), _normalize_columns(B), _normalize_columns(C)
    sb = np.sign(np.sum(A * B, axis=1, keepdims=True))
    sc = np.sign(np.sum(A * C, axis=1, keepdims=True))
    sb[sb == 0] = 1
    sc[sc == 0] = 1
    return _normalize_columns(A + sb * B + sc * C)


def _als_sweeps_numpy(T, starts, max_sweeps, tol, ridge):
    """The ALS sweeps of :func:`_als` in numpy (the reference): one batched matmul per update."""
    k = T.shape[0]
    A = starts.copy()
    B = starts.copy()
    C = starts.copy()
    eye = ridge * np.eye(k)
    prev = None
    tnorm = np.linalg.norm(T)
    T1 = T.reshape(k, k * k)  # T_(1)[a, (b, c)]
    T2 = T.transpose(1, 0, 2).reshape(k, k * k)  # T_(2)[b, (a, c)]
    T3 = T.transpose(2, 0, 1).reshape(k, k * k)  # T_(3)[c, (a, b)]

    def gram(U):
        return np.matmul(U.transpose(0, 2, 1), U)

    for _ in range(max_sweeps):
        A = np.linalg.solve(gram(B) * gram(C) + eye, (T1 @ _khatri_rao(B, C)).transpose(0, 2, 1)).transpose(0, 2, 1)
        B = np.linalg.solve(gram(A) * gram(C) + eye, (T2 @ _khatri_rao(A, C)).transpose(0, 2, 1)).transpose(0, 2, 1)
        C = np.linalg.solve(gram(A) * gram(B) + eye, (T3 @ _khatri_rao(A, B)).transpose(0, 2, 1)).transpose(0, 2, 1)
        resid = T1 - A @ _khatri_rao(B, C).transpose(0, 2, 1)
        fit = np.sqrt(np.sum(resid**2, axis=(1, 2))) / tnorm
        if prev is not None and np.max(np.abs(prev - fit)) < tol:
            break
        prev = fit
    return A, B, C


def _random_orthogonal(rng, n, k):
    return _qr_q(rng.standard_normal((n, k, k)))


def _select(T, candidates):
    """Smallest relative residual among candidates with cond(U) <= 100 (§6 guard)."""
    c, rel = _fit_weights(T, candidates)
    conds = np.linalg.cond(candidates)
    ok = np.isfinite(rel) & (conds <= _MAX_COND)
    if not np.any(ok):
        raise ValueError(
            "Degenerate tensor decomposition: every candidate factor matrix U has cond(U) > "
            f"{_MAX_COND:g} (smallest: {np.nanmin(conds):.3g}); too few samples or W rank-deficient "
            "(the decomposition needs k linearly independent hidden weight vectors)."
        )
    best = np.flatnonzero(ok)[np.argmin(rel[ok])]
    return candidates[best], c[best], float(rel[best]), float(conds[best])


def _decompose3(T, rng):
    """Jennrich (20 pairs) + CP-ALS from the best Jennrich fit and random orthogonal starts."""
    k = T.shape[0]
    jen = _jennrich(T, rng)
    _, rel = _fit_weights(T, jen)
    conds = np.linalg.cond(jen)
    rel = np.where(conds <= _MAX_COND, rel, np.inf)
    best_jen = jen[np.argmin(rel)]
    starts = np.concatenate([best_jen[None], _random_orthogonal(rng, _N_RANDOM_STARTS, k)])
    refined = _als(T, starts)
    return _select(T, np.concatenate([best_jen[None], refined]))


def _sym4(U, c):
    return np.einsum("ai,bi,ci,di,i->abcd", U, U, U, U, c)


def _lm4(T, U0, c0, max_nfev=_MAX_LM_NFEV, ftol=1.49012e-8, xtol=1.49012e-8):
    """Levenberg–Marquardt on the k^4 residuals of T − Σ_i c_i u_i^{⊗4} (analytic Jacobian).

    A plain numpy LM (Marquardt's diagonal scaling, Nielsen's damping update), not MINPACK:
    scipy's ``least_squares(method="lm")`` returned different bits for the same inputs
    depending on the state of the heap (issue 13), which broke same seed -> same result.
    Every operation here is a fixed sequence of numpy/LAPACK calls on the same inputs, so the
    result depends on the arguments only. At most ``max_nfev`` residual evaluations; stops when
    the relative decrease of the cost or the relative step falls below ``ftol`` / ``xtol``.
    """
    k = T.shape[0]
    eye = np.eye(k)

    def unpack(x):
        return x[: k * k].reshape(k, k), x[k * k:]

    def fun(x):
        U, c = unpack(x)
        return (_sym4(U, c) - T).ravel()

    def jac(x):
        U, c = unpack(x)
        outer3 = np.einsum("bi,ci,di->bcdi", U, U, U)
        # d/dU[e, i] of c_i u_i^{⊗4}: the unit vector e in each of the 4 modes.
        t = np.einsum("ae,bcdi,i->abcdei", eye, outer3, c)
        jU = t + t.transpose(1, 0, 2, 3, 4, 5) + t.transpose(1, 2, 0, 3, 4, 5) + t.transpose(1, 2, 3, 0, 4, 5)
        jc = np.einsum("ai,bcdi->abcdi", U, outer3)
        return np.concatenate([jU.reshape(k**4, k * k), jc.reshape(k**4, k)], axis=1)

    x = np.concatenate([U0.ravel(), c0])
    r = fun(x)
    cost = float(r @ r)
    nfev, damping, nu = 1, None, 2.0
    while nfev < max_nfev and np.isfinite(cost) and cost > 0:
        J = jac(x)
        H = J.T @ J
        g = J.T @ r
        scale = np.maximum(np.diag(H), 1e-12 * max(float(np.max(np.diag(H))), 1e-300))
        if damping is None:
            damping = 1e-3
        accepted = False
        while nfev < max_nfev:
            try:
                step = np.linalg.solve(H + damping * np.diag(scale), -g)
            except np.linalg.LinAlgError:
                damping *= nu
                nu *= 2.0
                if not damping < 1e30:  # no damping makes the system solvable: keep the last iterate
                    break
                continue
            x_new = x + step
            r_new = fun(x_new)
            nfev += 1
            cost_new = float(r_new @ r_new)
            predicted = float(-(step @ g) - step @ H @ step / 2.0) * 2.0  # model decrease of ||r||²
            if np.isfinite(cost_new) and cost_new < cost:
                rho = (cost - cost_new) / predicted if predicted > 0 else 0.0
                damping *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                small_step = np.linalg.norm(step) <= xtol * (np.linalg.norm(x) + xtol)
                small_decrease = (cost - cost_new) <= ftol * cost
                x, r, cost = x_new, r_new, cost_new
                accepted = True
                break
            damping *= nu
            nu *= 2.0
        if not accepted or small_step or small_decrease:
            break
    U, _ = unpack(x)
    return _normalize_columns(U)


def _decompose4(T, rng):
    """Order-4 [ext]: Jennrich on the slice T(·,·,·,g) and random starts, refined by LM."""
    k = T.shape[0]
    g = rng.standard_normal(k)
    jen = _jennrich(np.einsum("abcd,d->abc", T, g), rng)
    c, rel = _fit_weights(T, jen)
    conds = np.linalg.cond(jen)
    rel = np.where(conds <= _MAX_COND, rel, np.inf)
    ib = np.argmin(rel)
    starts = [(jen[ib], c[ib])]
    rand = _random_orthogonal(rng, _N_RANDOM_STARTS, k)
    c_rand, _ = _fit_weights(T, rand)
    starts += list(zip(rand, c_rand))
    refined = np.stack([_lm4(T, U0, c0) for U0, c0 in starts])
    return _select(T, np.concatenate([jen[ib][None], refined]))


# ----------------------------------------------------------------------------------------------
# Main function
# ----------------------------------------------------------------------------------------------
def _rec_mag_sign(prof, V, U, alpha, Q1, Q2, *, ybar=None):
    """RecMagSign (§7): norms and signs from Q̂1 = M̂_{l1}(I, α, …) and Q̂2 = M̂_{l2}(V, V, α, …).

    Returns W0 (d, k), v0 (k,) and a dict with z, r, a = αᵀB, sigma, n_clipped. ``ybar`` (mean
    target) is used only by the sign-count rule of a φ with constant m_0 and no even moment.
    """
    k = U.shape[1]
    l1, l2 = prof.l1, prof.l2
    B = V @ U  # column i ≈ s_i w̄_i
    a = B.T @ alpha
    if (l1 is not None and l1 > 1) or (l2 is not None and l2 > 2):
        if np.min(np.abs(a)) < 1e-3:
            warnings.warn(
                f"Tiny α-weights: min_i |αᵀw̄_i| = {np.min(np.abs(a)):.3g} < 1e-3; magnitudes and signs of "
                "the corresponding hidden units are unreliable.",
                stacklevel=4,
            )
    z = r = None
    if l1 is not None:
        z = np.linalg.lstsq(B, Q1, rcond=None)[0]
    if l2 is not None:
        Q2 = (Q2 + Q2.T) / 2
        design = np.einsum("ai,bi->abi", U, U).reshape(k * k, k)  # column i = vec(û_i û_iᵀ)
        r = np.linalg.lstsq(design, Q2.ravel(), rcond=None)[0]
    for name, vec in (("z", z), ("r", r)):
        if vec is not None and np.min(np.abs(vec)) < 1e-3 * np.max(np.abs(vec)):
            warnings.warn(
                f"Sign undetermined: min_i |{name}_i| = {np.min(np.abs(vec)):.3g} is below 1e-3·max_i |{name}_i| "
                f"= {1e-3 * np.max(np.abs(vec)):.3g}; the sign of that hidden unit is a guess.",
                stacklevel=4,
            )

    # Population: z_i = v_i s_i m_{l1}(σ_i) a_i^{l1−1}, r_i = v_i m_{l2}(σ_i) a_i^{l2−2}.
    if l2 is not None:
        v0 = np.sign(r) * prof.sign[l2]
        v0[v0 == 0] = 1.0
    else:
        v0 = np.ones(k)
    if l1 is not None:
        s = np.sign(v0 * z) * prof.sign[l1]
        s[s == 0] = 1.0
        sigma, n_clipped = prof.magnitude(np.abs(z) / np.abs(a) ** (l1 - 1), l1)
    else:  # even φ: ±w_i is not identifiable, magnitude from Q̂2
        s = np.ones(k)
        sigma, n_clipped = prof.magnitude(np.abs(r) / np.abs(a) ** (l2 - 2), l2)
    W0 = B * (s * sigma)

    if l2 is None:
        if prof.m0_const is not None and prof.parity != "odd" and ybar is not None:
            # E[y] = m_0 Σ_i v_i: the number p of positive v_i is identifiable (sigmoid rule, §7);
            # flipping (v_i, w_i) -> (−v_i, −w_i) on any k − p units gives the same function.
            p = int(np.clip(np.round((k + ybar / prof.m0_const) / 2), 0, k))
            flip = np.arange(k) >= p
            v0[flip] = -v0[flip]
            W0[:, flip] = -W0[:, flip]
        else:
            warnings.warn(
                f"Activation {prof.name!r} has no usable even Hermite moment (odd φ): v is not identifiable; "
                "returned v = +1 and W0 estimates the columns v_i·w_i.",
                stacklevel=4,
            )
    return W0, v0, {"z": z, "r": r, "a": a, "sigma": sigma, "n_clipped": n_clipped}


def _check_gaussian(X, Z=None, V=None):
    """Warn when X is clearly not N(0, I); returns (||Cov − I||_2 estimate, max |mean|).

    d <= 100: the exact spectral norm of X̂ᵀX̂/n − I (O(n·d²), cheap there). Larger d: a lower
    bound on it in O(n·d·k), never an n·d² pass: the largest diagonal deviation |Ê[x_j²] − 1|
    (per-feature variances, O(n·d)) and ||Vᵀ(X̂ᵀX̂/n − I)V||_2 = ||ZᵀZ/n − VᵀV||_2 in the span V of
    the subspace step, from Z = X V that the tensor step computes anyway. A scaled, shifted or
    correlated X shows up in one of them (the direction where the moments live is checked).
    """
    n, d = X.shape
    mean_dev = float(np.max(np.abs(np.ones(n) @ X))) / n  # column sums by gemv (~5x faster than X.mean(0))
    if d <= 100:  # spectral norm of the symmetric Cov − I: its largest |eigenvalue| (eigvalsh, not an SVD)
        cov_dev = float(np.max(np.abs(np.linalg.eigvalsh(X.T @ X / n - np.eye(d)))))
    else:
        sq = np.zeros(d)
        step = max(1, 2_000_000 // d)
        for start in range(0, n, step):
            Xc = X[start:start + step]
            sq += np.einsum("ij,ij->j", Xc, Xc)
        cov_dev = float(np.max(np.abs(sq / n - 1.0)))
        if Z is not None:
            cov_dev = max(cov_dev, float(np.linalg.norm(Z.T @ Z / n - V.T @ V, 2)))
    # Sampling fluctuation of ||Cov − I||_2 is about 2√(d/n) + d/n; allow for it.
    tol_cov = 0.2 + 2 * np.sqrt(d / n) + d / n
    tol_mean = 0.1 + 4 / np.sqrt(n)
    if cov_dev > tol_cov or mean_dev > tol_mean:
        warnings.warn(
            f"Input X does not look like N(0, I): ||Cov(X) − I||_2 = {cov_dev:.3g} (tolerance {tol_cov:.3g}), "
            f"max |mean(X)| = {mean_dev:.3g} (tolerance {tol_mean:.3g}); the moment identities of the "
            "tensor initialization assume standard Gaussian inputs.",
            stacklevel=4,
        )
    return cov_dev, mean_dev




def tensor_init(
    X,
    y,
    k,
    *,
    activation="relu2",
    split="none",
    control_variate=True,
    subspace="auto",
    random_state=None,
    return_info=False,
):
    """Estimate the weights of y = Σ_i v_i φ(w_iᵀx) from Hermite moments (tensor initialization).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs, assumed ~ N(0, I_d) (a warning is issued when they clearly are not).
    y : array-like of shape (n_samples,)
        Targets.
    k : int
        Number of hidden units, 1 <= k <= n_features.
    activation : str, Activation or callable, default="relu2"
        φ; see :func:`sparsenet.activations.get_activation`.
    split : {"none", "paper"}, default="none"
        "paper" uses four disjoint row blocks S_a, S_b, S_c, S_e (subspace, tensor, Q1, Q2) as in
        the paper; "none" uses all rows for every moment (lower error at every n measured).
    control_variate : bool, default=True
        Subtract the low-order polynomial part of y before each moment (same expectation, lower
        variance; TENSOR_INIT.md §10). False = raw y, as in the paper.
    subspace : {"auto", "eigh", "power"}, default="auto"
        How span(W) is found from P̂2: "eigh" forms the d×d matrix and takes the k eigenvectors of
        largest |λ|; "power" is the paper's shifted PowerMethod (up to 1000 iterations with a
        convergence test); "auto" is "eigh" when forming P̂2 is the cheaper choice, otherwise
        "power" with implicit O(n·d·k) products: P̂2 by BLAS syrk costs n·d²/2 multiply-adds, the
        implicit iterations about 50 × 2·n·d·k, so "eigh" when d <= 200·k (and d <= 2000, which
        bounds the d×d memory and the O(d³) eigh).
    random_state : None, int or numpy.random.Generator, default=None
        Source of α, the Jennrich projections, the ALS/LM and power-method starts.
    return_info : bool, default=False
        Also return a dict of diagnostics.

    Returns
    -------
    W0 : ndarray of shape (n_features, k)
        Estimated hidden weights (columns in an arbitrary order).
    v0 : ndarray of shape (k,)
        Estimated output weights in {−1, +1}.
    info : dict
        Only when ``return_info=True``: "j2", "j3", "l1", "l2" (moment orders), "alpha" and
        "alpha_kind" ("random" or "M1"), "subspace", "eigengap" (|λ_k|/|λ_{k+1}| of P̂2),
        "eigenvalues", "power_iters", "tensor_order", "cp_residual" (relative), "cond_U", "c",
        "z", "r", "a", "sigma", "n_clipped", "part_sizes", "timings" (seconds per stage).

    Raises
    ------
    ValueError
        k outside [1, n_features]; bad X or y; an unknown option; a split part with fewer than
        max(10·n_features, 50) rows; an activation without the needed nonzero Hermite moments;
        a degenerate decomposition (every candidate with cond(U) > 100).

    Warns
    -----
    UserWarning
        Eigen-gap below 1.5, CP residual above 0.5, undetermined signs (|z_i| or |r_i| below
        1e-3·max), tiny α-weights, X far from N(0, I), and an odd φ (v not identifiable: v0 = +1).

    Notes
    -----
    With M_j = E[y He_j(x)] = Σ_i v_i m_j(‖w_i‖) w̄_i^{⊗j} (Stein's identity):

    1. V = top-k eigenvectors (by |λ|) of P̂2 = M̂_{j2}(I, I, α, …, α);
    2. R̂ = M̂_{j3}(V, V, V, α, …) (or M̂_4(V, V, V, V) when j3 = 4), symmetrized, decomposed as
       Σ_i c_i û_i^{⊗3} by Jennrich + CP-ALS (order 4: Levenberg–Marquardt), keeping the
       best fit with cond(Û) <= 100;
    3. RecMagSign: with B = VÛ, z = argmin ||Q̂1 − Bz|| for Q̂1 = M̂_{l1}(I, α, …) and
       r = argmin ||Q̂2 − Σ r_i û_iû_iᵀ|| for Q̂2 = M̂_{l2}(V, V, α, …) give v_i = sign(r_i m_{l2}),
       s_i = sign(v_i z_i m_{l1}) and ‖w_i‖ from |z_i| = |m_{l1}(‖w_i‖)|·|αᵀB_i|^{l1−1}.

    Every pass over the data costs O(n·d·k) (plus O(n·d²) for the explicit P̂2 of "eigh");
    no d×d×d array is formed. The report's procedure is
    ``split="paper", control_variate=False, subspace="power"``.

    References
    ----------
    K. Zhong, Z. Song, P. Jain, P. Bartlett, I. Dhillon. Recovery guarantees for one-hidden-layer
    neural networks. ICML 2017 (arXiv:1706.03175), Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W = np.linalg.qr(rng.standard_normal((10, 3)))[0] * [1.0, 1.5, 2.0]
    >>> X = rng.standard_normal((20000, 10))
    >>> y = (np.maximum(X @ W, 0) ** 2) @ np.array([1.0, -1.0, 1.0])
    >>> W0, v0 = tensor_init(X, y, 3, random_state=0)
    >>> W0.shape, sorted(v0.tolist())
    ((10, 3), [-1.0, 1.0, 1.0])
    """
    with one_blas_thread(np.shape(X)[-1] ** 2 * len(X) <= 1e8 if np.ndim(X) == 2 else False):
        try:
            return _tensor_init(
                X,
                y,
                k,
                activation=activation,
                split=split,
                control_variate=control_variate,
                subspace=subspace,
                random_state=random_state,
                return_info=return_info,
            )
        except np.linalg.LinAlgError as exc:  # overflowing or degenerate moments (e.g. X far from N(0, I))
            raise ValueError(f"The tensor initialization failed numerically ({exc}); the moments are degenerate. "
                             "It assumes x ~ N(0, I): standardize X, and check that y is finite and not "
                             "dominated by a few samples.") from None


def _tensor_init(
    X,
    y,
    k,
    *,
    activation="relu2",
    split="none",
    control_variate=True,
    subspace="auto",
    random_state=None,
    return_info=False,
):
    """Body of :func:`tensor_init` (arguments as there)."""
    t_start = time.perf_counter()
    timings = {}
    X, y = check_data(X, y)
    if not np.ptp(y) > 0:
        raise ValueError(f"Input 'y' is constant (every value {y[0]:g}): its moments carry no information "
                         "about the hidden weights, so the tensor initialization cannot run.")
    n, d = X.shape
    k = check_scalar(k, "k", kind="int", low=1, high=d, owner="tensor_init")
    if split not in ("none", "paper"):
        raise ValueError(f"The 'split' parameter of tensor_init must be 'none' or 'paper'. Got {split!r} instead.")
    if subspace not in ("auto", "eigh", "power"):
        raise ValueError(
            f"The 'subspace' parameter of tensor_init must be 'auto', 'eigh' or 'power'. Got {subspace!r} instead."
        )
    if not isinstance(control_variate, (bool, np.bool_)):
        raise ValueError(
            f"The 'control_variate' parameter of tensor_init must be a bool. Got {control_variate!r} instead."
        )
    act = get_activation(activation) if not isinstance(activation, Activation) else activation
    prof = _profile(act)
    rng = check_random_state(random_state)

    ranges = _split_parts(n, split)
    sizes = [b - a for a, b in ranges]
    floor = max(10 * d, 50)
    if min(sizes) < floor:
        if split == "paper":
            msg = (f"split='paper' divides n_samples={n} into parts of sizes {tuple(sizes)} "
                   f"(S_a, S_b, S_c, S_e); each needs")
            need = 4 * floor
            while min(b - a for a, b in _split_parts(need, split)) < floor:
                need += 1
        else:
            msg = f"tensor_init uses all n_samples={n} rows; it needs"
            need = floor
        raise ValueError(
            f"Too few samples: {msg} at least max(10*n_features, 50) = {floor} rows "
            f"(n_features={d}). Got n_samples={n}; use n_samples >= {need}."
        )

    cache = {}
    parts = []
    for a, b in ranges:
        if (a, b) not in cache:
            cache[(a, b)] = _Part(X[a:b], y[a:b], bool(control_variate))
        parts.append(cache[(a, b)])
    Pa, Pb, Pc, Pe = parts
    j2, j3, l1, l2 = prof.j2, prof.j3, prof.l1, prof.l2

    # α: random unit vector; [ext] M̂1 direction when j2 > 2 and l1 = 1 (§5).
    alpha = rng.standard_normal(d)
    alpha /= np.linalg.norm(alpha)
    alpha_kind = "random"
    if j2 > 2 and l1 == 1 and np.linalg.norm(Pa.M1) > 0:
        alpha = Pa.M1 / np.linalg.norm(Pa.M1)
        alpha_kind = "M1"
    timings["setup"] = time.perf_counter() - t_start

    # Stage 1: span(W) from P̂2 = M̂_{j2}(I, I, α, …) on S_a.
    t0 = time.perf_counter()
    # Cost model (multiply-adds): the explicit P̂2 is one syrk pass, n·d²/2; the implicit
    # PowerMethod costs about _EXPECTED_POWER_ITERS × 2·n·d·k (X M and Xᵀ(y ∘ X M) per iteration).
    explicit = d <= _EIGH_MAX_D and n * d * d / 2 <= _EXPECTED_POWER_ITERS * 2 * n * d * k
    method = subspace if subspace != "auto" else ("eigh" if explicit else "power")
    yP = Pa.targets(min(j2, 2))  # V is not known yet: order-1 control variate only when j2 >= 3
    tail = [alpha] * (j2 - 2)
    power_iters = 0
    if explicit or method == "eigh":
        P2 = hermite_contract(Pa.X, yP, [None, None] + tail)
        P2 = (P2 + P2.T) / 2

        def matvec(M):
            return P2 @ M
    else:
        P2 = None

        def matvec(M):
            return hermite_contract(Pa.X, yP, [None, M] + tail)
    if method == "eigh":
        V, lam, gap = _top_abs_eig(P2, k)
    else:
        norm = np.linalg.norm(P2, 2) if P2 is not None else _spectral_norm(matvec, d, rng)
        V, lam, gap, power_iters = _shifted_power(matvec, d, k, rng, 3.0 * norm, matrix=P2)
        if 2 * k > d and P2 is not None:
            # The two iterated subspaces overlap, so their Rayleigh values repeat: use the spectrum.
            _, lam, gap = _top_abs_eig(P2, k)
    timings["subspace"] = time.perf_counter() - t0
    # The input check reuses X V of the tensor step (all rows: S_b is X unless split="paper"); it
    # reads X V only above d = 100, so split="paper" forms it only there.
    _check_gaussian(X, Pb.proj(V) if Pb.n == n else (X @ V if d > 100 else None), V)
    if gap < 1.5:
        warnings.warn(
            f"Small eigen-gap of P2: |λ_k|/|λ_(k+1)| = {gap:.3g} < 1.5 (k={k}); the estimated span of W "
            "is unreliable (too few samples, or k larger than the number of hidden units).",
            stacklevel=3,
        )

    # Stage 2: k×k×k (or k^4) tensor on S_b, decomposed.
    t0 = time.perf_counter()
    if j3 == 4:
        R = hermite_contract(Pb.X, Pb.targets(4, V), [V, V, V, V], projections=[Pb.proj(V)] + [None] * 3)
        R = symmetrize(R)
        with one_blas_thread():  # k-sized products: threads only add start-up and contention
            U, c, cp_res, condU = _decompose4(R, rng)
        tensor_order = 4
    else:
        R = hermite_contract(Pb.X, Pb.targets(j3, V), [V, V, V] + [alpha] * (j3 - 3),
                             projections=[Pb.proj(V)] + [None] * (j3 - 1))
        R = symmetrize(R)
        with one_blas_thread():  # k-sized products: threads only add start-up and contention
            U, c, cp_res, condU = _decompose3(R, rng)
        tensor_order = 3
    timings["decomposition"] = time.perf_counter() - t0
    if cp_res > 0.5:
        warnings.warn(
            f"Poor tensor decomposition: relative CP residual {cp_res:.3g} > 0.5; the directions of W0 "
            "are unreliable (too few samples or wrong k).",
            stacklevel=3,
        )

    # Stage 3: RecMagSign (§7).
    t0 = time.perf_counter()
    Q1 = Q2 = None
    if l1 is not None:
        Q1 = hermite_contract(Pc.X, Pc.targets(l1, V), [None] + [alpha] * (l1 - 1))
    if l2 is not None:
        Q2 = hermite_contract(Pe.X, Pe.targets(l2, V), [V, V] + [alpha] * (l2 - 2),
                              projections=[Pe.proj(V)] + [None] * (l2 - 1))
    W0, v0, rms = _rec_mag_sign(prof, V, U, alpha, Q1, Q2, ybar=Pe.ybar)
    z, r, a, sigma, n_clipped = rms["z"], rms["r"], rms["a"], rms["sigma"], rms["n_clipped"]
    timings["recmagsign"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    if not return_info:
        return W0, v0
    info = {
        "j2": j2,
        "j3": j3,
        "l1": l1,
        "l2": l2,
        "alpha": alpha,
        "alpha_kind": alpha_kind,
        "subspace": method,
        "eigengap": float(gap),
        "eigenvalues": np.asarray(lam),
        "power_iters": power_iters,
        "tensor_order": tensor_order,
        "cp_residual": cp_res,
        "cond_U": condU,
        "c": c,
        "z": z,
        "r": r,
        "a": a,
        "sigma": sigma,
        "n_clipped": n_clipped,
        "part_sizes": tuple(sizes),
        "split": split,
        "control_variate": bool(control_variate),
        "timings": timings,
    }
    return W0, v0, info
