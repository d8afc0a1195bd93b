"""scikit-learn estimator for sparse one-hidden-layer networks, with sparse export and a file format.

:class:`SparseNetRegressor` is a thin wrapper (STYLE.md 3.1): it validates its parameters, standardizes
the data when asked, calls :func:`sparsenet.tensor_init.tensor_init` (or
:func:`sparsenet.initializers.random_init`) and :func:`sparsenet.train.train_iht`, and stores what
they return. The model is

.. math::

    \\hat y(x) = \\sum_{i=1}^{k} v_i\\, \\varphi\\big(w_i^\\top s(x)\\big) + b,
    \\qquad s(x) = (x - \\mu_x) / \\sigma_x ,

with ``coef_hidden_`` = W (d × k, acting on standardized inputs), ``coef_output_`` = v and
``intercept_`` = b in the units of ``y``.

:meth:`SparseNetRegressor.to_sparse` folds the standardization into the weights
(``hidden = W / σ_x[:, None]`` as CSR, ``hidden_bias = -μ_x @ hidden``), so the exported
:class:`SparseNetwork` works on raw features. :func:`save_model` / :func:`load_model` write and read the
version-tagged ``.npz`` format described in :data:`FORMAT_NAME` / :data:`FORMAT_VERSION` (no pickle).
"""

import json
import numbers
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsenet._validation import check_random_state, check_scalar
from sparsenet.activations import ACTIVATIONS, Activation, get_activation

__all__ = [
    "SparseNetRegressor",
    "SparseNetwork",
    "save_model",
    "load_model",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

#: Value of the ``format`` field of a saved model.
FORMAT_NAME = "sparsenet.SparseNetRegressor"
#: Value of the ``format_version`` field written by this version; :func:`load_model` reads only it.
FORMAT_VERSION = 1

_OWNER = "SparseNetRegressor"
_INITS = ("tensor", "random")


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
        ``-x_mean_ @ hidden``: the input centering folded into the hidden units (all zeros
        when the model was fitted with ``standardize=False``).
    output : ndarray of shape (n_hidden,)
        Output weights v, in the units of y.
    intercept : float
        Output bias b, in the units of y.
    activation : Activation
        The hidden activation φ (``activation.name`` is its name).
    feature_names : ndarray of str or None
        Names of the input columns when the model was fitted on a DataFrame.

    Notes
    -----
    ``predict(X) = φ(X @ hidden + hidden_bias) @ output + intercept``, equal (to rounding) to
    :meth:`SparseNetRegressor.predict`.
    """

    hidden: sp.csr_array
    hidden_bias: np.ndarray
    output: np.ndarray
    intercept: float
    activation: Activation
    feature_names: np.ndarray | None = field(default=None)

    @property
    def nnz(self):
        """Number of nonzero hidden weights."""
        return int(self.hidden.count_nonzero())

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
        Z = np.asarray((self.hidden.T @ X.T).T) + self.hidden_bias
        return self.activation(Z) @ self.output + self.intercept


# --------------------------------------------------------------------------------------------------
# Parameter helpers (validate once, at the boundary: STYLE.md 3.3)
# --------------------------------------------------------------------------------------------------
def _resolve_sparsity(sparsity):
    """Turn the ``sparsity`` parameter into a sparsifier callable."""
    from sparsenet.sparsify import Dense, Sparsifier, TopFraction, get_sparsifier

    if sparsity is None:
        return Dense()
    if isinstance(sparsity, numbers.Real) and not isinstance(sparsity, bool):
        p = check_scalar(sparsity, "sparsity", kind="float", low=0.0, high=1.0, closed="right", owner=_OWNER)
        return TopFraction(p)
    if isinstance(sparsity, (Sparsifier, dict)):
        return get_sparsifier(sparsity)
    raise ValueError(
        f"The 'sparsity' parameter of {_OWNER} must be None, a float in the range (0, 1] "
        f"(the fraction of hidden weights kept) or a Sparsifier (Threshold, TopFraction, Dense). "
        f"Got {sparsity!r} instead."
    )


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"The '{name}' parameter of {_OWNER} must be a bool. Got {value!r} instead.")
    return bool(value)


def _standardization(A, axis=0):
    """Mean and scale (population std, 1 where it is 0 or not finite) along ``axis``."""
    mean = A.mean(axis=axis)
    scale = A.std(axis=axis)
    scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
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


# --------------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------------
class SparseNetRegressor(RegressorMixin, BaseEstimator):
    """Sparse one-hidden-layer network regressor: tensor initialization + iterative hard thresholding.

    Parameters
    ----------
    n_hidden : int, default=10
        Number of hidden units k.
    activation : str, Activation or callable, default="relu2"
        Hidden activation φ: one of "relu2", "relu", "leaky_relu", "tanh", "sigmoid", "softplus",
        an :class:`~sparsenet.activations.Activation` or an elementwise callable (a custom callable
        cannot be saved with :meth:`save`).
    sparsity : float, Sparsifier or None, default=0.25
        A float p in (0, 1] keeps the fraction p of the hidden weights (``TopFraction(p)``); a
        ``Threshold``/``TopFraction``/``Dense`` instance is used as given; None trains a dense network.
    init : {"tensor", "random"}, default="tensor"
        Initialization. "tensor" is the moment method, which assumes inputs close to N(0, I); when it
        raises or warns of bad conditioning, the estimator warns (``UserWarning``, with the reason) and
        uses random initialization instead. ``init_used_`` records which one ran.
    epochs : int, default=50
        Training epochs (passes over the data).
    batch_size : int or None, default=32
        Minibatch size, clipped to the number of samples; None means full-batch gradient descent.
    learning_rate : float, default=3e-2
        Step size. The default suits standardized data (``standardize=True``, where random
        initialization also scales v0 to ±1/√k so the initial output has variance ≈ 1) and the
        "relu2" activation; lower it if training diverges (the error says so).
    pretrain_epochs : int, default=5
        Dense epochs before hard thresholding starts.
    train_output_weights : bool, default=True
        Learn the output weights v by gradient descent, then refit them (and the bias) by least squares
        on the final hidden features; otherwise v stays at its initial value.
    standardize : bool, default=True
        Center and scale each feature and the target to unit variance before initialization and
        training (the algorithms assume standardized inputs), and fold the scaling back so that
        predictions are in the units of y. The output bias ``intercept_`` is then refitted as the mean
        training residual. With ``standardize=False`` the model is the planted one, without any bias
        (``intercept_`` = 0) and trained on the raw data.
    random_state : int, numpy.random.Generator or None, default=None
        Seed for initialization and minibatch order. Converted to a Generator inside :meth:`fit`.
    verbose : int, default=0
        Print the training loss per epoch when > 0.

    Attributes
    ----------
    coef_hidden_ : ndarray of shape (n_features, n_hidden)
        Hidden weights W acting on standardized inputs (zeros where pruned).
    coef_output_ : ndarray of shape (n_hidden,)
        Output weights v in the units of y.
    intercept_ : float
        Output bias b in the units of y.
    x_mean_, x_scale_ : ndarray of shape (n_features,)
        Input standardization (zeros and ones when ``standardize=False``).
    y_mean_, y_scale_ : float
        Target standardization (0 and 1 when ``standardize=False``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    history_ : dict of ndarray
        Per-epoch ``"train_loss"`` (on standardized data), ``"test_loss"`` (NaN) and ``"nnz"``;
        index 0 is the initial state.
    n_iter_ : int
        Number of epochs run.
    init_used_ : {"tensor", "random"}
        The initialization actually used.
    activation_ : Activation
        The resolved activation.

    See Also
    --------
    sparsenet.train.train_iht : the training routine.
    sparsenet.tensor_init.tensor_init : the initialization.

    Notes
    -----
    The model is :math:`\\hat y = \\varphi(s(X) W) v + b` with :math:`s(x) = (x - \\mu_x)/\\sigma_x`.
    Training minimizes the mean squared error on the standardized data
    :math:`(s(X), (y - \\bar y)/s_y)` with :func:`~sparsenet.train.train_iht`; then
    :math:`v \\leftarrow s_y v` and :math:`b = s_y\\,\\mathrm{mean}(\\text{residual}) + \\bar y`.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sparsenet.estimator import SparseNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = SparseNetRegressor(n_hidden=4, sparsity=0.5, init="random", random_state=0).fit(X, y)
    >>> model.coef_hidden_.shape
    (10, 4)
    """

    def __init__(
        self,
        n_hidden=10,
        activation="relu2",
        sparsity=0.25,
        init="tensor",
        epochs=50,
        batch_size=32,
        learning_rate=3e-2,
        pretrain_epochs=5,
        train_output_weights=True,
        standardize=True,
        random_state=None,
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.activation = activation
        self.sparsity = sparsity
        self.init = init
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.pretrain_epochs = pretrain_epochs
        self.train_output_weights = train_output_weights
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

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
        from sparsenet.train import train_iht

        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        n_hidden = check_scalar(self.n_hidden, "n_hidden", kind="int", low=1, owner=_OWNER)
        epochs = check_scalar(self.epochs, "epochs", kind="int", low=1, owner=_OWNER)
        pretrain = check_scalar(self.pretrain_epochs, "pretrain_epochs", kind="int", low=0, owner=_OWNER)
        lr = check_scalar(self.learning_rate, "learning_rate", low=0.0, closed="neither", owner=_OWNER)
        verbose = check_scalar(self.verbose, "verbose", kind="int", low=0, owner=_OWNER)
        if self.batch_size is None:
            batch_size = None
        else:
            batch_size = min(check_scalar(self.batch_size, "batch_size", kind="int", low=1, owner=_OWNER), len(y))
        if self.init not in _INITS:
            raise ValueError(
                f"The 'init' parameter of {_OWNER} must be a str among {{'tensor', 'random'}}. "
                f"Got {self.init!r} instead."
            )
        train_v = _check_bool(self.train_output_weights, "train_output_weights")
        standardize = _check_bool(self.standardize, "standardize")
        activation = get_activation(self.activation)
        sparsifier = _resolve_sparsity(self.sparsity)
        rng = check_random_state(self.random_state)

        if standardize:
            x_mean, x_scale = _standardization(X)
            y_mean, y_scale = _standardization(y)
            Xs = (X - x_mean) / x_scale
            ys = (y - y_mean) / y_scale
        else:
            x_mean, x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
            y_mean, y_scale = 0.0, 1.0
            Xs, ys = X, y

        W0, v0, init_used = _initialize(Xs, ys, n_hidden, activation, self.init, rng, scale_output=standardize)
        result = train_iht(
            Xs,
            ys,
            W0,
            v0,
            sparsifier=sparsifier,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            pretrain_epochs=pretrain,
            train_v=train_v,
            activation=activation,
            random_state=rng,
        )
        W = np.asarray(result.W, dtype=np.float64)
        v = np.asarray(result.v, dtype=np.float64)
        if train_v:
            v, bias = _refit_output(activation(Xs @ W), ys, fit_intercept=standardize)
        else:
            # Least-squares output bias given (W, v): the mean residual. The planted model has none.
            bias = float(np.mean(ys - activation(Xs @ W) @ v)) if standardize else 0.0

        self.activation_ = activation
        self.coef_hidden_ = W
        self.coef_output_ = y_scale * v
        self.intercept_ = float(y_scale * bias + y_mean)
        self.x_mean_, self.x_scale_ = np.asarray(x_mean, dtype=np.float64), np.asarray(x_scale, dtype=np.float64)
        self.y_mean_, self.y_scale_ = float(y_mean), float(y_scale)
        self.history_ = {key: np.asarray(val) for key, val in dict(result.history).items()}
        self.n_iter_ = int(getattr(result, "n_iter_", epochs))
        self.init_used_ = init_used
        if verbose:
            for epoch, loss in enumerate(self.history_.get("train_loss", [])):
                nnz = self.history_["nnz"][epoch] if "nnz" in self.history_ else np.count_nonzero(W)
                print(f"[{_OWNER}] epoch {epoch:4d}  train loss {loss:.6g}  nnz {int(nnz)}")
        return self

    def _hidden_input(self, X):
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
        return self.activation_(self._hidden_input(X) @ self.coef_hidden_) @ self.coef_output_ + self.intercept_

    @property
    def nnz_(self):
        """Number of nonzero hidden weights (fitted models only)."""
        check_is_fitted(self)
        return int(np.count_nonzero(self.coef_hidden_))

    def to_sparse(self):
        """Export the fitted network with a CSR hidden layer in raw feature units.

        Returns
        -------
        network : SparseNetwork
            ``hidden = coef_hidden_ / x_scale_[:, None]`` (CSR), ``hidden_bias = -x_mean_ @ hidden``,
            ``output = coef_output_``, ``intercept = intercept_``; its ``predict`` equals
            :meth:`predict` up to rounding.
        """
        check_is_fitted(self)
        hidden = self.coef_hidden_ / self.x_scale_[:, None]
        return SparseNetwork(
            hidden=sp.csr_array(hidden),
            hidden_bias=-(self.x_mean_ @ hidden),
            output=self.coef_output_.copy(),
            intercept=float(self.intercept_),
            activation=self.activation_,
            feature_names=getattr(self, "feature_names_in_", None),
        )

    def save(self, path):
        """Save the fitted model to ``path`` (see :func:`save_model`)."""
        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (see :func:`load_model`)."""
        return load_model(path)


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
    model : SparseNetRegressor
        A fitted estimator.
    path : str or os.PathLike
        Destination; written exactly there (no ``.npz`` suffix is added).

    Raises
    ------
    ValueError
        The activation is a custom callable, or the sparsity cannot be stored.

    Notes
    -----
    Fields of format ``"sparsenet.SparseNetRegressor"``, version 1 (all plain arrays; unicode
    strings for text):

    ============================  ====================================================
    ``format``                    the string ``"sparsenet.SparseNetRegressor"``
    ``format_version``            int, 1
    ``sparsenet_version``         the writing package's version
    ``params``                    JSON of ``get_params()`` (sparsity encoded, activation by name)
    ``activation``                activation name
    ``coef_hidden``               (d, k) float64
    ``coef_output``               (k,) float64
    ``intercept``                 () float64
    ``x_mean``, ``x_scale``       (d,) float64
    ``y_mean``, ``y_scale``       () float64
    ``n_iter``                    () int64
    ``init_used``                 "tensor" or "random"
    ``feature_names``             (d,) str; present only when fitted on named columns
    ``history.<key>``             per-epoch history arrays
    ============================  ====================================================
    """
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
        "coef_output": np.asarray(model.coef_output_, dtype=np.float64),
        "intercept": np.array(model.intercept_, dtype=np.float64),
        "x_mean": model.x_mean_,
        "x_scale": model.x_scale_,
        "y_mean": np.array(model.y_mean_, dtype=np.float64),
        "y_scale": np.array(model.y_scale_, dtype=np.float64),
        "n_iter": np.array(model.n_iter_, dtype=np.int64),
        "init_used": np.array(model.init_used_),
    }
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names"] = np.asarray(model.feature_names_in_, dtype=str)
    for key, val in model.history_.items():
        arrays[f"history.{key}"] = np.asarray(val)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


_REQUIRED = ("params", "activation", "coef_hidden", "coef_output", "intercept", "x_mean", "x_scale",
             "y_mean", "y_scale", "n_iter", "init_used")


def load_model(path):
    """Read a model written by :func:`save_model`.

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
        version, or misses fields.
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

    fmt = str(fields["format"]) if "format" in fields else None
    if fmt != FORMAT_NAME:
        raise ValueError(f"{path}: not a sparsenet model file (format field {fmt!r}, expected {FORMAT_NAME!r}).")
    version = int(fields["format_version"]) if "format_version" in fields else None
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: model file format version {version}; this sparsenet reads version {FORMAT_VERSION} only. "
            "Refit the model or use the sparsenet version that wrote it."
        )
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise ValueError(f"{path}: corrupt sparsenet model file (missing fields {missing}).")
    try:
        params = json.loads(str(fields["params"]))
        params["sparsity"] = _decode_sparsity(params.get("sparsity"))
        model = SparseNetRegressor(**params)
        W = np.asarray(fields["coef_hidden"], dtype=np.float64)
        v = np.asarray(fields["coef_output"], dtype=np.float64)
        d, k = W.shape
        if v.shape != (k,) or fields["x_mean"].shape != (d,) or fields["x_scale"].shape != (d,):
            raise ValueError("inconsistent array shapes")
        model.activation_ = get_activation(str(fields["activation"]))
        model.coef_hidden_ = W
        model.coef_output_ = v
        model.intercept_ = float(fields["intercept"])
        model.x_mean_ = np.asarray(fields["x_mean"], dtype=np.float64)
        model.x_scale_ = np.asarray(fields["x_scale"], dtype=np.float64)
        model.y_mean_ = float(fields["y_mean"])
        model.y_scale_ = float(fields["y_scale"])
        model.n_iter_ = int(fields["n_iter"])
        model.init_used_ = str(fields["init_used"])
        model.n_features_in_ = d
        if "feature_names" in fields:
            model.feature_names_in_ = np.asarray(fields["feature_names"], dtype=object)
        model.history_ = {key[len("history."):]: val for key, val in fields.items() if key.startswith("history.")}
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: corrupt sparsenet model file ({exc}).") from None
    return model
