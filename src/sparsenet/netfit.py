"""Full-batch training of a one-hidden-layer network on a fixed support, and its sparsity path.

The network (all arrays on standardized inputs X of shape (n, d)):

.. math::

    F(X) = \\varphi(X W + \\mathbf 1 c^\\top) V + X B + \\mathbf 1 b^\\top

with hidden weights W (d × k), hidden biases c (k), output weights V (k × m), a linear skip term
B (d × m) and output biases b (m); m = 1 for regression and binary classification, m = number of
classes for multinomial classification. Without hidden biases and skip term (c = 0, B = 0) this is
the planted model of the report.

:func:`fit_network` minimizes a data loss plus an L2 penalty on the weights (not the biases) over
the *free* entries only (a support mask for W and B; c, V, B switched on or off) with full-batch
L-BFGS (scipy), optionally stopping early on a held-out set. :func:`sparsity_path` fits the dense
network and then prunes and refits along dense → 50 % → 25 % → … → p, each stage warm-started
from the previous one (the pattern of ``lasso_path``). Pruning keeps the largest magnitudes of the
input weights [W | B] jointly, so the skip term competes with the hidden units for the budget.

numpy + scipy only; never sees ground truth.
"""

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp, softmax

from ._threads import one_blas_thread

__all__ = ["Network", "LOSSES", "objective", "fit_network", "path_fractions", "prune", "sparsity_path"]

#: Data losses: "squared" ½·mean‖F − Y‖², "logistic" (m = 1, Y in {0, 1}), "multinomial" (one-hot Y).
LOSSES = ("squared", "logistic", "multinomial")


@dataclass(frozen=True)
class Network:
    """Parameters of F(X) = φ(XW + c)V + XB + b (see the module docstring)."""

    W: np.ndarray
    c: np.ndarray
    V: np.ndarray
    B: np.ndarray
    b: np.ndarray

    @property
    def shapes(self):
        return [a.shape for a in (self.W, self.c, self.V, self.B, self.b)]

    def ravel(self):
        return np.concatenate([a.ravel() for a in (self.W, self.c, self.V, self.B, self.b)])

    def like(self, theta):
        """A Network of the same shapes from the flat vector ``theta``."""
        parts, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            parts.append(theta[start:start + size].reshape(shape))
            start += size
        return Network(*parts)

    def decision(self, X, activation):
        """F(X), shape (n, m)."""
        return activation(X @ self.W + self.c) @ self.V + X @ self.B + self.b


def _data_loss(F, Y, loss):
    """Mean data loss and dL/dF (already divided by n)."""
    n = F.shape[0]
    if loss == "squared":
        R = F - Y
        return 0.5 * float(np.sum(R * R)) / n, R / n
    if loss == "logistic":
        value = -float(np.sum(Y * log_expit(F) + (1.0 - Y) * log_expit(-F))) / n
        return value, (expit(F) - Y) / n
    lse = logsumexp(F, axis=1)
    value = float(np.sum(lse) - np.sum(Y * F)) / n
    return value, (softmax(F, axis=1) - Y) / n


def objective(net, X, Y, activation, *, loss="squared", alpha=0.0):
    """Loss and gradient of the penalized objective.

    Parameters
    ----------
    net : Network
    X : ndarray of shape (n, d)
    Y : ndarray of shape (n, m)
        Targets (squared), 0/1 labels (logistic, m = 1) or one-hot rows (multinomial).
    activation : Activation
    loss : {"squared", "logistic", "multinomial"}
    alpha : float
        L2 penalty ½·α·(‖W‖² + ‖V‖² + ‖B‖²); biases are not penalized.

    Returns
    -------
    value : float
    grad : Network
        Gradient with respect to every parameter (masks are applied by the caller).
    """
    Z = X @ net.W + net.c
    H = activation(Z)
    F = H @ net.V + X @ net.B + net.b
    value, dF = _data_loss(F, Y, loss)
    dZ = (dF @ net.V.T) * activation.derivative(Z)
    grad = Network(
        W=X.T @ dZ + alpha * net.W,
        c=dZ.sum(axis=0),
        V=H.T @ dF + alpha * net.V,
        B=X.T @ dF + alpha * net.B,
        b=dF.sum(axis=0),
    )
    penalty = 0.5 * alpha * float(np.sum(net.W ** 2) + np.sum(net.V ** 2) + np.sum(net.B ** 2))
    return value + penalty, grad


@dataclass
class FitInfo:
    """What one L-BFGS run did: iterations, why it stopped, final training and validation loss."""

    n_iter: int
    stop: str
    train_loss: float
    val_loss: float = float("nan")


def fit_network(X, Y, net0, free, activation, *, loss="squared", alpha=0.0, max_iter=200, tol=1e-6,
                validation=None, n_iter_no_change=10):
    """Minimize the penalized loss over the free entries of ``net0`` with full-batch L-BFGS.

    Parameters
    ----------
    X, Y : ndarray
        Training inputs (n, d) and targets (n, m).
    net0 : Network
        Starting point; entries outside ``free`` keep their values (zeros for pruned weights).
    free : Network of bool arrays
        Which entries are optimized.
    activation : Activation
    loss, alpha : see :func:`objective`
    max_iter : int
        Cap on L-BFGS iterations.
    tol : float
        Stop when the projected gradient's largest entry is below ``tol`` (scipy's ``pgtol``) or the
        relative decrease of the loss is below ``tol`` (``ftol``).
    validation : tuple (X_val, Y_val) or None
        Held-out data: after every iteration its data loss is computed, the best parameters are kept,
        and the run stops when it has not improved for ``n_iter_no_change`` iterations.
    n_iter_no_change : int

    Returns
    -------
    net : Network
        The fitted parameters (the best on the validation set when one is given).
    info : FitInfo
    """
    mask = free.ravel().astype(bool)
    theta = net0.ravel().astype(np.float64)
    x0 = theta[mask]

    def full(x):
        t = theta.copy()
        t[mask] = x
        return net0.like(t)

    def fun(x):
        value, grad = objective(full(x), X, Y, activation, loss=loss, alpha=alpha)
        return value, grad.ravel()[mask]

    best = {"val": np.inf, "x": x0, "since": 0, "iters": 0}

    def callback(intermediate_result):
        best["iters"] += 1
        if validation is None:
            return
        Xv, Yv = validation
        val = _data_loss(full(intermediate_result.x).decision(Xv, activation), Yv, loss)[0]
        if not np.isfinite(best["val"]) or val < best["val"] - 1e-12 * abs(best["val"]):
            best.update(val=val, x=intermediate_result.x.copy(), since=0)
        else:
            best["since"] += 1
            if best["since"] >= n_iter_no_change:
                raise StopIteration

    if x0.size == 0:
        net = net0
        stop = "nothing to fit"
        n_iter = 0
    else:
        with np.errstate(over="ignore"):
            res = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback,
                           options={"maxiter": max_iter, "gtol": tol, "ftol": tol, "maxcor": 20})
        x = res.x
        if validation is not None:
            Xv, Yv = validation
            final_val = _data_loss(full(x).decision(Xv, activation), Yv, loss)[0]
            if best["val"] < final_val:
                x = best["x"]
        net = full(x)
        n_iter = int(res.nit)
        stop = "early stopping" if res.status == 99 else ("max_iter" if res.status == 1 else "converged")
        if not np.all(np.isfinite(x)):
            raise ValueError("L-BFGS produced non-finite weights; the data may be badly scaled "
                             "(standardize it) or alpha too small.")
    train = _data_loss(net.decision(X, activation), Y, loss)[0]
    val = float("nan")
    if validation is not None:
        val = _data_loss(net.decision(validation[0], activation), validation[1], loss)[0]
    return net, FitInfo(n_iter=n_iter, stop=stop, train_loss=train, val_loss=val)


def path_fractions(p):
    """Kept fractions of the path to ``p``: 1/2, 1/4, … while above ``p``, then ``p``.

    Examples
    --------
    >>> path_fractions(0.1)
    [0.5, 0.25, 0.125, 0.1]
    >>> path_fractions(1.0)
    []
    """
    out, q = [], 0.5
    while q > p * (1 + 1e-12):
        out.append(q)
        q /= 2
    return out + ([float(p)] if p < 1.0 else [])


def saliency(net, X, activation):
    """First-order contribution of each input weight to the output, RMS over the rows of X.

    Removing w_ij changes the output by about v_j φ'(z_j) w_ij x_i; its root mean square is
    ``|w_ij| · sqrt(mean_n(φ'(z_nj)² x_ni²)) · ‖V_j‖``. A skip weight B_i contributes
    ``‖B_i‖ · sqrt(mean_n x_ni²)``. Unlike |w|, this does not change when a homogeneous unit's input
    weights are scaled up and its output weight down, and it puts W and B on one scale.

    Returns
    -------
    S : ndarray of shape (d, k + m)
        Saliencies of [W | B].
    """
    n = X.shape[0]
    G = activation.derivative(X @ net.W + net.c) ** 2  # (n, k)
    X2 = X * X
    S_W = np.abs(net.W) * np.sqrt(X2.T @ G / n) * np.linalg.norm(net.V, axis=1)
    S_B = np.abs(net.B) * np.sqrt(X2.mean(axis=0))[:, None]
    return np.concatenate([S_W, S_B], axis=1)


def prune(net, sparsifier, skip, X=None, activation=None):
    """Apply ``sparsifier`` to the input weights [W | B] jointly (B only when ``skip``).

    A ``TopFraction`` keeps the largest :func:`saliency` when ``X`` and ``activation`` are given
    (the same count of weights as on |[W | B]|); other sparsifiers act on the weights themselves.

    Returns
    -------
    net : Network
        With the pruned entries set to 0.
    support : tuple (mask_W, mask_B) of bool arrays
    """
    from sparsenet.sparsify import TopFraction

    k = net.W.shape[1]
    J = np.concatenate([net.W, net.B], axis=1)
    if isinstance(sparsifier, TopFraction) and X is not None:
        J = saliency(net, X, activation) * (J != 0)
    if not skip:
        J = J[:, :k]
    S = sparsifier(J)
    keep = S != 0
    mask_W = keep[:, :k]
    mask_B = keep[:, k:] if skip else np.zeros_like(net.B, dtype=bool)
    return replace(net, W=np.where(mask_W, net.W, 0.0), B=np.where(mask_B, net.B, 0.0)), (mask_W, mask_B)


def sparsity_path(X, Y, net0, activation, *, stages, hidden_bias, skip, fit_output=True, loss="squared",
                  alpha=0.0, max_iter=200, tol=1e-6, validation=None, n_iter_no_change=10,
                  criterion="saliency"):
    """Fit dense, then prune and refit at each stage, warm-starting from the previous stage.

    Parameters
    ----------
    X, Y, net0, activation : see :func:`fit_network`
    stages : list of Sparsifier
        Applied in order after the dense fit (e.g. ``TopFraction(q)`` for q in :func:`path_fractions`).
    hidden_bias, skip, fit_output : bool
        Whether c, B and V are trained.
    loss, alpha, max_iter, tol, validation, n_iter_no_change : see :func:`fit_network`
    criterion : {"saliency", "magnitude"}, default="saliency"
        How a ``TopFraction`` stage ranks the weights: by :func:`saliency` on X, or by |[W | B]|.

    Returns
    -------
    path : list of (Network, FitInfo)
        One entry for the dense fit, then one per stage.
    """
    def free_of(mask_W, mask_B):
        return Network(W=mask_W, c=np.full(net0.c.shape, hidden_bias), V=np.full(net0.V.shape, fit_output),
                       B=mask_B, b=np.ones(net0.b.shape, dtype=bool))

    kw = dict(loss=loss, alpha=alpha, max_iter=max_iter, tol=tol, validation=validation,
              n_iter_no_change=n_iter_no_change)
    dense_W = np.ones(net0.W.shape, dtype=bool)
    dense_B = np.full(net0.B.shape, skip)
    with one_blas_thread():
        net, info = fit_network(X, Y, net0, free_of(dense_W, dense_B), activation, **kw)
        path = [(net, info)]
        for sparsifier in stages:
            net, (mask_W, mask_B) = prune(net, sparsifier, skip, X if criterion == "saliency" else None,
                                          activation)
            net, info = fit_network(X, Y, net, free_of(mask_W, mask_B), activation, **kw)
            path.append((net, info))
    return path


