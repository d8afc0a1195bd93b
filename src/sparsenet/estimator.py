"""scikit-learn estimators for sparse one-hidden-layer networks, with sparse export and a file format.

:class:`SparseNetRegressor` is a thin wrapper (STYLE.md 3.1): it validates its parameters, standardizes
the data when asked, initializes (:func:`sparsenet.tensor_init.tensor_init` or
:func:`sparsenet.initializers.random_init`), trains with :func:`sparsenet.train.train_iht` (the report's
minibatch IHT, ``solver="sgd"``) or :func:`sparsenet.netfit.sparsity_path` (full-batch L-BFGS along a
warm-started sparsity path, ``solver="lbfgs"``), and stores what they return. The model is

.. math::

    \\hat y(x) = \\sum_{i=1}^{k} v_i\\, \\varphi\\big(w_i^\\top s(x) + c_i\\big) + \\beta^\\top s(x) + b,
    \\qquad s(x) = (x - \\mu_x) / \\sigma_x ,

with ``coef_hidden_`` = W (d × k, acting on standardized inputs), ``hidden_bias_`` = c,
``coef_output_`` = v, ``coef_skip_`` = β (the linear skip term) and ``intercept_`` = b, the last three
in the units of ``y``.

**Two modes, one rule.** ``standardize=False`` is the report's planted model: no hidden biases, no skip
term, tensor initialization, minibatch IHT — exactly what the report's experiments study, and what the
``"auto"`` defaults resolve to there. ``standardize=True`` (the default) is the mode for real data:
``"auto"`` turns on the hidden biases and the skip term, random initialization and the full-batch
L-BFGS sparsity path with early stopping.

:class:`SparseNetRegressorCV` chooses the kept fraction and ``n_hidden`` by K-fold cross-validation
(the ``LassoCV`` pattern: one warm-started path per fold and hidden size). :class:`SparseNetClassifier`
is the same network with a logistic (binary) or multinomial output.

:meth:`SparseNetRegressor.to_sparse` folds the standardization into the weights
(``hidden = W / σ_x[:, None]`` as CSR, ``hidden_bias = c - μ_x @ hidden``), so the exported
:class:`SparseNetwork` works on raw features. :func:`save_model` / :func:`load_model` write and read the
version-tagged ``.npz`` format described in :data:`FORMAT_NAME` / :data:`FORMAT_VERSION` (no pickle);
:func:`load_model` checks every array (shape, finiteness, positive scales) before returning a model.
"""

import copy
import json
import numbers
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsenet._validation import check_magnitude, check_random_state, check_scalar
from sparsenet.activations import ACTIVATIONS, Activation, get_activation

__all__ = [
    "SparseNetRegressor",
    "SparseNetRegressorCV",
    "SparseNetClassifier",
    "SparseNetwork",
    "save_model",
    "load_model",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

#: Value of the ``format`` field of a saved model.
FORMAT_NAME = "sparsenet.SparseNetRegressor"
#: Value of the ``format_version`` field written by this version. Version 2 adds ``hidden_bias`` and
#: ``coef_skip``; :func:`load_model` also reads version 1 files (both terms zero).
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)

_OWNER = "SparseNetRegressor"
_INITS = ("auto", "tensor", "random")
_SOLVERS = ("auto", "lbfgs", "sgd", "niht", "htp", "grasp")
_RECOVER_SOLVERS = ("niht", "htp", "grasp")  # via sparsenet.recovery.recover (tensor init, sign search)


# --------------------------------------------------------------------------------------------------
# Sparse export
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SparseNetwork:
    """A fitted network in raw feature units, with the hidden layer as a sparse matrix.

    Parameters
    ----------
    hidden : scipy.sparse.csr_array of shape (n_features, n_hidden)
        Hidden weights in original feature units: ``coef_hidden_ / x_scale_[:, None]``.
        Zeros of ``coef_hidden_`` stay zeros (scaling rows does not change the support).
    hidden_bias : ndarray of shape (n_hidden,)
        ``hidden_bias_ - x_mean_ @ hidden``: the model's hidden biases with the input centering
        folded in (all zeros when the model was fitted with ``standardize=False``).
    output : ndarray of shape (n_hidden,)
        Output weights v, in the units of y.
    intercept : float
        Output bias b, in the units of y (with the skip term's centering folded in).
    activation : Activation
        The hidden activation φ (``activation.name`` is its name).
    feature_names : ndarray of str or None
        Names of the input columns when the model was fitted on a DataFrame.
    skip : scipy.sparse.csr_array of shape (n_features, 1) or None
        The linear skip term in raw feature units, ``coef_skip_ / x_scale_``; None when it is zero.
    x_min, x_max : ndarray of shape (n_features,) or None
        Training range; inputs are clipped to it before the network is applied (None: no clipping).

    Notes
    -----
    ``predict(X) = φ(X @ hidden + hidden_bias) @ output + X @ skip + intercept``, equal (to rounding)
    to :meth:`SparseNetRegressor.predict`.
    """

    hidden: sp.csr_array
    hidden_bias: np.ndarray
    output: np.ndarray
    intercept: float
    activation: Activation
    feature_names: np.ndarray | None = field(default=None)
    skip: sp.csr_array | None = field(default=None)
    x_min: np.ndarray | None = field(default=None)
    x_max: np.ndarray | None = field(default=None)

    @property
    def nnz(self):
        """Number of nonzero weights: hidden weights plus the skip term's."""
        return int(self.hidden.count_nonzero()) + (0 if self.skip is None else int(self.skip.count_nonzero()))

    def predict(self, X):
        """Predict with the sparse form.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.hidden.shape[0]:
            raise ValueError(
                f"Input 'X' must be 2-D with {self.hidden.shape[0]} columns. Got shape {X.shape} instead."
            )
        if self.x_min is not None:
            X = np.clip(X, self.x_min, self.x_max)
        Z = np.asarray((self.hidden.T @ X.T).T) + self.hidden_bias
        out = self.activation(Z) @ self.output + self.intercept
        if self.skip is not None:
            out = out + np.asarray(self.skip.T @ X.T).ravel()
        return out


# --------------------------------------------------------------------------------------------------
# Parameter helpers (validate once, at the boundary: STYLE.md 3.3)
# --------------------------------------------------------------------------------------------------
def _resolve_sparsity(sparsity, owner=_OWNER):
    """Turn the ``sparsity`` parameter into a sparsifier callable."""
    from sparsenet.sparsify import Dense, Sparsifier, TopFraction, get_sparsifier

    if sparsity is None:
        return Dense()
    if isinstance(sparsity, numbers.Real) and not isinstance(sparsity, bool):
        p = check_scalar(sparsity, "sparsity", kind="float", low=0.0, high=1.0, closed="right", owner=owner)
        return TopFraction(p)
    if isinstance(sparsity, (Sparsifier, dict)):
        return get_sparsifier(sparsity)
    raise ValueError(
        f"The 'sparsity' parameter of {owner} must be None, a float in the range (0, 1] "
        f"(the fraction of hidden weights kept) or a Sparsifier (Threshold, TopFraction, Dense). "
        f"Got {sparsity!r} instead."
    )


def _check_bool(value, name, owner=_OWNER):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"The '{name}' parameter of {owner} must be a bool. Got {value!r} instead.")
    return bool(value)


def _standardization(A, axis=0):
    """Mean and scale (population std, 1 where it is 0 or not finite) along ``axis``.

    Computed on values divided by their largest magnitude, so that columns of 1e-300 or 1e300
    neither underflow to a zero variance nor overflow to an infinite one.
    """
    big = np.max(np.abs(A), axis=axis, keepdims=True)
    big = np.where(big > 0, big, 1.0)
    unit = A / big
    mean = unit.mean(axis=axis, keepdims=True)
    dev = unit - mean
    spread = np.max(np.abs(dev), axis=axis, keepdims=True)
    spread = np.where(spread > 0, spread, 1.0)
    std = (dev / spread).std(axis=axis, keepdims=True) * spread * big
    mean = np.squeeze(mean * big, axis=axis)
    std = np.squeeze(std, axis=axis)
    scale = np.where((std > 0) & np.isfinite(std), std, 1.0)
    return mean, scale


def _refit_output(H, y, *, fit_intercept):
    """Least-squares output layer on fixed hidden features H: ``min ||H v + b - y||²`` (tiny ridge).

    Returns ``(v, b)``; ``b = 0`` without intercept.
    """
    if fit_intercept:
        h_mean = H.mean(axis=0)
        Hc, yc = H - h_mean, y - y.mean()
    else:
        Hc, yc = H, y
    gram = Hc.T @ Hc
    ridge = 1e-8 * (np.trace(gram) / max(gram.shape[0], 1) + 1e-12)
    v = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), Hc.T @ yc)
    bias = float(y.mean() - h_mean @ v) if fit_intercept else 0.0
    return v, bias


def _initialize(X, y, n_hidden, activation, init, rng, *, scale_output=False):
    """Tensor or random initialization; the tensor method falls back to random with a warning.

    Returns ``(W0, v0, init_used)``.
    """
    from sparsenet.initializers import random_init

    if init == "tensor":
        from sparsenet.tensor_init import tensor_init

        reason = None
        with warnings.catch_warnings():
            # A warning from tensor_init (non-Gaussian inputs, bad conditioning, numerical trouble) is
            # raised as an exception here, so the fallback starts at once instead of after the full,
            # possibly slow, decomposition.
            warnings.simplefilter("error", UserWarning)
            warnings.simplefilter("error", RuntimeWarning)
            try:
                W0, v0 = tensor_init(X, y, n_hidden, activation=activation, random_state=rng)
            except (UserWarning, RuntimeWarning) as exc:
                reason = f"it warned: {exc}"
            except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
                reason = f"it raised {type(exc).__name__}: {exc}"
        if reason is None and not (np.all(np.isfinite(W0)) and np.all(np.isfinite(v0))):
            reason = "it returned non-finite weights"
        if reason is None:
            return np.asarray(W0, dtype=np.float64), np.asarray(v0, dtype=np.float64), "tensor"
        warnings.warn(
            f"{_OWNER}: the tensor initialization is unreliable on this data ({reason}); it assumes "
            "inputs close to N(0, I) and enough samples. Falling back to random initialization "
            "(init='random').",
            UserWarning,
            stacklevel=3,
        )
    W0, v0 = random_init(X.shape[1], n_hidden, random_state=rng)
    if scale_output:
        # Standardized y has variance 1; k units with v = ±1 would start with output variance ~k.
        v0 = v0 / np.sqrt(n_hidden)
    return np.asarray(W0, dtype=np.float64), np.asarray(v0, dtype=np.float64), "random"


def _resolve_auto(value, name, auto, owner):
    """``"auto"`` -> ``auto``; a bool as given; anything else is an error naming the parameter."""
    if isinstance(value, str) and value == "auto":
        return bool(auto)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"The '{name}' parameter of {owner} must be a bool or 'auto'. Got {value!r} instead.")


def _stages(sparsifier):
    """Sparsifiers applied after the dense fit: the halving path to TopFraction(p), else the one given."""
    from sparsenet.netfit import path_fractions
    from sparsenet.sparsify import Dense, TopFraction

    if isinstance(sparsifier, Dense):
        return []
    if isinstance(sparsifier, TopFraction):
        return [TopFraction(q) for q in path_fractions(sparsifier.p)]
    return [sparsifier]


def _fold_dead_units(net, activation):
    """A unit with no input weight outputs the constant φ(c)·v: move it into b (exact, to rounding)."""
    from dataclasses import replace

    dead = ~np.any(net.W != 0, axis=0)
    if not dead.any():
        return net
    constant = activation(net.c[dead]) @ net.V[dead]
    return replace(net, b=net.b + constant, V=np.where(dead[:, None], 0.0, net.V), c=np.where(dead, 0.0, net.c))


class _SparseNetBase(BaseEstimator):
    """Shared parameter checks and the full-batch path of the regressor and the classifier."""

    def _check_lbfgs_params(self, standardize):
        owner = type(self).__name__
        return dict(
            hidden_bias=_resolve_auto(self.hidden_bias, "hidden_bias", standardize, owner),
            skip=_resolve_auto(self.skip, "skip", standardize, owner),
            early_stopping=_resolve_auto(self.early_stopping, "early_stopping", standardize, owner),
            alpha=check_scalar(self.alpha, "alpha", low=0.0, owner=owner),
            max_iter=check_scalar(self.max_iter, "max_iter", kind="int", low=1, owner=owner),
            tol=check_scalar(self.tol, "tol", low=0.0, closed="neither", owner=owner),
            validation_fraction=check_scalar(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
                                             closed="neither", owner=owner),
            n_iter_no_change=check_scalar(self.n_iter_no_change, "n_iter_no_change", kind="int", low=1,
                                          owner=owner),
        )

    @staticmethod
    def _run_path(Xs, Y, W0, V0, activation, stages, cfg, *, loss, fit_output, rng):
        """Dense fit then the pruning stages (:func:`sparsenet.netfit.sparsity_path`), with early stopping
        on a held-out fraction when asked (skipped when it would leave fewer than 2 rows on a side)."""
        from sparsenet.netfit import Network, sparsity_path

        n, d = Xs.shape
        k, m = V0.shape
        net0 = Network(W=W0, c=np.zeros(k), V=V0, B=np.zeros((d, m)), b=np.zeros(m))
        validation, X_fit, Y_fit = None, Xs, Y
        n_val = int(round(cfg["validation_fraction"] * n))
        if cfg["early_stopping"] and n_val >= 2 and n - n_val >= 2:
            order = rng.permutation(n)
            val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
            validation, X_fit, Y_fit = (Xs[val], Y[val]), Xs[fit], Y[fit]
        return sparsity_path(
            X_fit, Y_fit, net0, activation, stages=stages, hidden_bias=cfg["hidden_bias"], skip=cfg["skip"],
            fit_output=fit_output, loss=loss, alpha=cfg["alpha"], max_iter=cfg["max_iter"], tol=cfg["tol"],
            validation=validation, n_iter_no_change=cfg["n_iter_no_change"],
        )

    @staticmethod
    def _path_history(path, stages):
        fractions = [1.0] + [float(getattr(s, "p", np.nan)) for s in stages]
        return {
            "fraction": np.asarray(fractions),
            "train_loss": np.asarray([info.train_loss for _, info in path]),
            "val_loss": np.asarray([info.val_loss for _, info in path]),
            "n_iter": np.asarray([info.n_iter for _, info in path], dtype=np.int64),
            "nnz": np.asarray([np.count_nonzero(net.W) + np.count_nonzero(net.B) for net, _ in path],
                              dtype=np.int64),
        }


# --------------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------------
class SparseNetRegressor(RegressorMixin, _SparseNetBase):
    """Sparse one-hidden-layer network regressor.

    Parameters
    ----------
    n_hidden : int, default=10
        Number of hidden units k.
    activation : str, Activation or callable, default="relu2"
        Hidden activation φ: one of "relu2", "relu", "leaky_relu", "tanh", "sigmoid", "softplus",
        an :class:`~sparsenet.activations.Activation` or an elementwise callable (a custom callable
        cannot be saved with :meth:`save`).
    sparsity : float, Sparsifier or None, default=0.25
        A float p in (0, 1] keeps the fraction p of the input weights (``TopFraction(p)``: of W, or of
        [W | β] jointly when the skip term is on); a ``Threshold``/``TopFraction``/``Dense`` instance is
        used as given; None trains a dense network.
    init : {"auto", "tensor", "random"}, default="auto"
        Initialization. "tensor" is the moment method, which assumes inputs close to N(0, I); when it
        raises or warns of bad conditioning, the estimator warns (``UserWarning``, with the reason) and
        uses random initialization instead. ``init_used_`` records which one ran. "auto" is "tensor"
        with ``standardize=False`` (the planted model) and "random" with ``standardize=True``.
    solver : {"auto", "lbfgs", "sgd", "niht", "htp", "grasp"}, default="auto"
        "sgd" is the report's minibatch IHT (:func:`~sparsenet.train.train_iht`; ``epochs``,
        ``batch_size``, ``learning_rate``, ``pretrain_epochs`` apply). "lbfgs" fits the dense network
        with full-batch L-BFGS, then prunes and refits along dense → 50 % → 25 % → … → ``sparsity``,
        each stage warm-started from the last (:func:`~sparsenet.netfit.sparsity_path`; ``alpha``,
        ``max_iter``, ``tol``, ``early_stopping`` apply). "niht", "htp" and "grasp" run
        :func:`sparsenet.recovery.recover` with that full-batch solver (tensor initialization, output signs
        searched from the data; for the planted model, without biases or skip term; ``init`` is not
        used). "auto" is "sgd" with ``standardize=False`` and "lbfgs" with ``standardize=True``.
    hidden_bias : bool or "auto", default="auto"
        Learn a bias c per hidden unit (solver "lbfgs" only). "auto" is ``standardize``.
    skip : bool or "auto", default="auto"
        Learn a linear skip term β on the standardized inputs (solver "lbfgs" only); its weights share
        the sparsity budget with W. "auto" is ``standardize``.
    alpha : float, default=1e-3
        L2 penalty ½·α·(‖W‖² + ‖v‖² + ‖β‖²) added to the mean squared error (solver "lbfgs").
    max_iter : int, default=200
        Cap on L-BFGS iterations per stage of the path (solver "lbfgs").
    tol : float, default=1e-6
        L-BFGS stops when the largest gradient entry or the relative loss decrease is below ``tol``.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows, keep the parameters with the lowest held-out loss
        and stop a stage after ``n_iter_no_change`` iterations without improvement (solver "lbfgs";
        skipped when fewer than 2 rows would be held out). "auto" is ``standardize``.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=10
        Patience of early stopping, in L-BFGS iterations.
    epochs : int, default=50
        Training epochs (passes over the data) of solver "sgd".
    batch_size : int or None, default=32
        Minibatch size of solver "sgd", clipped to the number of samples; None means full-batch
        gradient descent.
    learning_rate : float, default=3e-2
        Step size of solver "sgd". The default suits standardized data (``standardize=True``, where
        random initialization also scales v0 to ±1/√k so the initial output has variance ≈ 1) and the
        "relu2" activation; lower it if training diverges (the error says so).
    pretrain_epochs : int, default=5
        Dense epochs before hard thresholding starts (solver "sgd").
    train_output_weights : bool, default=True
        Learn the output weights v (solver "sgd": by gradient descent, then refitted with the bias by
        least squares on the final hidden features); otherwise v stays at its initial value.
    clip_inputs : bool or "auto", default="auto"
        At prediction, clip each feature to the range seen in training, so the network is not
        evaluated outside its training data (a squared ReLU grows quadratically there: on one fold of
        the star98 benchmark set three test rows 26–30 standard deviations out made 92 % of the squared
        error). "auto" is ``standardize``.
    standardize : bool, default=True
        Center and scale each feature and the target to unit variance before initialization and
        training (the algorithms assume standardized inputs), and fold the scaling back so that
        predictions are in the units of y. With ``standardize=False`` the model is the planted one,
        without any bias (``intercept_`` = 0) and trained on the raw data, and every "auto" resolves to
        the report's setting.
    random_state : int, numpy.random.Generator or None, default=None
        Seed for initialization, the early-stopping split and minibatch order. Converted to a
        Generator inside :meth:`fit`.
    verbose : int, default=0
        Print the training loss per epoch (or per path stage) when > 0.

    Attributes
    ----------
    coef_hidden_ : ndarray of shape (n_features, n_hidden)
        Hidden weights W acting on standardized inputs (zeros where pruned).
    hidden_bias_ : ndarray of shape (n_hidden,)
        Hidden biases c (zeros when off).
    coef_output_ : ndarray of shape (n_hidden,)
        Output weights v in the units of y (zero for units left without input weights, whose
        constant output is folded into ``intercept_``).
    coef_skip_ : ndarray of shape (n_features,)
        Linear skip term β on standardized inputs, in the units of y (zeros when off).
    intercept_ : float
        Output bias b in the units of y.
    x_mean_, x_scale_ : ndarray of shape (n_features,)
        Input standardization (zeros and ones when ``standardize=False``).
    x_min_, x_max_ : ndarray of shape (n_features,) or None
        Training range of each feature, used by ``clip_inputs`` (None when clipping is off).
    y_mean_, y_scale_ : float
        Target standardization (0 and 1 when ``standardize=False``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    history_ : dict of ndarray
        Solver "sgd": per-epoch ``"train_loss"`` (on standardized data), ``"test_loss"`` (NaN) and
        ``"nnz"``; index 0 is the initial state. Solver "lbfgs": per path stage ``"fraction"`` (1 for
        the dense fit), ``"train_loss"``, ``"val_loss"``, ``"n_iter"`` and ``"nnz"``.
    n_iter_ : int
        Epochs (sgd) or L-BFGS iterations summed over the path (lbfgs).
    init_used_ : {"tensor", "random"}
        The initialization actually used.
    solver_ : {"sgd", "lbfgs"}
        The solver actually used.
    activation_ : Activation
        The resolved activation.

    See Also
    --------
    SparseNetRegressorCV : chooses ``sparsity`` and ``n_hidden`` by cross-validation.
    sparsenet.train.train_iht : the report's training routine.
    sparsenet.netfit.sparsity_path : the full-batch path.
    sparsenet.tensor_init.tensor_init : the initialization.

    Notes
    -----
    The model is :math:`\\hat y = \\varphi(s(X) W + c) v + s(X)\\beta + b` with
    :math:`s(x) = (x - \\mu_x)/\\sigma_x`. Training minimizes the mean squared error on the standardized
    data :math:`(s(X), (y - \\bar y)/s_y)`; then :math:`v, \\beta` are multiplied by :math:`s_y` and
    :math:`b \\leftarrow s_y b + \\bar y`.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sparsenet.estimator import SparseNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = SparseNetRegressor(n_hidden=4, sparsity=0.5, random_state=0).fit(X, y)
    >>> model.coef_hidden_.shape
    (10, 4)
    """

    def __init__(
        self,
        n_hidden=10,
        activation="relu2",
        sparsity=0.25,
        init="auto",
        solver="auto",
        hidden_bias="auto",
        skip="auto",
        alpha=1e-3,
        max_iter=200,
        tol=1e-6,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        epochs=50,
        batch_size=32,
        learning_rate=3e-2,
        pretrain_epochs=5,
        train_output_weights=True,
        clip_inputs="auto",
        standardize=True,
        random_state=None,
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.activation = activation
        self.sparsity = sparsity
        self.init = init
        self.solver = solver
        self.hidden_bias = hidden_bias
        self.skip = skip
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.pretrain_epochs = pretrain_epochs
        self.train_output_weights = train_output_weights
        self.clip_inputs = clip_inputs
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self, n_samples):
        """Validate every parameter and resolve the "auto" ones; returns a dict."""
        n_hidden = check_scalar(self.n_hidden, "n_hidden", kind="int", low=1, owner=_OWNER)
        standardize = _check_bool(self.standardize, "standardize")
        if not isinstance(self.solver, str) or self.solver not in _SOLVERS:
            raise ValueError(f"The 'solver' parameter of {_OWNER} must be a str among "
                             f"{{{', '.join(map(repr, _SOLVERS))}}}. Got {self.solver!r} instead.")
        if self.init not in _INITS:
            raise ValueError(
                f"The 'init' parameter of {_OWNER} must be a str among {{'auto', 'tensor', 'random'}}. "
                f"Got {self.init!r} instead."
            )
        cfg = dict(
            n_hidden=n_hidden,
            standardize=standardize,
            solver=("lbfgs" if standardize else "sgd") if self.solver == "auto" else self.solver,
            init=("random" if standardize else "tensor") if self.init == "auto" else self.init,
            epochs=check_scalar(self.epochs, "epochs", kind="int", low=1, owner=_OWNER),
            pretrain=check_scalar(self.pretrain_epochs, "pretrain_epochs", kind="int", low=0, owner=_OWNER),
            lr=check_scalar(self.learning_rate, "learning_rate", low=0.0, closed="neither", owner=_OWNER),
            verbose=check_scalar(self.verbose, "verbose", kind="int", low=0, owner=_OWNER),
            batch_size=None if self.batch_size is None else min(
                check_scalar(self.batch_size, "batch_size", kind="int", low=1, owner=_OWNER), n_samples),
            train_v=_check_bool(self.train_output_weights, "train_output_weights"),
            activation=get_activation(self.activation),
            sparsifier=_resolve_sparsity(self.sparsity),
            clip=_resolve_auto(self.clip_inputs, "clip_inputs", standardize, _OWNER),
            **self._check_lbfgs_params(standardize),
        )
        if cfg["solver"] != "lbfgs" and (cfg["hidden_bias"] or cfg["skip"]):
            raise ValueError(f"{_OWNER}: hidden_bias and skip need solver='lbfgs' (solver={cfg['solver']!r} "
                             "trains the planted model without them).")
        return cfg

    def fit(self, X, y):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        self : SparseNetRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            A parameter out of range, bad input, or diverged training (lower ``learning_rate``).
        """
        return self._fit(X, y)

    def _fit_path(self, X, y, fractions):
        """Fit the "lbfgs" path through ``TopFraction(q)`` for q in ``fractions``; returns one fitted
        copy of the estimator per stage (the dense fit first). Used by :class:`SparseNetRegressorCV`."""
        from sparsenet.sparsify import TopFraction

        copies = []
        self._fit(X, y, stages=[TopFraction(q) for q in fractions], copies=copies)
        return copies

    def _fit(self, X, y, stages=None, copies=None):
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_magnitude(X, "X"), check_magnitude(y, "y")  # a 1e300 cell: named, not "no candidate keeps ..."
        cfg = self._check_params(len(y))
        rng = check_random_state(self.random_state)
        if cfg["standardize"]:
            x_mean, x_scale = _standardization(X)
            y_mean, y_scale = _standardization(y)
            Xs = (X - x_mean) / x_scale
            ys = (y - y_mean) / y_scale
        else:
            x_mean, x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
            y_mean, y_scale = 0.0, 1.0
            Xs, ys = X, y
        activation = cfg["activation"]
        if cfg["solver"] in _RECOVER_SOLVERS:
            W0 = v0 = init_used = None  # recover() initializes (tensor method, sign search, restarts)
        else:
            W0, v0, init_used = _initialize(Xs, ys, cfg["n_hidden"], activation, cfg["init"], rng,
                                            scale_output=cfg["standardize"])
        if cfg["solver"] in _RECOVER_SOLVERS:
            W, c, v, beta, bias, history, n_iter = self._fit_recover(Xs, ys, cfg, rng)
            init_used = "tensor"
        elif cfg["solver"] == "sgd":
            W, c, v, beta, bias, history, n_iter = self._fit_sgd(Xs, ys, W0, v0, cfg, rng)
        else:
            stages = _stages(cfg["sparsifier"]) if stages is None else stages
            path = self._run_path(Xs, ys[:, None], W0, v0[:, None], activation, stages, cfg, loss="squared",
                                  fit_output=cfg["train_v"], rng=rng)
            history = self._path_history(path, stages)
            n_iter = int(history["n_iter"].sum())
            if copies is not None:
                for net, _ in path:
                    net = _fold_dead_units(net, activation)
                    stage = copy.copy(self)
                    stage._store(net.W, net.c, net.V[:, 0], net.B[:, 0], float(net.b[0]), cfg["solver"],
                                 activation, x_mean, x_scale, y_mean, y_scale)
                    stage.x_min_, stage.x_max_ = (X.min(axis=0), X.max(axis=0)) if cfg["clip"] else (None, None)
                    copies.append(stage)
            net = _fold_dead_units(path[-1][0], activation)
            W, c, v, beta, bias = net.W, net.c, net.V[:, 0], net.B[:, 0], float(net.b[0])

        self._store(W, c, v, beta, bias, cfg["solver"], activation, x_mean, x_scale, y_mean, y_scale)
        self.x_min_, self.x_max_ = (X.min(axis=0), X.max(axis=0)) if cfg["clip"] else (None, None)
        self.history_ = history
        self.n_iter_ = n_iter
        self.init_used_ = init_used
        if cfg["verbose"]:
            for step, loss in enumerate(self.history_.get("train_loss", [])):
                nnz = self.history_["nnz"][step] if "nnz" in self.history_ else np.count_nonzero(W)
                print(f"[{_OWNER}] {'epoch' if self.solver_ == 'sgd' else 'stage'} {step:4d}  "
                      f"train loss {loss:.6g}  nnz {int(nnz)}")
        return self

    def _store(self, W, c, v, beta, bias, solver, activation, x_mean, x_scale, y_mean, y_scale):
        """Set the fitted attributes from standardized-unit parameters."""
        self.activation_ = activation
        self.solver_ = solver
        self.coef_hidden_ = np.asarray(W, dtype=np.float64)
        self.hidden_bias_ = np.asarray(c, dtype=np.float64)
        self.coef_output_ = y_scale * np.asarray(v, dtype=np.float64)
        self.coef_skip_ = y_scale * np.asarray(beta, dtype=np.float64)
        self.intercept_ = float(y_scale * bias + y_mean)
        self.x_mean_, self.x_scale_ = np.asarray(x_mean, dtype=np.float64), np.asarray(x_scale, dtype=np.float64)
        self.y_mean_, self.y_scale_ = float(y_mean), float(y_scale)

    @staticmethod
    def _fit_recover(Xs, ys, cfg, rng):
        """:func:`sparsenet.recovery.recover` with a full-batch solver (issue 12), then the output bias."""
        from sparsenet.recovery import recover

        activation = cfg["activation"]
        res = recover(Xs, ys, cfg["n_hidden"], sparsifier=cfg["sparsifier"], activation=activation,
                      solver=cfg["solver"], train_v=cfg["train_v"], random_state=rng)
        W, v = np.asarray(res.W, dtype=np.float64), np.asarray(res.v, dtype=np.float64)
        bias = float(np.mean(ys - activation(Xs @ W) @ v)) if cfg["standardize"] else 0.0
        history = {key: np.asarray(res.history[key]) for key in ("loss", "nnz") if key in res.history}
        k, d = W.shape[1], W.shape[0]
        return W, np.zeros(k), v, np.zeros(d), bias, history, int(res.history.get("n_iter", 0))

    @staticmethod
    def _fit_sgd(Xs, ys, W0, v0, cfg, rng):
        """The report's minibatch IHT (:func:`~sparsenet.train.train_iht`), then the output refit."""
        from sparsenet.train import train_iht

        activation = cfg["activation"]
        result = train_iht(
            Xs, ys, W0, v0, sparsifier=cfg["sparsifier"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
            learning_rate=cfg["lr"], pretrain_epochs=cfg["pretrain"], train_v=cfg["train_v"],
            activation=activation, random_state=rng,
        )
        W = np.asarray(result.W, dtype=np.float64)
        v = np.asarray(result.v, dtype=np.float64)
        if cfg["train_v"]:
            v, bias = _refit_output(activation(Xs @ W), ys, fit_intercept=cfg["standardize"])
        else:
            # Least-squares output bias given (W, v): the mean residual. The planted model has none.
            bias = float(np.mean(ys - activation(Xs @ W) @ v)) if cfg["standardize"] else 0.0
        history = {key: np.asarray(val) for key, val in dict(result.history).items()}
        k, d = W.shape[1], W.shape[0]
        return W, np.zeros(k), v, np.zeros(d), bias, history, int(getattr(result, "n_iter_", cfg["epochs"]))

    def _hidden_input(self, X):
        if getattr(self, "x_min_", None) is not None:
            X = np.clip(X, self.x_min_, self.x_max_)
        return (X - self.x_mean_) / self.x_scale_

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Xs = self._hidden_input(X)
        return (self.activation_(Xs @ self.coef_hidden_ + self.hidden_bias_) @ self.coef_output_
                + Xs @ self.coef_skip_ + self.intercept_)

    @property
    def nnz_(self):
        """Number of nonzero hidden weights (fitted models only)."""
        check_is_fitted(self)
        return int(np.count_nonzero(self.coef_hidden_))

    @property
    def n_weights_(self):
        """Nonzero multiplicative weights: hidden W, output v and skip β (biases not counted)."""
        check_is_fitted(self)
        return int(np.count_nonzero(self.coef_hidden_) + np.count_nonzero(self.coef_output_)
                   + np.count_nonzero(self.coef_skip_))

    def to_sparse(self):
        """Export the fitted network with a CSR hidden layer in raw feature units.

        Returns
        -------
        network : SparseNetwork
            ``hidden = coef_hidden_ / x_scale_[:, None]`` (CSR), ``hidden_bias = hidden_bias_ -
            x_mean_ @ hidden``, ``output = coef_output_``, ``skip = coef_skip_ / x_scale_`` (CSR column,
            None when zero), ``intercept = intercept_ - x_mean_ @ skip``; its ``predict`` equals
            :meth:`predict` up to rounding.
        """
        check_is_fitted(self)
        hidden = self.coef_hidden_ / self.x_scale_[:, None]
        skip = self.coef_skip_ / self.x_scale_
        has_skip = bool(np.any(skip != 0))
        return SparseNetwork(
            hidden=sp.csr_array(hidden),
            hidden_bias=self.hidden_bias_ - self.x_mean_ @ hidden,
            output=self.coef_output_.copy(),
            intercept=float(self.intercept_ - (self.x_mean_ @ skip if has_skip else 0.0)),
            activation=self.activation_,
            feature_names=getattr(self, "feature_names_in_", None),
            skip=sp.csr_array(skip[:, None]) if has_skip else None,
            x_min=None if self.x_min_ is None else self.x_min_.copy(),
            x_max=None if self.x_max_ is None else self.x_max_.copy(),
        )

    def save(self, path):
        """Save the fitted model to ``path`` (see :func:`save_model`)."""
        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (see :func:`load_model`)."""
        return load_model(path)


def _check_grid(values, name, owner, *, kind, low, high=None, closed="both"):
    """A non-empty sequence of scalars, each checked like the single parameter."""
    if isinstance(values, (numbers.Real, np.integer)) and not isinstance(values, bool):
        values = [values]
    try:
        values = list(values)
    except TypeError:
        values = None
    if not values:
        raise ValueError(f"The '{name}' parameter of {owner} must be a non-empty sequence. Got {values!r} instead.")
    return [check_scalar(v, name, kind=kind, low=low, high=high, closed=closed, owner=owner) for v in values]


class SparseNetRegressorCV(RegressorMixin, BaseEstimator):
    """Sparse network regressor with the kept fraction and the hidden size chosen by cross-validation.

    The ``LassoCV`` pattern: for each hidden size and each of ``cv`` folds, one
    :class:`SparseNetRegressor` path (solver "lbfgs": dense → 50 % → 25 % → …, warm-started) is fitted
    on the training part and scored (mean squared error) on the held-out part at every candidate
    fraction; the (n_hidden, sparsity) with the lowest mean error is refitted on all the data.

    Parameters
    ----------
    n_hidden : sequence of int, default=(4, 8, 16)
        Candidate hidden sizes.
    sparsities : sequence of float, default=(0.5, 0.25, 0.125, 0.0625)
        Candidate kept fractions of the input weights, in (0, 1] (1 = dense). The path visits the
        halving sequence and every candidate, in decreasing order.
    cv : int, default=5
        Number of folds (shuffled K-fold).
    activation : str or Activation, default="relu2"
        Hidden activation.
    hidden_bias, skip : bool, default=True
        Hidden biases and linear skip term (see :class:`SparseNetRegressor`).
    alpha, max_iter, tol, early_stopping, validation_fraction, n_iter_no_change
        Passed to every :class:`SparseNetRegressor` (defaults 1e-3, 200, 1e-6, True, 0.1, 10).
    max_weight_fraction : float or None, default=None
        When set, candidates whose nonzero weights (kept input weights plus the k output weights)
        exceed this fraction of a dense network's d·k + k weights are not considered.
    clip_inputs : bool, default=True
        Clip features to their training range at prediction (see :class:`SparseNetRegressor`).
    random_state : int, numpy.random.Generator or None, default=None
        Seed for the folds and every fit.
    verbose : int, default=0
        Print the cross-validated error of each candidate when > 0.

    Attributes
    ----------
    n_hidden_ : int
        Chosen hidden size.
    sparsity_ : float
        Chosen kept fraction.
    mse_path_ : ndarray of shape (len(n_hidden), len(sparsities), cv)
        Held-out mean squared error per candidate and fold (inf for excluded candidates).
    estimator_ : SparseNetRegressor
        The chosen model refitted on all the data; ``predict``, ``to_sparse`` and ``save`` use it.
    n_iter_ : int
        L-BFGS iterations of the refit (summed over its path).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sparsenet.estimator import SparseNetRegressorCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = SparseNetRegressorCV(n_hidden=(2, 4), cv=3, random_state=0).fit(X, y)
    >>> model.mse_path_.shape
    (2, 4, 3)
    """

    def __init__(self, n_hidden=(4, 8, 16), sparsities=(0.5, 0.25, 0.125, 0.0625), cv=5, activation="relu2",
                 hidden_bias=True, skip=True, alpha=1e-3, max_iter=200, tol=1e-6, early_stopping=True,
                 validation_fraction=0.1, n_iter_no_change=10, max_weight_fraction=None, clip_inputs=True,
                 random_state=None, verbose=0):
        self.n_hidden = n_hidden
        self.sparsities = sparsities
        self.cv = cv
        self.activation = activation
        self.hidden_bias = hidden_bias
        self.skip = skip
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_weight_fraction = max_weight_fraction
        self.clip_inputs = clip_inputs
        self.random_state = random_state
        self.verbose = verbose

    def _base(self, n_hidden, sparsity, seed):
        return SparseNetRegressor(
            n_hidden=n_hidden, activation=self.activation, sparsity=sparsity, init="random", solver="lbfgs",
            hidden_bias=self.hidden_bias, skip=self.skip, alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
            early_stopping=self.early_stopping, validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change, clip_inputs=self.clip_inputs, standardize=True,
            random_state=seed,
        )

    def fit(self, X, y):
        """Choose (n_hidden, sparsity) by cross-validation and refit on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : SparseNetRegressorCV
        """
        from sklearn.model_selection import KFold

        from sparsenet.netfit import path_fractions

        owner = type(self).__name__
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_magnitude(X, "X"), check_magnitude(y, "y")  # a 1e300 cell: named, not "no candidate keeps ..."
        ks = _check_grid(self.n_hidden, "n_hidden", owner, kind="int", low=1)
        ps = _check_grid(self.sparsities, "sparsities", owner, kind="float", low=0.0, high=1.0, closed="right")
        cv = check_scalar(self.cv, "cv", kind="int", low=2, owner=owner)
        verbose = check_scalar(self.verbose, "verbose", kind="int", low=0, owner=owner)
        limit = None if self.max_weight_fraction is None else check_scalar(
            self.max_weight_fraction, "max_weight_fraction", low=0.0, closed="neither", owner=owner)
        n, d = X.shape
        if n < cv:
            raise ValueError(f"{owner} needs at least cv={cv} samples to cross-validate; got n_samples = {n}.")
        rng = check_random_state(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        skip = _resolve_auto(self.skip, "skip", True, owner)
        # One path per (hidden size, fold): the halving sequence and every candidate, decreasing.
        fractions = sorted({q for q in path_fractions(min(ps))} | {p for p in ps if p < 1.0}, reverse=True)
        stage_of = {1.0: 0, **{q: i + 1 for i, q in enumerate(fractions)}}
        mse = np.full((len(ks), len(ps), cv), np.inf)
        folds = list(KFold(cv, shuffle=True, random_state=seed).split(X))
        for i, k in enumerate(ks):
            allowed = [limit is None or int(round(p * d * (k + skip))) + k <= limit * (d * k + k) for p in ps]
            if not any(allowed):
                continue
            for f, (train, test) in enumerate(folds):
                base = self._base(k, None, seed)
                path = base._fit_path(X[train], y[train], fractions)
                for j, p in enumerate(ps):
                    if allowed[j]:
                        pred = path[stage_of[p]].predict(X[test])
                        mse[i, j, f] = float(np.mean((pred - y[test]) ** 2))
        mean = mse.mean(axis=2)
        if not np.isfinite(mean).any():
            raise ValueError(f"{owner}: no candidate (n_hidden, sparsity) keeps within max_weight_fraction="
                             f"{self.max_weight_fraction} of the dense weights.")
        i, j = np.unravel_index(np.argmin(mean), mean.shape)
        if verbose:
            for a, k in enumerate(ks):
                print(f"[{owner}] n_hidden={k}: " + "  ".join(f"p={p:g} mse={mean[a, b]:.4g}" for b, p in enumerate(ps)))
        self.n_hidden_, self.sparsity_ = int(ks[i]), float(ps[j])
        self.mse_path_ = mse
        self.estimator_ = self._base(self.n_hidden_, None if self.sparsity_ == 1.0 else self.sparsity_, seed)
        self.estimator_.fit(X, y)
        self.n_iter_ = self.estimator_.n_iter_
        if hasattr(self, "feature_names_in_"):
            self.estimator_.feature_names_in_ = self.feature_names_in_
        return self

    def predict(self, X):
        """Predict with the refitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.estimator_.predict(X)

    def to_sparse(self):
        """Sparse export of the refitted model (see :meth:`SparseNetRegressor.to_sparse`)."""
        check_is_fitted(self)
        return self.estimator_.to_sparse()

    def save(self, path):
        """Save the refitted model (a :class:`SparseNetRegressor`) to ``path``."""
        check_is_fitted(self)
        save_model(self.estimator_, path)


class SparseNetClassifier(ClassifierMixin, _SparseNetBase):
    """Sparse one-hidden-layer network classifier: logistic (2 classes) or multinomial output.

    The network of :class:`SparseNetRegressor` with m = 1 output passed through the logistic function
    for two classes, or m = n_classes outputs through softmax for more, trained by minimizing the mean
    cross-entropy plus ½·α·(‖W‖² + ‖V‖² + ‖B‖²) with the full-batch L-BFGS sparsity path
    (:func:`sparsenet.netfit.sparsity_path`).

    Parameters
    ----------
    n_hidden : int, default=10
        Number of hidden units k.
    activation : str, Activation or callable, default="relu2"
        Hidden activation φ.
    sparsity : float, Sparsifier or None, default=0.25
        Kept fraction of the input weights [W | B] (see :class:`SparseNetRegressor`); None = dense.
    hidden_bias : bool, default=True
        Learn a bias per hidden unit.
    skip : bool, default=True
        Learn a linear skip term (a sparse logistic regression beside the hidden units).
    alpha : float, default=1e-3
        L2 penalty on the weights.
    max_iter : int, default=200
        Cap on L-BFGS iterations per path stage.
    tol : float, default=1e-6
        L-BFGS tolerance.
    early_stopping : bool, default=True
        Stop each stage on a held-out ``validation_fraction`` of the rows (see :class:`SparseNetRegressor`).
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping.
    clip_inputs : bool, default=True
        Clip features to their training range at prediction (see :class:`SparseNetRegressor`).
    standardize : bool, default=True
        Center and scale the features (folded back in :attr:`x_mean_`, :attr:`x_scale_`).
    random_state : int, numpy.random.Generator or None, default=None
        Seed for initialization and the early-stopping split.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_hidden_ : ndarray of shape (n_features, n_hidden)
    hidden_bias_ : ndarray of shape (n_hidden,)
    coef_output_ : ndarray of shape (n_hidden, m)
    coef_skip_ : ndarray of shape (n_features, m)
    intercept_ : ndarray of shape (m,)
        m = 1 for two classes, n_classes otherwise.
    x_mean_, x_scale_ : ndarray of shape (n_features,)
    x_min_, x_max_ : ndarray of shape (n_features,) or None
        Training range used by ``clip_inputs`` (None when off).
    history_ : dict of ndarray
        Per path stage ``"fraction"``, ``"train_loss"``, ``"val_loss"``, ``"n_iter"``, ``"nnz"``.
    n_iter_ : int
        L-BFGS iterations summed over the path.
    activation_ : Activation
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sparsenet.estimator import SparseNetClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = SparseNetClassifier(n_hidden=4, sparsity=0.1, random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, n_hidden=10, activation="relu2", sparsity=0.25, hidden_bias=True, skip=True, alpha=1e-3,
                 max_iter=200, tol=1e-6, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
                 clip_inputs=True, standardize=True, random_state=None):
        self.n_hidden = n_hidden
        self.activation = activation
        self.sparsity = sparsity
        self.hidden_bias = hidden_bias
        self.skip = skip
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.clip_inputs = clip_inputs
        self.standardize = standardize
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : SparseNetClassifier
        """
        from sparsenet.initializers import random_init

        owner = type(self).__name__
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_magnitude(X, "X")
        check_classification_targets(y)
        classes, index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{owner} needs samples of at least 2 classes; got 1 class ({classes[0]!r}).")
        k = check_scalar(self.n_hidden, "n_hidden", kind="int", low=1, owner=owner)
        standardize = _check_bool(self.standardize, "standardize", owner)
        cfg = self._check_lbfgs_params(True)
        activation = get_activation(self.activation)
        sparsifier = _resolve_sparsity(self.sparsity, owner)
        rng = check_random_state(self.random_state)
        if standardize:
            x_mean, x_scale = _standardization(X)
        else:
            x_mean, x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        Xs = (X - x_mean) / x_scale
        if len(classes) == 2:
            loss, Y = "logistic", index[:, None].astype(np.float64)
        else:
            loss, Y = "multinomial", np.eye(len(classes))[index]
        W0, _ = random_init(X.shape[1], k, random_state=rng)
        V0 = rng.choice([-1.0, 1.0], size=(k, Y.shape[1])) / np.sqrt(k)
        stages = _stages(sparsifier)
        path = self._run_path(Xs, Y, W0, V0, activation, stages, cfg, loss=loss, fit_output=True, rng=rng)
        net = _fold_dead_units(path[-1][0], activation)
        self.classes_ = classes
        self.activation_ = activation
        self.coef_hidden_, self.hidden_bias_ = net.W, net.c
        self.coef_output_, self.coef_skip_, self.intercept_ = net.V, net.B, net.b
        self.x_mean_, self.x_scale_ = np.asarray(x_mean, dtype=np.float64), np.asarray(x_scale, dtype=np.float64)
        clip = _check_bool(self.clip_inputs, "clip_inputs", owner)
        self.x_min_, self.x_max_ = (X.min(axis=0), X.max(axis=0)) if clip else (None, None)
        self.history_ = self._path_history(path, stages)
        self.n_iter_ = int(self.history_["n_iter"].sum())
        return self

    def decision_function(self, X):
        """Logit of the second class (two classes) or the class scores (more).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.x_min_ is not None:
            X = np.clip(X, self.x_min_, self.x_max_)
        Xs = (X - self.x_mean_) / self.x_scale_
        F = (self.activation_(Xs @ self.coef_hidden_ + self.hidden_bias_) @ self.coef_output_
             + Xs @ self.coef_skip_ + self.intercept_)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        from scipy.special import expit, softmax

        F = self.decision_function(X)
        if F.ndim == 1:
            p = expit(F)
            return np.column_stack([1.0 - p, p])
        return softmax(F, axis=1)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        F = self.decision_function(X)
        index = (F > 0).astype(int) if F.ndim == 1 else np.argmax(F, axis=1)
        return self.classes_[index]


# --------------------------------------------------------------------------------------------------
# File format
# --------------------------------------------------------------------------------------------------
def _encode_sparsity(sparsity):
    from sparsenet.sparsify import Dense, Threshold, TopFraction

    if sparsity is None or (isinstance(sparsity, numbers.Real) and not isinstance(sparsity, bool)):
        return sparsity if sparsity is None else float(sparsity)
    if isinstance(sparsity, dict):
        return {"sparsifier": dict(sparsity)}
    if isinstance(sparsity, Threshold):
        return {"sparsifier": {"kind": "threshold", "t": float(sparsity.t)}}
    if isinstance(sparsity, TopFraction):
        return {"sparsifier": {"kind": "top_fraction", "p": float(sparsity.p)}}
    if isinstance(sparsity, Dense):
        return {"sparsifier": {"kind": "dense"}}
    raise ValueError(
        f"Cannot save a {_OWNER} whose 'sparsity' is {sparsity!r}: only None, a float, Threshold, "
        "TopFraction and Dense can be stored."
    )


def _decode_sparsity(value):
    from sparsenet.sparsify import Dense, Threshold, TopFraction

    if not isinstance(value, dict):
        return value
    spec = value["sparsifier"]
    kind = spec.get("kind")
    if kind == "threshold":
        return Threshold(spec["t"])
    if kind == "top_fraction":
        return TopFraction(spec["p"])
    if kind == "dense":
        return Dense()
    from sparsenet.sparsify import get_sparsifier

    return get_sparsifier(spec)


def _activation_name(activation):
    """Name under which ``activation`` can be stored, or raise."""
    name = activation.name if isinstance(activation, Activation) else activation
    if isinstance(name, str) and name in ACTIVATIONS and get_activation(name) is get_activation(activation):
        return name
    raise ValueError(
        f"Cannot save a {_OWNER} with a custom activation ({activation!r}): activations are stored by "
        f"name, one of {sorted(ACTIVATIONS)}."
    )


def save_model(model, path):
    """Write a fitted :class:`SparseNetRegressor` to a version-tagged ``.npz`` file (no pickle).

    Parameters
    ----------
    model : SparseNetRegressor or SparseNetRegressorCV
        A fitted estimator (for the CV estimator, its refitted ``estimator_`` is written).
    path : str or os.PathLike
        Destination; written exactly there (no ``.npz`` suffix is added).

    Raises
    ------
    ValueError
        The activation is a custom callable, or the sparsity cannot be stored.

    Notes
    -----
    Fields of format ``"sparsenet.SparseNetRegressor"``, version 2 (all plain arrays; unicode
    strings for text):

    ============================  ====================================================
    ``format``                    the string ``"sparsenet.SparseNetRegressor"``
    ``format_version``            int, 2
    ``sparsenet_version``         the writing package's version
    ``params``                    JSON of ``get_params()`` (sparsity encoded, activation by name)
    ``activation``                activation name
    ``coef_hidden``               (d, k) float64
    ``hidden_bias``               (k,) float64 (version 2)
    ``coef_output``               (k,) float64
    ``coef_skip``                 (d,) float64 (version 2)
    ``intercept``                 () float64
    ``x_mean``, ``x_scale``       (d,) float64
    ``y_mean``, ``y_scale``       () float64
    ``n_iter``                    () int64
    ``init_used``                 "tensor" or "random"
    ``solver``                    "sgd" or "lbfgs" (version 2)
    ``x_min``, ``x_max``          (d,) float64, training range; present only when inputs are clipped
    ``feature_names``             (d,) str; present only when fitted on named columns
    ``history.<key>``             per-epoch (sgd) or per-stage (lbfgs) history arrays
    ============================  ====================================================

    A version 1 file has no ``hidden_bias``, ``coef_skip`` or ``solver``; :func:`load_model` reads it
    with both terms zero and solver "sgd".
    """
    if isinstance(model, SparseNetRegressorCV):
        check_is_fitted(model)
        model = model.estimator_
    check_is_fitted(model)
    activation = _activation_name(model.activation_)
    params = model.get_params(deep=False)
    params["activation"] = activation
    params["sparsity"] = _encode_sparsity(params["sparsity"])
    if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
        params["random_state"] = None
    elif params["random_state"] is not None:
        params["random_state"] = int(params["random_state"])
    try:
        from importlib.metadata import version

        pkg_version = version("sparsenet")
    except Exception:  # not installed (running from a source tree)
        pkg_version = "unknown"
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "sparsenet_version": np.array(pkg_version),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "activation": np.array(activation),
        "coef_hidden": np.asarray(model.coef_hidden_, dtype=np.float64),
        "hidden_bias": np.asarray(model.hidden_bias_, dtype=np.float64),
        "coef_output": np.asarray(model.coef_output_, dtype=np.float64),
        "coef_skip": np.asarray(model.coef_skip_, dtype=np.float64),
        "intercept": np.array(model.intercept_, dtype=np.float64),
        "x_mean": model.x_mean_,
        "x_scale": model.x_scale_,
        "y_mean": np.array(model.y_mean_, dtype=np.float64),
        "y_scale": np.array(model.y_scale_, dtype=np.float64),
        "n_iter": np.array(model.n_iter_, dtype=np.int64),
        "init_used": np.array(model.init_used_),
        "solver": np.array(model.solver_),
    }
    if getattr(model, "x_min_", None) is not None:
        arrays["x_min"] = np.asarray(model.x_min_, dtype=np.float64)
        arrays["x_max"] = np.asarray(model.x_max_, dtype=np.float64)
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names"] = np.asarray(model.feature_names_in_, dtype=str)
    for key, val in model.history_.items():
        arrays[f"history.{key}"] = np.asarray(val)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


_REQUIRED = ("params", "activation", "coef_hidden", "coef_output", "intercept", "x_mean", "x_scale",
             "y_mean", "y_scale", "n_iter", "init_used")
_REQUIRED_V2 = ("hidden_bias", "coef_skip", "solver")


def _float_array(fields, key, shape):
    """``fields[key]`` as a finite float64 array of ``shape``, or a ValueError saying what is wrong."""
    value = fields[key]
    if value.dtype.kind not in "fiu":
        raise ValueError(f"{key} must hold numbers; it holds dtype {value.dtype}")
    value = np.asarray(value, dtype=np.float64)
    if value.shape != shape:
        raise ValueError(f"{key} has shape {value.shape}; expected {shape}")
    bad = ~np.isfinite(value)
    if bad.any():
        where = "" if value.ndim == 0 else f" at index {tuple(int(i) for i in np.argwhere(bad)[0])}"
        raise ValueError(f"{key} holds a non-finite value ({value[bad].flat[0]}){where}")
    return value


def _positive(value, key):
    bad = ~(value > 0)
    if np.any(bad):
        where = "" if value.ndim == 0 else f" at index {int(np.argmax(bad))}"
        raise ValueError(f"{key} must be positive; got {value[bad].flat[0] if value.ndim else float(value)}{where}")
    return value


def _text(fields, key, allowed):
    value = fields[key]
    if value.shape != () or value.dtype.kind != "U" or str(value) not in allowed:
        raise ValueError(f"{key} must be one of {sorted(allowed)}; got {value!r}")
    return str(value)


def load_model(path):
    """Read a model written by :func:`save_model`, checking every array.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : SparseNetRegressor
        A fitted estimator whose predictions are bit-identical to the saved one's.

    Raises
    ------
    ValueError
        The file is not a readable ``.npz`` archive, not a sparsenet model, has another format
        version, misses fields, or holds an array of the wrong shape or dtype, a non-finite weight,
        or a scale that is not positive and finite (the message names the field and the index).
    FileNotFoundError
        No file at ``path``.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a sparsenet model file (not a readable .npz archive: {exc}).") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a sparsenet model file (a .npy array, not an .npz archive).")
    try:
        with data:
            fields = {key: data[key] for key in data.files}
    except Exception as exc:  # BadZipFile, zlib.error, ValueError... from a damaged member
        raise ValueError(f"{path}: corrupt sparsenet model file ({type(exc).__name__}: {exc}).") from None

    fmt = str(fields["format"]) if "format" in fields and fields["format"].dtype.kind == "U" else None
    if fmt != FORMAT_NAME:
        raise ValueError(f"{path}: not a sparsenet model file (format field {fmt!r}, expected {FORMAT_NAME!r}).")
    try:
        version = int(fields["format_version"]) if "format_version" in fields else None
    except (TypeError, ValueError):
        version = None
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"{path}: model file format version {version}; this sparsenet reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}. Refit the model or use the sparsenet version that wrote it."
        )
    missing = [key for key in _REQUIRED + (_REQUIRED_V2 if version >= 2 else ()) if key not in fields]
    if missing:
        raise ValueError(f"{path}: corrupt sparsenet model file (missing fields {missing}).")
    try:
        params = json.loads(str(fields["params"]))
        if not isinstance(params, dict):
            raise ValueError("params is not a JSON object")
        params["sparsity"] = _decode_sparsity(params.get("sparsity"))
        model = SparseNetRegressor(**params)
        hidden = fields["coef_hidden"]
        if hidden.ndim != 2 or 0 in hidden.shape:
            raise ValueError(f"coef_hidden has shape {hidden.shape}; expected (n_features, n_hidden)")
        d, k = hidden.shape
        model.activation_ = get_activation(_text(fields, "activation", set(ACTIVATIONS)))
        model.coef_hidden_ = _float_array(fields, "coef_hidden", (d, k))
        model.coef_output_ = _float_array(fields, "coef_output", (k,))
        if version >= 2:
            model.hidden_bias_ = _float_array(fields, "hidden_bias", (k,))
            model.coef_skip_ = _float_array(fields, "coef_skip", (d,))
            model.solver_ = _text(fields, "solver", set(_SOLVERS) - {"auto"})
        else:
            model.hidden_bias_, model.coef_skip_, model.solver_ = np.zeros(k), np.zeros(d), "sgd"
        model.intercept_ = float(_float_array(fields, "intercept", ()))
        model.x_mean_ = _float_array(fields, "x_mean", (d,))
        model.x_scale_ = _positive(_float_array(fields, "x_scale", (d,)), "x_scale")
        model.y_mean_ = float(_float_array(fields, "y_mean", ()))
        model.y_scale_ = float(_positive(_float_array(fields, "y_scale", ()), "y_scale"))
        n_iter = fields["n_iter"]
        if n_iter.shape != () or n_iter.dtype.kind not in "iu" or int(n_iter) < 0:
            raise ValueError(f"n_iter must be a non-negative integer; got {n_iter!r}")
        model.n_iter_ = int(n_iter)
        model.init_used_ = _text(fields, "init_used", {"tensor", "random"})
        model.x_min_ = model.x_max_ = None
        if ("x_min" in fields) != ("x_max" in fields):
            raise ValueError("x_min and x_max must both be present or both absent")
        if "x_min" in fields:
            model.x_min_ = _float_array(fields, "x_min", (d,))
            model.x_max_ = _float_array(fields, "x_max", (d,))
            if np.any(model.x_min_ > model.x_max_):
                raise ValueError(f"x_min exceeds x_max at index {int(np.argmax(model.x_min_ > model.x_max_))}")
        model.n_features_in_ = d
        if "feature_names" in fields:
            names = fields["feature_names"]
            if names.shape != (d,) or names.dtype.kind != "U":
                raise ValueError(f"feature_names must be {d} strings; got shape {names.shape}, dtype {names.dtype}")
            model.feature_names_in_ = np.asarray(names, dtype=object)
        model.history_ = {key[len("history."):]: val for key, val in fields.items() if key.startswith("history.")}
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: corrupt sparsenet model file ({exc}).") from None
    return model
