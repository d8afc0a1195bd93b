"""Solvers for sparsity-constrained least squares on one-hidden-layer networks.

The split follows skglm: a **datafit** (:class:`NetLeastSquares`: the loss, its gradient, the
Jacobian of the predictions) is minimized by a **solver** under a **constraint** (a sparsifier H
applied to the hidden weights W). Parameters travel as one flat vector θ whose blocks are listed
by the datafit (``W`` first, then ``v`` and the optional dense terms), so a solver never needs to
know which terms a model has.

=============  ==============================================================================
``"sgd_iht"``  the report's minibatch SGD with hard thresholding (:func:`sparsenet.train.train_iht`)
``"niht"``     normalized IHT (Blumensath & Davies 2010): full-batch steps of Gauss–Newton length
               along the gradient restricted to the support, backtracking until the loss decreases
``"htp"``      hard thresholding pursuit (Foucart 2011): support from a thresholded gradient step,
               then the best fit on that support (Gauss–Newton/Levenberg–Marquardt or L-BFGS-B)
``"grasp"``    GraSP-style (Bahmani, Raj & Boufounos 2013): merge the support with the largest
               gradient entries, fit on the union, threshold, refit on the final support
=============  ==============================================================================

Each solver stops on a convergence criterion (support unchanged, relative loss decrease below
``tol``, gradient norm below ``gtol``, a loss of exactly zero) with an iteration cap, and reports
the iterations run and why it stopped (:class:`SolverResult`). The full-batch solvers work on
one model at a time: their cost is dominated by a few dozen n × |support| products per fit.

References
----------
T. Blumensath and M. E. Davies, "Normalized iterative hard thresholding: guaranteed stability and
performance", IEEE J. Sel. Topics Signal Process. 4(2), 2010.
S. Foucart, "Hard thresholding pursuit: an algorithm for compressive sensing", SIAM J. Numer.
Anal. 49(6), 2011.
S. Bahmani, B. Raj and P. T. Boufounos, "Greedy sparsity-constrained optimization", JMLR 14, 2013.
"""

from dataclasses import dataclass, field

import numpy as np

from ._threads import one_blas_thread
from ._validation import check_data, check_scalar
from .activations import get_activation
from .sparsify import check_sparsifier_output, get_sparsifier

__all__ = ["NetLeastSquares", "SolverResult", "SGDIHT", "NIHT", "HTP", "GraSP", "SOLVERS", "get_solver"]




class NetLeastSquares:
    r"""Mean squared error of a one-hidden-layer network, on a flat parameter vector.

    .. math:: \hat y = \varphi(XW + \mathbf 1 b^\top)\, v + X u + c, \qquad
              f(\theta) = \tfrac1n \lVert \hat y - y \rVert^2

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    k : int
        Number of hidden units.
    activation : str, Activation or callable, default="relu2"
    hidden_bias : bool, default=False
        Add the block ``b`` (k,) inside the activation.
    skip : bool, default=False
        Add the linear (skip) block ``u`` (d,).
    intercept : bool, default=False
        Add the output bias block ``c`` (scalar).

    Notes
    -----
    Blocks of θ, in order: ``W`` (d·k, row-major, the only block a sparsifier acts on), ``v`` (k),
    then ``b``, ``u``, ``c`` when enabled. ``blocks`` maps each name to its slice and shape. A
    new term is a new block plus its lines in ``_forward`` (prediction), ``value_grad``
    (gradient) and ``jacobian`` (columns of ∂ŷ/∂θ).
    """

    def __init__(self, X, y, k, activation="relu2", *, hidden_bias=False, skip=False, intercept=False):
        self.X, self.y = check_data(X, y)
        self.n, self.d = self.X.shape
        self.k = int(k)
        self.act = get_activation(activation)
        shapes = [("W", (self.d, self.k)), ("v", (self.k,))]
        shapes += [("b", (self.k,))] if hidden_bias else []
        shapes += [("u", (self.d,))] if skip else []
        shapes += [("c", ())] if intercept else []
        self.blocks, start = {}, 0
        for name, shape in shapes:
            size = int(np.prod(shape))
            self.blocks[name] = (slice(start, start + size), shape)
            start += size
        self.size = start

    def pack(self, params):
        """Flat θ from a dict of arrays (missing optional blocks are zero)."""
        theta = np.zeros(self.size)
        for name, (sl, shape) in self.blocks.items():
            if name in params:
                theta[sl] = np.broadcast_to(np.asarray(params[name], dtype=float), shape).ravel()
        return theta

    def unpack(self, theta):
        """Dict of views of θ, one per block, in their shapes."""
        return {name: theta[sl].reshape(shape) for name, (sl, shape) in self.blocks.items()}

    def indices(self, name):
        """Positions of block ``name`` in θ."""
        sl = self.blocks[name][0]
        return np.arange(sl.start, sl.stop)

    def _forward(self, p):
        Z = self.X @ p["W"]
        if "b" in p:
            Z += p["b"]
        A = self.act.function(Z)
        pred = A @ p["v"]
        if "u" in p:
            pred += self.X @ p["u"]
        if "c" in p:
            pred += p["c"]
        return Z, A, pred

    def _forward_at(self, theta):
        """``_forward`` at θ, remembered for the last θ (by its bytes): a solver asks for the loss, then the
        gradient or Jacobian, at the same point. The arrays returned are shared: read them only."""
        key = (theta.dtype.str, theta.shape, theta.tobytes())
        last = getattr(self, "_last", None)
        if last is None or last[0] != key:
            last = self._last = (key, self._forward(self.unpack(theta)))
        return last[1]

    def residual(self, theta):
        """ŷ − y (n,)."""
        return self._forward_at(theta)[2] - self.y

    def value(self, theta):
        """f(θ) = mean (ŷ − y)²."""
        r = self.residual(theta)
        return float(r @ r) / self.n

    def value_grad(self, theta):
        """f(θ) and ∇f(θ) = (2/n) Jᵀ(ŷ − y) in θ's layout."""
        p = self.unpack(theta)
        Z, A, pred = self._forward_at(theta)
        r = pred - self.y
        G = self.act.derivative(Z) * p["v"] * r[:, None]  # ∂/∂Z of Σ r ŷ: r ⊙ φ'(Z) ⊙ v
        g = np.empty(self.size)
        gp = self.unpack(g)
        gp["W"][...] = self.X.T @ G
        gp["v"][...] = A.T @ r
        if "b" in p:
            gp["b"][...] = G.sum(axis=0)
        if "u" in p:
            gp["u"][...] = self.X.T @ r
        if "c" in p:
            gp["c"][...] = r.sum()
        g *= 2.0 / self.n
        return float(r @ r) / self.n, g

    def jacobian(self, theta, free):
        """Columns ``free`` of J = ∂ŷ/∂θ (n, len(free)), built without the full n × size matrix.

        Built as Jᵀ (rows gathered from the contiguous rows of Xᵀ and ∂ŷ/∂Zᵀ) and returned as its
        transposed view (row gathers instead of strided column gathers of X).
        """
        p = self.unpack(theta)
        Z, A, _ = self._forward_at(theta)
        DT = (self.act.derivative(Z) * p["v"]).T  # ∂ŷ/∂Z, transposed (k, n)
        if not hasattr(self, "_XT"):
            self._XT = np.ascontiguousarray(self.X.T)
        XT = self._XT
        JT = np.empty((len(free), self.n))
        for name, (sl, _) in self.blocks.items():
            sel = (free >= sl.start) & (free < sl.stop)
            if not sel.any():
                continue
            local = free[sel] - sl.start
            if name == "W":
                JT[sel] = XT[local // self.k] * DT[local % self.k]
            elif name == "v":
                JT[sel] = A.T[local]
            elif name == "b":
                JT[sel] = DT[local]
            elif name == "u":
                JT[sel] = XT[local]
            else:
                JT[sel] = 1.0
        return JT.T

    def jvp(self, theta, direction):
        """J·direction (n,): the change of ŷ along ``direction`` (for the NIHT step length)."""
        p, q = self.unpack(theta), self.unpack(direction)
        Z, A, _ = self._forward_at(theta)
        dZ = self.X @ q["W"] + (q["b"] if "b" in q else 0.0)
        out = (self.act.derivative(Z) * dZ) @ p["v"] + A @ q["v"]
        if "u" in q:
            out += self.X @ q["u"]
        if "c" in q:
            out += q["c"]
        return out


@dataclass
class SolverResult:
    """Outcome of a solver.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_hidden)
    v : ndarray of shape (n_hidden,)
    params : dict of ndarray
        Every block of the datafit (``W``, ``v`` and any optional term).
    loss : float
        Final training loss (mean squared error).
    n_iter : int
        Outer iterations run.
    stop_reason : str
        ``"support_stable"``, ``"loss_plateau"``, ``"grad_norm"``, ``"zero_loss"`` or ``"max_iter"``.
    history : dict of list
        ``"loss"`` and ``"nnz"`` per outer iteration, index 0 = the start.
    """

    W: np.ndarray
    v: np.ndarray
    params: dict
    loss: float
    n_iter: int
    stop_reason: str
    history: dict = field(default_factory=dict)


def _check_common(owner, max_iter, tol):
    check_scalar(max_iter, "max_iter", kind="int", low=0, owner=owner)
    check_scalar(tol, "tol", low=0.0, owner=owner)


class _FullBatchSolver:
    """Shared pieces: the constraint, the trainable blocks, restricted fits and the result."""

    def _setup(self, datafit, sparsifier, params0, train):
        self.sparsifier_ = get_sparsifier(sparsifier)
        unknown = set(train) - set(datafit.blocks) | ({"W"} - set(train))
        if unknown:
            raise ValueError(f"The 'train' parameter of {type(self).__name__} must contain 'W' and only blocks of "
                             f"the datafit {sorted(datafit.blocks)}. Got {sorted(train)!r} instead.")
        self.dense_ = np.concatenate([datafit.indices(b) for b in train if b != "W"] + [np.array([], int)])
        self.trainable_ = np.zeros(datafit.size, bool)
        self.trainable_[datafit.indices("W")] = True
        self.trainable_[self.dense_] = True
        theta = datafit.pack(params0)
        return self._threshold(datafit, theta)

    def _threshold(self, datafit, theta):
        p = datafit.unpack(theta)
        p["W"][...] = check_sparsifier_output(self.sparsifier_, p["W"])
        return theta

    def _free(self, datafit, theta):
        """θ positions being fit: the support of W and the dense trainable blocks."""
        W_idx = datafit.indices("W")
        return np.concatenate([W_idx[theta[W_idx] != 0], self.dense_]).astype(np.intp)

    def _fit(self, datafit, theta, free, method, max_iter):
        """argmin f over θ[free] (the rest held): Levenberg–Marquardt or L-BFGS-B (scipy)."""
        theta = theta.copy()
        if len(free) == 0 or max_iter == 0:
            return theta
        if method == "gauss_newton":
            return _levenberg_marquardt(datafit, theta, free, max_iter)

        from scipy.optimize import minimize  # imported when used: it costs ~0.3 s

        def fun(x):
            theta[free] = x
            f, g = datafit.value_grad(theta)
            return f, g[free]

        out = minimize(fun, theta[free], jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": 1e-10, "ftol": 1e-14})
        theta[free] = out.x
        return theta

    def _result(self, datafit, theta, n_iter, reason, hist):
        p = {name: np.array(val) for name, val in datafit.unpack(theta).items()}
        return SolverResult(W=p["W"], v=p["v"], params=p, loss=datafit.value(theta), n_iter=n_iter,
                            stop_reason=reason, history=hist)

    @staticmethod
    def _plateau(f_old, f_new, tol):
        return f_old - f_new <= tol * max(f_old, 1e-300)


def _levenberg_marquardt(datafit, theta, free, max_iter, tol=1e-12):
    r"""Levenberg–Marquardt on the coordinates ``free`` of θ (a copy is returned).

    Step: (JᵀJ + λ diag(JᵀJ)) δ = −Jᵀr with J = ∂ŷ/∂θ_free; λ divided by 10 after a step that
    lowers ‖r‖², multiplied by 10 (step retried) otherwise. Stops after ``max_iter`` Jacobians,
    when a step lowers ‖r‖² by less than ``tol`` relatively, or when ‖r‖² ≤ 1e-28·‖y‖² (an
    exact fit to round-off: a noise-free problem's solution).
    """
    r = datafit.residual(theta)
    f = r @ r
    tiny = 1e-28 * max(datafit.y @ datafit.y, 1e-300)
    lam = 1e-3
    for _ in range(max_iter):
        if f <= tiny:
            break
        JT = datafit.jacobian(theta, free).T  # (|free|, n), C-contiguous
        H = JT @ JT.T
        g = JT @ r
        diag = np.diag(H).copy()
        diag[diag <= 0] = 1.0
        while lam <= 1e10:
            try:
                step = np.linalg.solve(H + lam * np.diag(diag), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            new = theta.copy()
            new[free] += step
            r_new = datafit.residual(new)
            f_new = r_new @ r_new
            if f_new < f:
                lam = max(lam / 10.0, 1e-12)
                break
            lam *= 10.0
        else:
            break  # no damping lowers the loss: a (local) minimum to working precision
        done = f - f_new <= tol * f
        theta, r, f = new, r_new, f_new
        if done:
            break
    return theta


def _levenberg_marquardt_many(datafit, W0, V, max_iter, tol=1e-12, max_bytes=2**26):
    r""":func:`_levenberg_marquardt` on the whole W block, for many output vectors at once.

    Candidate c starts at (W0, V[c]) and runs the same iteration as
    ``_levenberg_marquardt(datafit, pack(W0, V[c]), indices("W"), max_iter, tol)`` with its own
    damping λ_c, acceptance and stop; only the arithmetic is shared. The Gauss–Newton matrices use
    the structure of ∂ŷ/∂W, J[:, (i, j)] = X[:, i] D[:, j] with D = φ'(XW) diag(v):

    .. math:: (J^\top J)_{(i,j),(i',j')} = \sum_n (X_{ni} X_{ni'})\,(D_{nj} D_{nj'}),

    one product of the n × d(d+1)/2 matrix of X's column products (shared by every candidate and
    iteration) with the n × k(k+1)/2 column products of D of all candidates, instead of one
    n × dk Jacobian and its Gram matrix per candidate and iteration. The results equal the
    one-at-a-time fits up to rounding.

    Parameters
    ----------
    datafit : NetLeastSquares
        Plain network (blocks W and v only).
    W0 : ndarray of shape (d, k)
    V : ndarray of shape (n_candidates, k)
    max_iter, tol : as :func:`_levenberg_marquardt`
    max_bytes : int
        Working-memory bound: candidates are fit in chunks, the products over chunks of rows.

    Returns
    -------
    W : ndarray of shape (n_candidates, d, k)
    loss : ndarray of shape (n_candidates,)
        Mean squared error of each fit.
    """
    X, y, act = datafit.X, datafit.y, datafit.act
    n, d = X.shape
    V = np.atleast_2d(np.asarray(V, dtype=float))
    k = V.shape[1]
    iu = np.triu_indices(d)
    ju = np.triu_indices(k)
    rows = max(1, min(n, max_bytes // (8 * max(len(iu[0]), 1))))
    P = [X[s:s + rows, iu[0]] * X[s:s + rows, iu[1]] for s in range(0, n, rows)]  # X column products
    pair_d = np.empty((d, d), np.intp)
    pair_d[iu] = pair_d[iu[::-1]] = np.arange(len(iu[0]))
    pair_k = np.empty((k, k), np.intp)
    pair_k[ju] = pair_k[ju[::-1]] = np.arange(len(ju[0]))
    flat_i, flat_j = np.divmod(np.arange(d * k), k)  # θ's W block is row-major: position i·k + j
    lin = (pair_d[flat_i[:, None], flat_i] * len(ju[0]) + pair_k[flat_j[:, None], flat_j]).ravel()
    tiny = 1e-28 * max(y @ y, 1e-300)
    per = 8 * ((d * k) ** 2 * 3 + n * (3 * k + len(ju[0])) + len(iu[0]) * len(ju[0]))
    chunk = max(1, max_bytes // per)
    W_out = np.empty((len(V), d, k))
    f_out = np.empty(len(V))
    for c0 in range(0, len(V), chunk):
        v = V[c0:c0 + chunk]
        W_out[c0:c0 + chunk], f_out[c0:c0 + chunk] = _lm_many_chunk(
            X, y, act, W0, v, P, rows, lin, ju, tiny, max_iter, tol)
    return W_out, f_out / n


def _lm_many_chunk(X, y, act, W0, V, P, rows, lin, ju, tiny, max_iter, tol):
    """One chunk of :func:`_levenberg_marquardt_many` (the loop of :func:`_levenberg_marquardt`).

    Arrays over candidates keep them on the last axis (Z: n × k × c), so that one product serves all.
    """
    n, d = X.shape
    m, k = V.shape
    dk = d * k
    diag_idx = np.arange(dk)
    signs = np.tile(V, d)  # (m, dk): v_j at position i·k + j
    shared = bool(np.all(np.abs(V) == 1.0))

    def forward(W, v):  # W (c, d, k), v (c, k) -> Z (n, k, c), residual (c, n)
        Z = (X @ W.transpose(1, 2, 0).reshape(d, -1)).reshape(n, k, len(v))
        return Z, np.einsum("nkc,ck->cn", act.function(Z), v) - y

    W = np.repeat(np.asarray(W0, dtype=float)[None], m, axis=0)
    Z, r = forward(W, V)
    f = np.einsum("cn,cn->c", r, r)
    lam = np.full(m, 1e-3)
    active = np.ones(m, bool)
    for it in range(max_iter):
        active &= f > tiny
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        a = len(idx)
        if it == 0 and shared:
            # Every candidate is at W0 with v ∈ {±1}^k: J_c = J S_c (S_c = diag(signs_c), J the Jacobian
            # for v = 1), so (J_cᵀJ_c + λ diag) δ = −J_cᵀ r_c is S_c (JᵀJ + λ diag) S_c δ = −S_c Jᵀ r_c:
            # one Gram matrix and, the λ's being equal, one factorization for all candidates.
            JT = (X.T[:, None, :] * act.derivative(Z[:, :, 0]).T).reshape(dk, n)
            H = JT @ JT.T
            g = (JT @ r[idx].T).T  # Jᵀ r_c; the step is S_c (JᵀJ + λ diag)⁻¹ (−Jᵀ r_c)
            diag = np.diag(H).copy()
        else:
            D = act.derivative(Z if a == m else Z[:, :, idx]) * V[idx].T  # (n, k, a): ∂ŷ/∂Z
            Q = 0.0
            for s, Ps in zip(range(0, n, rows), P):
                Ds = D[s:s + rows]
                M = np.empty((len(Ds), len(ju[0]), a))  # D's column products D_j D_j' (j <= j'), as ju lists
                q = 0
                for j in range(k):
                    np.multiply(Ds[:, j:j + 1], Ds[:, j:], out=M[:, q:q + k - j])
                    q += k - j
                Q = Q + Ps.T @ M.reshape(len(Ds), -1)
            Q = np.ascontiguousarray(Q.reshape(-1, len(ju[0]), a).transpose(2, 0, 1)).reshape(a, -1)
            H = np.take(Q, lin, axis=1).reshape(a, dk, dk)  # JᵀJ per candidate
            g = (X.T @ (D * r[idx].T[:, None, :]).reshape(n, -1)).reshape(d, k, a).transpose(2, 0, 1).reshape(a, dk)
            diag = H[:, diag_idx, diag_idx].copy()
        diag[diag <= 0] = 1.0
        pending = np.ones(a, bool)  # candidates still looking for a damping that lowers the loss
        accepted = np.zeros(a, bool)
        # An accepted step is written into W, Z, r at once (a candidate is no longer read in this loop once
        # accepted, and Z, r only before it); f keeps the old losses for the test below.
        f_new = np.full(a, np.inf)
        while True:
            pending &= lam[idx] <= 1e10
            sel = np.flatnonzero(pending)
            if len(sel) == 0:
                break
            if H.ndim == 2:  # shared: λ is the same for every pending candidate
                step, ok = _solve_spd(H + lam[idx[sel[0]]] * np.diag(diag), -g[sel].T)
                step, ok = step.T * signs[idx[sel]], np.full(len(sel), ok)
            else:
                step, ok = _solve_damped(H, diag, lam[idx], sel, -g[sel])
            lam[idx[sel[~ok]]] *= 10.0  # singular: more damping, as the one-at-a-time loop
            sel, step = sel[ok], step[ok]
            if len(sel) == 0:
                continue
            Wt = W[idx[sel]] + step.reshape(-1, d, k)
            Zt, rt = forward(Wt, V[idx[sel]])
            ft = np.einsum("cn,cn->c", rt, rt)
            good = ft < f[idx[sel]]
            take = sel[good]
            put = idx[take]
            if good.all():
                W[put], Z[:, :, put], r[put] = Wt, Zt, rt
            else:
                W[put], Z[:, :, put], r[put] = Wt[good], Zt[:, :, good], rt[good]
            f_new[take] = ft[good]
            accepted[take] = True
            pending[take] = False
            lam[idx[take]] = np.maximum(lam[idx[take]] / 10.0, 1e-12)
            lam[idx[sel[~good]]] *= 10.0
        # no damping lowers the loss: a (local) minimum to working precision
        active[idx[~accepted]] = False
        acc = idx[accepted]
        done = f[acc] - f_new[accepted] <= tol * f[acc]
        f[acc] = f_new[accepted]
        active[acc[done]] = False
    return W, f


def _solve_spd(A, b):
    """Solve A x = b for a symmetric A (Cholesky; LU when A is not positive definite); (x, ok).

    A C-ordered A is passed as its transpose (the same matrix, Fortran-ordered: no copy).
    """
    from scipy.linalg import lapack

    AT = A.T
    _, x, info = lapack.dposv(AT, b)
    if info == 0:
        return x, True
    _, _, x, info = lapack.dgesv(AT, b)
    return x, info == 0


def _solve_damped(H, diag, lam, sel, b):
    """Solve (H[c] + λ_c diag(diag[c])) x = b[i] for c = sel[i] (H[c] symmetric); (x, ok), ``ok[i]`` False
    where the matrix is singular. Each damped matrix is built in one copy of H[c], factorized in place."""
    from scipy.linalg import lapack

    x = np.empty_like(b)
    ok = np.ones(len(sel), bool)
    i = np.arange(H.shape[1])

    def damped(c):
        A = H[c].copy()
        A[i, i] += lam[c] * diag[c]
        return A

    for t, c in enumerate(sel):
        _, x_t, info = lapack.dposv(damped(c).T, b[t], overwrite_a=1)  # .T: the same matrix, Fortran-ordered
        if info != 0:  # not positive definite: _solve_spd's LU on the matrix rebuilt (dposv overwrote it)
            x_t, ok[t] = _solve_spd(damped(c), b[t])
        x[t] = x_t
    return x, ok


class NIHT(_FullBatchSolver):
    r"""Normalized iterative hard thresholding with an adaptive step (Blumensath & Davies 2010).

    Parameters
    ----------
    max_iter : int, default=2000
        Iteration cap.
    tol : float, default=1e-10
        Stop when the relative loss decrease of an iteration is below ``tol``.
    gtol : float, default=1e-12
        Stop when the gradient norm on the support (and trainable blocks) is below ``gtol``.

    Notes
    -----
    With g the gradient and g_S its restriction to the support of W (plus the trainable dense
    blocks), the step is the minimizer of the Gauss–Newton model along g_S,

    .. math:: \mu = \frac{n \lVert g_S\rVert^2}{2 \lVert J g_S \rVert^2},

    and θ ← H(θ − μ g) (H: the sparsifier on W; the full gradient lets new entries enter). The
    step is halved until the loss does not increase (the nonlinear analogue of the paper's
    ω-condition), at most 30 times.
    """

    def __init__(self, max_iter=2000, tol=1e-10, gtol=1e-12):
        self.max_iter, self.tol, self.gtol = max_iter, tol, gtol

    def solve(self, datafit, sparsifier, params0, *, train=("W",)):
        """Minimize ``datafit`` subject to W = H(W), starting from ``params0`` (dict of arrays).

        Returns
        -------
        result : SolverResult
        """
        with one_blas_thread():
            return self._solve(datafit, sparsifier, params0, train)

    def _solve(self, datafit, sparsifier, params0, train):
        _check_common("NIHT", self.max_iter, self.tol)
        theta = self._setup(datafit, sparsifier, params0, train)
        trainable = self.trainable_
        f, g = datafit.value_grad(theta)
        hist = {"loss": [f], "nnz": [int(np.count_nonzero(datafit.unpack(theta)["W"]))]}
        reason = "max_iter"
        it = 0
        for it in range(1, self.max_iter + 1):
            g = np.where(trainable, g, 0.0)
            gS = np.zeros_like(g)
            free = self._free(datafit, theta)
            gS[free] = g[free]
            if f == 0.0:
                reason, it = "zero_loss", it - 1
                break
            if np.linalg.norm(gS) < self.gtol:
                reason, it = "grad_norm", it - 1
                break
            Jg = datafit.jvp(theta, gS)
            mu = datafit.n * (gS @ gS) / (2.0 * max(Jg @ Jg, 1e-300))
            for _ in range(30):
                new = self._threshold(datafit, theta - mu * g)
                f_new = datafit.value(new)
                if f_new <= f:
                    break
                mu /= 2.0
            else:
                reason = "loss_plateau"  # no step length decreases the loss
                break
            plateau = self._plateau(f, f_new, self.tol)
            theta = new
            f, g = datafit.value_grad(theta)
            hist["loss"].append(f)
            hist["nnz"].append(int(np.count_nonzero(datafit.unpack(theta)["W"])))
            if plateau:
                reason = "loss_plateau"
                break
        return self._result(datafit, theta, it, reason, hist)


class HTP(_FullBatchSolver):
    r"""Hard thresholding pursuit (Foucart 2011) with a restricted Gauss–Newton or quasi-Newton fit.

    Parameters
    ----------
    max_iter : int, default=50
        Cap on outer iterations (support updates).
    fit : {"gauss_newton", "lbfgs"}, default="gauss_newton"
        Fit on a fixed support: Levenberg–Marquardt (damped Gauss–Newton) or scipy's ``L-BFGS-B``.
    fit_max_iter : int, default=100
        Cap on Jacobians (GN) or iterations (L-BFGS-B) of one restricted fit.
    tol : float, default=1e-10
        Stop when an outer iteration decreases the loss by less than this relative amount.

    Notes
    -----
    Iteration: S ← supp H(θ − μ∇f(θ)) with μ the NIHT step (Gauss–Newton length along the
    gradient on the current support), then θ ← argmin_{supp W ⊆ S} f(θ) from the thresholded
    point. Stops when S no longer changes (Foucart's criterion), the loss plateaus, or it is zero.
    The starting point is thresholded and fit on its support first.
    """

    def __init__(self, max_iter=50, fit="gauss_newton", fit_max_iter=100, tol=1e-10):
        self.max_iter, self.fit, self.fit_max_iter, self.tol = max_iter, fit, fit_max_iter, tol

    def _check(self):
        owner = type(self).__name__
        _check_common(owner, self.max_iter, self.tol)
        check_scalar(self.fit_max_iter, "fit_max_iter", kind="int", low=1, owner=owner)
        if self.fit not in ("gauss_newton", "lbfgs"):
            raise ValueError(f"The 'fit' parameter of {owner} must be 'gauss_newton' or 'lbfgs'. "
                             f"Got {self.fit!r} instead.")

    def _candidate(self, datafit, theta, g, free):
        """θ whose W support is the next support to fit on (before the fit)."""
        gS = np.zeros_like(g)
        gS[free] = g[free]
        Jg = datafit.jvp(theta, gS)
        mu = datafit.n * (gS @ gS) / (2.0 * max(Jg @ Jg, 1e-300))
        return self._threshold(datafit, theta - mu * g)

    def solve(self, datafit, sparsifier, params0, *, train=("W",)):
        """Minimize ``datafit`` subject to W = H(W), starting from ``params0`` (dict of arrays).

        Returns
        -------
        result : SolverResult
        """
        with one_blas_thread():
            return self._solve(datafit, sparsifier, params0, train)

    def _solve(self, datafit, sparsifier, params0, train):
        self._check()
        theta = self._setup(datafit, sparsifier, params0, train)
        theta = self._fit(datafit, theta, self._free(datafit, theta), self.fit, self.fit_max_iter)
        f, g = datafit.value_grad(theta)
        W_idx = datafit.indices("W")
        hist = {"loss": [f], "nnz": [int(np.count_nonzero(theta[W_idx]))]}
        reason, it = "max_iter", 0
        for it in range(1, self.max_iter + 1):
            if f == 0.0:
                reason, it = "zero_loss", it - 1
                break
            free = self._free(datafit, theta)
            cand = self._candidate(datafit, theta, np.where(self.trainable_, g, 0.0), free)
            if np.array_equal(cand[W_idx] != 0, theta[W_idx] != 0):
                reason, it = "support_stable", it - 1
                break
            new = self._fit(datafit, cand, self._free(datafit, cand), self.fit, self.fit_max_iter)
            f_new, g_new = datafit.value_grad(new)
            if f_new > f:  # the new support fits worse: keep the current one
                reason, it = "loss_plateau", it - 1
                break
            plateau = self._plateau(f, f_new, self.tol)
            theta, f, g = new, f_new, g_new
            hist["loss"].append(f)
            hist["nnz"].append(int(np.count_nonzero(theta[W_idx])))
            if plateau:
                reason = "loss_plateau"
                break
        return self._result(datafit, theta, it, reason, hist)


class GraSP(HTP):
    r"""Gradient support pursuit (Bahmani, Raj & Boufounos 2013) with a restricted fit.

    Parameters
    ----------
    max_iter : int, default=50
        Cap on outer iterations.
    fit : {"gauss_newton", "lbfgs"}, default="gauss_newton"
        Fit on a fixed support (see :class:`HTP`).
    fit_max_iter : int, default=100
        Cap of one restricted fit.
    tol : float, default=1e-10
        Relative loss decrease below which it stops.

    Notes
    -----
    Iteration with s = |supp W|: Z ← the 2s largest |∇_W f| entries; T ← Z ∪ supp W;
    b ← argmin_{supp ⊆ T} f; θ ← H(b), refit on supp θ (the refit of the final support is what
    makes the returned W the best fit on it, as HTP's).
    """

    def _candidate(self, datafit, theta, g, free):
        W_idx = datafit.indices("W")
        gW = np.abs(g[W_idx])
        s = max(int(np.count_nonzero(theta[W_idx])), 1)
        top = np.argsort(-gW, kind="stable")[:2 * s]
        merged = theta.copy()
        T = np.union1d(W_idx[theta[W_idx] != 0], W_idx[top])
        fit_free = np.concatenate([T, self.dense_]).astype(np.intp)
        # Entries entering at zero would be invisible to _free: fit on the union explicitly.
        merged = self._fit(datafit, merged, fit_free, self.fit, self.fit_max_iter)
        return self._threshold(datafit, merged)


class SGDIHT:
    """The report's minibatch SGD IHT (:func:`sparsenet.train.train_iht`) behind the solver interface.

    Parameters
    ----------
    epochs : int, default=25
    batch_size : int or None, default=20
    learning_rate : float, default=1e-3
    pretrain_epochs : int, default=5
    random_state : None, int or numpy.random.Generator, default=None
        Minibatch shuffling.

    Notes
    -----
    Trains W (and v when ``"v"`` is in ``train``) for a fixed budget: ``stop_reason`` is always
    ``"max_iter"`` (epochs). Only the plain network (blocks W and v) is supported.
    """

    def __init__(self, epochs=25, batch_size=20, learning_rate=1e-3, pretrain_epochs=5, random_state=None):
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.pretrain_epochs, self.random_state = pretrain_epochs, random_state

    def solve(self, datafit, sparsifier, params0, *, train=("W",)):
        """Train from ``params0`` (dict with ``W``, ``v``) for the fixed epoch budget.

        Returns
        -------
        result : SolverResult
        """
        from .train import train_iht

        extra = set(datafit.blocks) - {"W", "v"}
        if extra:
            raise ValueError(f"SGDIHT trains the plain network only (blocks W, v). The datafit also has "
                             f"{sorted(extra)}; use NIHT, HTP or GraSP.")
        res = train_iht(datafit.X, datafit.y, params0["W"], params0["v"], sparsifier=sparsifier, epochs=self.epochs,
                        batch_size=self.batch_size, learning_rate=self.learning_rate,
                        pretrain_epochs=self.pretrain_epochs, train_v="v" in train, activation=datafit.act,
                        random_state=self.random_state)
        hist = {"loss": list(res.history["train_loss"]), "nnz": list(res.history["nnz"])}
        theta = datafit.pack({"W": res.W, "v": res.v})
        return SolverResult(W=res.W, v=res.v, params={"W": res.W, "v": res.v}, loss=datafit.value(theta),
                            n_iter=res.n_iter_, stop_reason="max_iter", history=hist)


SOLVERS = {"sgd_iht": SGDIHT, "niht": NIHT, "htp": HTP, "grasp": GraSP}


def get_solver(spec):
    """A solver from its name in :data:`SOLVERS` (default options) or an instance with ``solve``.

    Parameters
    ----------
    spec : str or solver object

    Returns
    -------
    solver : object with ``solve(datafit, sparsifier, params0, *, train)``
    """
    if isinstance(spec, str):
        if spec not in SOLVERS:
            raise ValueError(f"The 'solver' parameter must be one of {sorted(SOLVERS)} or a solver object. "
                             f"Got {spec!r} instead.")
        return SOLVERS[spec]()
    if callable(getattr(spec, "solve", None)):
        return spec
    raise ValueError(f"The 'solver' parameter must be one of {sorted(SOLVERS)} or a solver object. "
                     f"Got {spec!r} instead.")
