"""Input checks shared by the public functions; one message format for all of them.

Messages follow scikit-learn's wording: name the parameter, the allowed range and the value
received, e.g. "The 'p' parameter of TopFraction must be a float in the range (0, 1]. Got 1.5
instead."
"""

import numbers

import numpy as np

__all__ = [
    "check_random_state",
    "check_scalar",
    "check_data",
    "check_weights",
    "check_magnitude",
    "max_abs_value",
]


def check_random_state(random_state):
    """Turn None, an int or a Generator into a ``numpy.random.Generator``.

    Parameters
    ----------
    random_state : None, int, numpy.random.SeedSequence or numpy.random.Generator
        A Generator is returned unchanged, so callers can share one stream.

    Returns
    -------
    rng : numpy.random.Generator
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, numbers.Integral) and random_state < 0:
            raise ValueError(
                f"The 'random_state' parameter must be None, a non-negative int or a "
                f"numpy.random.Generator. Got {random_state!r} instead."
            )
        return np.random.default_rng(random_state)
    raise ValueError(
        "The 'random_state' parameter must be None, a non-negative int or a "
        f"numpy.random.Generator. Got {random_state!r} instead."
    )


def _range_text(low, high, closed):
    left = "[" if closed in ("both", "left") and low is not None else "("
    right = "]" if closed in ("both", "right") and high is not None else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_scalar(value, name, *, kind="float", low=None, high=None, closed="both", owner=None):
    """Check a scalar parameter and return it as a Python int or float.

    Parameters
    ----------
    value : object
        The value received.
    name : str
        The parameter's name, used in the message.
    kind : {"float", "int"}, default="float"
        ``"int"`` accepts integers only; ``"float"`` accepts any finite real number.
    low, high : float or None, default=None
        Bounds of the allowed range; None means unbounded.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds belong to the range.
    owner : str or None, default=None
        The function or class the parameter belongs to, named in the message.

    Returns
    -------
    value : int or float

    Raises
    ------
    ValueError
        If the value has the wrong type, is not finite or lies outside the range.
    """
    where = f" of {owner}" if owner else ""
    noun = "an int" if kind == "int" else "a float"
    rng_txt = _range_text(low, high, closed)
    msg = f"The '{name}' parameter{where} must be {noun} in the range {rng_txt}. Got {value!r} instead."
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(msg)
    if kind == "int" and not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise ValueError(msg)
    if not np.isfinite(value):
        raise ValueError(msg)
    value = int(value) if kind == "int" else float(value)
    if low is not None and (value < low or (value == low and closed in ("right", "neither"))):
        raise ValueError(msg)
    if high is not None and (value > high or (value == high and closed in ("left", "neither"))):
        raise ValueError(msg)
    return value


def _finite(a, name):
    # A finite sum proves every entry finite without an n×d boolean temporary (large X); only a
    # non-finite sum (a bad entry, or an overflow of huge values) pays for the elementwise search.
    with np.errstate(over="ignore", invalid="ignore"):
        if a.dtype.kind != "f" or np.isfinite(np.sum(a)):
            return
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"Input '{name}' contains NaN or infinity (first at index {tuple(int(i) for i in bad)}); "
            "remove or impute those entries."
        )


# The model forms products of up to five data values summed over the rows (the order-4 moment
# y·x⁴ of the tensor initialization; the squared loss of a squared activation, (xᵀw)⁴).
_MAX_FACTORS = 5


def max_abs_value(n_samples):
    """Largest |entry| of X or y for which those products and sums stay finite in float64.

    0.999·(max float64 / n_samples)^(1/5) (the factor absorbs rounding): about 1e61 for 10⁴ rows.
    """
    return 0.999 * float((np.finfo(np.float64).max / max(int(n_samples), 1)) ** (1.0 / _MAX_FACTORS))


def check_magnitude(a, name, n_samples=None):
    """Refuse an entry too large for the model, naming it (row, column) and the limit.

    Parameters
    ----------
    a : ndarray of shape (n_samples,), (n_samples, n_features) or with a leading model axis
        Finite data (X or y).
    name : {"X", "y"}
        Which input, named in the message.
    n_samples : int or None, default=None
        Rows summed over (the limit depends on it); None: ``a.shape[-2]`` for X, ``a.shape[-1]`` for y.

    Raises
    ------
    ValueError
        When an entry exceeds :func:`max_abs_value`.
    """
    a = np.asarray(a)
    if a.dtype.kind != "f" or a.size == 0:
        return
    if n_samples is None:
        n_samples = a.shape[-2] if name == "X" and a.ndim >= 2 else a.shape[-1]
    limit = max_abs_value(n_samples)
    if max(float(a.max()), -float(a.min())) <= limit:  # two passes, no n×d temporary
        return
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(a))), a.shape))
    value = float(a[where])
    if name == "X":
        at = f"row {where[-2]}, column {where[-1]}" + (f", model {where[0]}" if len(where) == 3 else "")
    else:
        at = f"row {where[-1]}" + (f", model {where[0]}" if len(where) == 2 else "")
    raise ValueError(
        f"Input '{name}' has a value too large for the model: {name}[{', '.join(map(str, where))}] = "
        f"{value:.3g} ({at}). Values beyond {limit:.2g} (for {n_samples} rows) overflow float64 in the "
        f"moments and the squared loss; standardize {'the features' if name == 'X' else 'the target'} "
        "(subtract the mean, divide by the standard deviation)."
    )


def _check_values(a, name, n_samples):
    """:func:`_finite` and :func:`check_magnitude` of ``a`` in two passes (max, min) instead of three.

    A finite max and min within the limit prove every entry finite and bounded (a NaN propagates
    through both); otherwise the two checks run and raise their own messages.
    """
    if a.dtype.kind == "f" and a.size:
        with np.errstate(invalid="ignore"):
            hi, lo = float(a.max()), float(a.min())
        limit = max_abs_value(n_samples)
        if hi <= limit and -lo <= limit:
            return
    _finite(a, name)
    check_magnitude(a, name, n_samples)


def check_data(X, y=None, *, dtype=np.float64, min_samples=1, allow_batch=False):
    """Validate a design matrix and (optionally) its targets.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        With ``allow_batch=True`` also (n_models, n_samples, n_features).
    y : array-like of shape (n_samples,) or None
        With a batched X, y has shape (n_models, n_samples).
    dtype : numpy dtype, default=np.float64
    min_samples : int, default=1

    Returns
    -------
    X, y : ndarray
        Contiguous arrays of the requested dtype (y is None when not given).

    Raises
    ------
    ValueError
        Wrong number of dimensions, mismatched lengths, too few rows, NaN or infinity, or an entry
        too large for the model (|value| > :func:`max_abs_value`, where products of five values
        overflow float64); the message names the entry's row and column.
    """
    try:
        X = np.ascontiguousarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Input 'X' must be a numeric array; could not convert it ({exc}).") from None
    ndims = (2, 3) if allow_batch else (2,)
    if X.ndim not in ndims:
        want = "2-D (n_samples, n_features) or 3-D (n_models, n_samples, n_features)" if allow_batch \
            else "2-D of shape (n_samples, n_features)"
        raise ValueError(f"Input 'X' must be {want}. Got an array of shape {X.shape} instead.")
    n = X.shape[-2]
    if n < min_samples:
        raise ValueError(f"Input 'X' must have at least {min_samples} samples. Got {n} instead.")
    if X.shape[-1] < 1:
        raise ValueError("Input 'X' must have at least one feature (column). Got 0 instead.")
    _check_values(X, "X", n)
    if y is None:
        return X, None
    try:
        y = np.ascontiguousarray(y, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Input 'y' must be a numeric array; could not convert it ({exc}).") from None
    if y.shape != X.shape[:-1]:
        raise ValueError(
            f"Input 'y' must have shape {X.shape[:-1]} to match X of shape {X.shape}. "
            f"Got shape {y.shape} instead."
        )
    _check_values(y, "y", n)
    return X, y


def check_weights(W, v, n_features=None, *, dtype=np.float64, allow_batch=False):
    """Validate hidden weights W (d, k) and output weights v (k,) (batched: a leading axis).

    Returns
    -------
    W, v : ndarray
        Fresh float arrays (callers may modify them in place).
    """
    W = np.array(W, dtype=dtype)
    v = np.array(v, dtype=dtype)
    ndims = (2, 3) if allow_batch else (2,)
    if W.ndim not in ndims:
        raise ValueError(f"Input 'W' must be 2-D of shape (n_features, n_hidden). Got shape {W.shape} instead.")
    if v.shape != W.shape[:-2] + W.shape[-1:]:
        raise ValueError(
            f"Input 'v' must have shape {W.shape[:-2] + W.shape[-1:]} to match W of shape {W.shape}. "
            f"Got shape {v.shape} instead."
        )
    if n_features is not None and W.shape[-2] != n_features:
        raise ValueError(
            f"Input 'W' must have {n_features} rows (one per feature of X). Got shape {W.shape} instead."
        )
    _finite(W, "W")
    _finite(v, "v")
    return W, v
