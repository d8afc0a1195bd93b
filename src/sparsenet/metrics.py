"""Recovery metrics against a planted network (``shared/design/METRICS.md``); used by experiments only.

Hidden units have no order, so every metric first aligns the columns of Ŵ with those of W*:
π* = argmin over permutations π with sign(v̂_π(i)) = v*_i of ‖Ŵ_{:,π} − W*‖_F, solved as an
assignment problem on the k×k matrix of squared column distances (they add up to ‖·‖²_F).
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from ._validation import check_scalar
from .activations import get_activation

__all__ = ["Alignment", "SupportConfusion", "align", "recovery_error", "support_confusion", "predict",
           "test_mse", "evaluate", "is_exact_recovery", "RECOVERY_RESOLUTION"]

#: Recovery errors at or below this are float noise of an exact recovery (an exact one ends near 1e-6).
RECOVERY_RESOLUTION = 1e-4


@dataclass(frozen=True)
class Alignment:
    """Columns of an estimate matched to the truth.

    Attributes
    ----------
    perm : ndarray of shape (k,)
        ``W[:, i]`` of the aligned estimate is ``flip[i] * W_hat[:, perm[i]]``.
    flip : ndarray of shape (k,)
        ±1 per aligned column (−1 only for odd or even activations, where the flip is a symmetry).
    W : ndarray of shape (d, k)
        Aligned hidden weights.
    v : ndarray of shape (k,)
        Aligned output weights.
    sign_consistent : bool
        False when the multiset of signs of v̂ differs from that of v*: no admissible matching
        exists, and the alignment is the unconstrained one.
    """

    perm: np.ndarray
    flip: np.ndarray
    W: np.ndarray
    v: np.ndarray
    sign_consistent: bool


def _parity(activation):
    if activation is None:
        return None
    parity = get_activation(activation).parity
    # Odd up to a constant (sigmoid): only v_i·w_i is identified, so match up to the flip as for odd φ.
    return "odd" if parity == "odd+const" else parity


def align(W, v, W_true, v_true, *, activation=None):
    """Match the hidden units of (W, v) to those of (W_true, v_true).

    Parameters
    ----------
    W : ndarray of shape (d, k)
        Estimated hidden weights.
    v : ndarray of shape (k,) or None
        Estimated output weights; None matches without the sign constraint.
    W_true : ndarray of shape (d, k)
    v_true : ndarray of shape (k,) or None
    activation : str, Activation or None, default=None
        For an odd φ, (v_j, w_j) ≡ (−v_j, −w_j): each estimated unit is flipped to carry the sign of
        the true unit it is matched with (also for φ odd up to a constant, such as sigmoid, whose
        data identify only v_j·w_j). For an even φ, w_j ≡ −w_j: the closer of the two is used.

    Returns
    -------
    alignment : Alignment
    """
    W = np.asarray(W, dtype=float)
    W_true = np.asarray(W_true, dtype=float)
    if W_true.ndim != 2:
        raise ValueError(f"Input 'W_true' must be 2-D of shape (n_features, n_hidden). Got shape {W_true.shape} instead.")
    if W.shape != W_true.shape:
        raise ValueError(f"Input 'W' must have the shape of W_true {W_true.shape}. Got {W.shape} instead.")
    if not np.all(np.isfinite(W_true)):
        raise ValueError("Input 'W_true' contains NaN or infinity.")
    k = W.shape[1]
    for name, vec in (("v", v), ("v_true", v_true)):
        if vec is not None and np.shape(vec) != (k,):
            raise ValueError(f"Input '{name}' must have shape ({k},) (one output weight per hidden unit). "
                             f"Got shape {np.shape(vec)} instead.")
    parity = _parity(activation)
    # flip[i, j]: sign applied to estimated unit j when it plays true unit i
    flip = np.ones((k, k))
    constrained = v is not None and v_true is not None
    if constrained:
        v = np.asarray(v, dtype=float)
        s_hat, s_true = np.sign(v), np.sign(np.asarray(v_true, dtype=float))
        if parity == "odd":
            flip = s_true[:, None] * s_hat[None, :]
            allowed = flip != 0
            flip[~allowed] = 1.0
        else:
            allowed = s_true[:, None] == s_hat[None, :]
        consistent = bool(np.all(allowed.any(axis=1))) and (
            parity == "odd" and bool(np.all(s_hat != 0))
            or np.array_equal(np.sort(s_hat), np.sort(s_true))
        )
    else:
        allowed = np.ones((k, k), dtype=bool)
        consistent = True
    # cost[i, j] = ‖flip·ŵ_j − w*_i‖²
    cost = np.sum((flip[:, None, :] * W[None, :, :] - W_true.T[:, :, None]) ** 2, axis=1)
    if parity == "even":
        cost_neg = np.sum((-W[None, :, :] - W_true.T[:, :, None]) ** 2, axis=1)
        flip = np.where(cost_neg < cost, -1.0, flip)
        cost = np.minimum(cost, cost_neg)
    if constrained and consistent:
        cost = np.where(allowed, cost, cost.max() * 1e6 + 1e6)
    from scipy.optimize import linear_sum_assignment  # imported on first use: ~0.4 s of CPU

    rows, cols = linear_sum_assignment(cost)
    perm = cols[np.argsort(rows)]
    flips = flip[np.arange(k), perm]
    W_al = W[:, perm] * flips
    v_al = None if v is None else np.asarray(v, dtype=float)[perm] * (flips if parity == "odd" else 1.0)
    return Alignment(perm=perm, flip=flips, W=W_al, v=v_al, sign_consistent=consistent)


def recovery_error(W, v, W_true, v_true, *, activation=None):
    """Relative recovery error min_π ‖Ŵ_π − W*‖_F / ‖W*‖_F over sign-consistent matchings.

    Parameters
    ----------
    W : ndarray of shape (d, k)
    v : ndarray of shape (k,)
    W_true : ndarray of shape (d, k)
    v_true : ndarray of shape (k,)
    activation : str, Activation or None, default=None
        Only its parity matters (see :func:`align`).

    Returns
    -------
    error : float
        ``inf`` when the signs of v̂ and v* differ as multisets (no admissible matching exists); NaN
        when the estimate is not finite (a diverged run).
    """
    W = np.asarray(W, dtype=float)
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(v))):
        align(np.zeros_like(W), np.zeros(np.shape(v)), W_true, v_true)  # shape checks still apply
        return float("nan")
    return _error_of(align(W, v, W_true, v_true, activation=activation), W_true)


def _error_of(al, W_true):
    """:func:`recovery_error` of a finite estimate from its alignment ``al``."""
    if not al.sign_consistent:
        return float("inf")
    return float(np.linalg.norm(al.W - W_true) / np.linalg.norm(W_true))


@dataclass(frozen=True)
class SupportConfusion:
    """Sparsity structure of an aligned estimate against the truth ("present" means |w| > tol).

    Attributes
    ----------
    tp, tn, fa, md : int
        True positives, true negatives, false alarms (absent in W*, present in Ŵ) and
        mis-detections (present in W*, absent in Ŵ).
    pct_true_negative : float
        100·TN/(TN + FA); NaN when W* has no absent entry.
    pct_true_positive : float
        100·TP/(TP + MD); NaN when W* has no present entry.
    exact : bool
        FA = MD = 0.
    sign_consistent : bool
        False when the alignment had to ignore the output signs (see :func:`align`).
    """

    tp: int
    tn: int
    fa: int
    md: int
    pct_true_negative: float
    pct_true_positive: float
    exact: bool
    sign_consistent: bool = True

    def as_dict(self):
        """The fields as a plain dict."""
        return asdict(self)


def _pct(a, b):
    return 100.0 * a / (a + b) if a + b else float("nan")


def support_confusion(W, W_true, tol=1e-2, *, v=None, v_true=None, activation=None):
    """Count true/false positives/negatives of the support after aligning the hidden units.

    Parameters
    ----------
    W : ndarray of shape (d, k)
    W_true : ndarray of shape (d, k)
    tol : float, default=1e-2
        An entry is present when ``|w| > tol`` (in W and in W_true alike), ``tol >= 0``.
    v, v_true : ndarray of shape (k,) or None, default=None
        Output weights; when both are given the alignment is sign-consistent (falls back to the
        unconstrained one, flagged, when impossible).
    activation : str, Activation or None, default=None

    Returns
    -------
    confusion : SupportConfusion
    """
    tol = check_scalar(tol, "tol", low=0.0, owner="support_confusion")
    return _confusion_of(align(W, v, W_true, v_true, activation=activation), W_true, tol)


def _confusion_of(al, W_true, tol):
    """:func:`support_confusion` from the alignment ``al`` (``tol`` checked)."""
    est = np.abs(al.W) > tol
    true = np.abs(np.asarray(W_true)) > tol
    tp = int(np.sum(est & true))
    tn = int(np.sum(~est & ~true))
    fa = int(np.sum(est & ~true))
    md = int(np.sum(~est & true))
    return SupportConfusion(tp, tn, fa, md, _pct(tn, fa), _pct(tp, md), fa == 0 and md == 0, al.sign_consistent)


def predict(X, W, v, activation="relu2"):
    """Network output Σ_j v_j φ(w_jᵀx) for every row of X.

    Parameters
    ----------
    X : ndarray of shape (m, d)
    W : ndarray of shape (d, k)
    v : ndarray of shape (k,)
    activation : str, Activation or callable, default="relu2"

    Returns
    -------
    y_hat : ndarray of shape (n_samples,)
    """
    act = get_activation(activation)
    return act(np.asarray(X) @ np.asarray(W)) @ np.asarray(v)


def test_mse(W, v, X, y, activation="relu2"):
    """Mean squared error (1/m) Σ (ŷ − y)² of the network on (X, y).

    Parameters
    ----------
    W : ndarray of shape (d, k)
    v : ndarray of shape (k,)
    X : ndarray of shape (m, d)
    y : ndarray of shape (m,)
    activation : str, Activation or callable, default="relu2"

    Returns
    -------
    mse : float
    """
    r = predict(X, W, v, activation) - np.asarray(y)
    return float(np.mean(r * r))


test_mse.__test__ = False  # not a pytest test


def is_exact_recovery(error, exact_support, resolution=RECOVERY_RESOLUTION):
    """Whether a run recovered W* exactly: recovery error at or below ``resolution`` and exact support.

    Parameters
    ----------
    error : float
        The run's :func:`recovery_error` (infinite or NaN: not exact).
    exact_support : bool or int
        Whether the support of the estimate equals that of W* (:func:`support_confusion`).
    resolution : float, default=RECOVERY_RESOLUTION
        Errors at or below it count as exact (1e-4: SGD ends an exact recovery near 1e-6).

    Returns
    -------
    exact : bool
    """
    error = float(error)
    return bool(math.isfinite(error) and error <= resolution and exact_support)


def evaluate(W, v, problem, *, tol=1e-2):
    """Every metric of an estimate against a planted problem, as a flat dict.

    Parameters
    ----------
    W : ndarray of shape (d, k)
    v : ndarray of shape (k,)
    problem : PlantedProblem
        Supplies W*, v*, the activation and the test set.
    tol : float, default=1e-2
        Support tolerance.

    Returns
    -------
    metrics : dict
        ``recovery_error, sign_failure, tp, tn, fa, md, pct_true_negative, pct_true_positive,
        exact_support, exact_recovery, test_mse, test_rel_mse, nnz`` (counts as ints, flags as
        0/1; ``exact_recovery`` by :func:`is_exact_recovery` at its default resolution).
    """
    W = np.asarray(W, dtype=float)
    v = np.asarray(v, dtype=float)
    act = problem.activation
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(v))):
        nan = float("nan")
        return {"recovery_error": nan, "sign_failure": 0, "tp": 0, "tn": 0, "fa": 0, "md": 0,
                "pct_true_negative": nan, "pct_true_positive": nan, "exact_support": 0,
                "exact_recovery": 0, "test_mse": nan,
                "test_rel_mse": nan, "nnz": int(W.size)}
    tol = check_scalar(tol, "tol", low=0.0, owner="evaluate")
    al = align(W, v, problem.W, problem.v, activation=act)  # one matching for both metrics
    err = _error_of(al, problem.W)
    conf = _confusion_of(al, problem.W, tol)
    mse = test_mse(W, v, problem.X_test, problem.y_test, act)
    var = float(np.var(problem.y_test))
    return {
        "recovery_error": err,
        "sign_failure": int(not np.isfinite(err)),
        "tp": conf.tp, "tn": conf.tn, "fa": conf.fa, "md": conf.md,
        "pct_true_negative": conf.pct_true_negative,
        "pct_true_positive": conf.pct_true_positive,
        "exact_support": int(conf.exact),
        "exact_recovery": int(is_exact_recovery(err, conf.exact)),
        "test_mse": mse,
        "test_rel_mse": mse / var if var > 0 else float("nan"),
        "nnz": int(np.count_nonzero(W)),
    }
