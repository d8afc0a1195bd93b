"""The planted problem of the report: the only place where ground truth is made."""

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_random_state, check_scalar
from .activations import Activation, get_activation

__all__ = ["PlantedProblem", "make_planted", "planted_weights"]


@dataclass(frozen=True)
class PlantedProblem:
    """Samples of a planted one-hidden-layer network and the network itself.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray of shape (n_test,)
    W : ndarray of shape (n_features, n_hidden)
        True hidden weights W* (sparse when thresh_gt or p_gt was given).
    v : ndarray of shape (n_hidden,)
        True output weights v* in {−1, +1}.
    activation : Activation
    noise_sd : float
    """

    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    W: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    activation: Activation
    noise_sd: float = 0.0

    @property
    def shape(self):
        """(n_samples, n_features, n_hidden)."""
        return self.X.shape + (self.W.shape[1],)


def planted_weights(d, k, *, kappa=2.0, thresh_gt=None, p_gt=None, random_state=None):
    """Draw W* = U·Σ·Qᵀ and v*, then sparsify W*.

    Parameters
    ----------
    d, k : int
        Input dimension and number of hidden units, ``1 <= k <= d``.
    kappa : float, default=2.0
        Condition number: Σ = diag(linspace(1, κ, k)).
    thresh_gt : float or None, default=None
        Zero the entries with ``|w| <= thresh_gt``.
    p_gt : float or None, default=None
        Keep the ``round(p_gt·d·k)`` largest-magnitude entries of W*, zero the rest.
    random_state : None, int or numpy.random.Generator, default=None

    Returns
    -------
    W : ndarray of shape (d, k)
    v : ndarray of shape (k,)
    """
    from .sparsify import Threshold, TopFraction

    rng = check_random_state(random_state)
    U, _ = np.linalg.qr(rng.standard_normal((d, k)))
    Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    W = U @ np.diag(np.linspace(1.0, kappa, k)) @ Q.T
    v = rng.choice([-1.0, 1.0], size=k)
    if thresh_gt is not None:
        W = Threshold(thresh_gt)(W)
    elif p_gt is not None:
        W = TopFraction(p_gt)(W)
    return W, v


def make_planted(n, d, k, *, activation="relu2", kappa=2.0, thresh_gt=None, p_gt=None, noise_sd=0.0,
                 n_test=1000, random_state=None):
    """Generate the report's planted regression problem.

    y = Σ_i v*_i φ(w*_iᵀ x) + noise_sd·ε with x ~ N(0, I_d), ε ~ N(0, 1).

    Parameters
    ----------
    n : int
        Number of training samples, ``n >= 1``.
    d : int
        Number of features, ``d >= 1``.
    k : int
        Number of hidden units, ``1 <= k <= d``.
    activation : str, Activation or callable, default="relu2"
        Hidden activation φ (squared ReLU by default, as in the report).
    kappa : float, default=2.0
        Condition number of W*: its singular values are linspace(1, κ, k); ``κ >= 1``.
    thresh_gt : float or None, default=None
        Ground-truth sparsity by threshold: entries with ``|w| <= thresh_gt`` are zeroed.
    p_gt : float or None, default=None
        Ground-truth sparsity by fraction: keep the ``round(p_gt·d·k)`` largest entries, in (0, 1].
        At most one of ``thresh_gt`` and ``p_gt`` may be given.
    noise_sd : float, default=0.0
        Standard deviation of the Gaussian noise added to y and y_test, ``>= 0``.
    n_test : int, default=1000
        Number of test samples (same model, same noise level), ``>= 1``.
    random_state : None, int or numpy.random.Generator, default=None

    Returns
    -------
    problem : PlantedProblem
        With attributes ``X, y, X_test, y_test, W, v, activation, noise_sd``.

    Raises
    ------
    ValueError
        For out-of-range arguments, or both ``thresh_gt`` and ``p_gt`` given.

    Examples
    --------
    >>> from sparsenet import make_planted
    >>> prob = make_planted(100, 6, 2, thresh_gt=0.15, random_state=0)
    >>> prob.X.shape, prob.W.shape
    ((100, 6), (6, 2))
    """
    owner = "make_planted"
    n = check_scalar(n, "n", kind="int", low=1, owner=owner)
    d = check_scalar(d, "d", kind="int", low=1, owner=owner)
    k = check_scalar(k, "k", kind="int", low=1, high=d, owner=owner)
    kappa = check_scalar(kappa, "kappa", low=1.0, owner=owner)
    noise_sd = check_scalar(noise_sd, "noise_sd", low=0.0, owner=owner)
    n_test = check_scalar(n_test, "n_test", kind="int", low=1, owner=owner)
    if thresh_gt is not None and p_gt is not None:
        raise ValueError(
            "Give at most one of 'thresh_gt' and 'p_gt' to make_planted (ground-truth sparsity by "
            f"threshold or by fraction). Got thresh_gt={thresh_gt!r} and p_gt={p_gt!r}."
        )
    if thresh_gt is not None:
        thresh_gt = check_scalar(thresh_gt, "thresh_gt", low=0.0, owner=owner)
    if p_gt is not None:
        p_gt = check_scalar(p_gt, "p_gt", low=0.0, high=1.0, closed="right", owner=owner)
    act = get_activation(activation)
    rng = check_random_state(random_state)

    W, v = planted_weights(d, k, kappa=kappa, thresh_gt=thresh_gt, p_gt=p_gt, random_state=rng)
    if not W.any():
        raise ValueError(
            f"The 'thresh_gt' parameter of make_planted zeroes every weight (thresh_gt={thresh_gt:g} is not below "
            "the largest |w*|, which lies between 1/sqrt(d) and kappa): there is no network to recover. "
            "Use a smaller threshold."
        )

    def sample(m):
        X = rng.standard_normal((m, d))
        y = act(X @ W) @ v
        if noise_sd > 0:
            y = y + noise_sd * rng.standard_normal(m)
        return X, y

    X, y = sample(n)
    X_test, y_test = sample(n_test)
    return PlantedProblem(X=X, y=y, X_test=X_test, y_test=y_test, W=W, v=v, activation=act, noise_sd=noise_sd)
