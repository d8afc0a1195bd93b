"""Sparsifiers: the hard-thresholding operators of IHT.

A sparsifier is a callable ``W -> W`` on arrays of shape (..., n_features, n_hidden); leading axes
are independent models (a batch), and each model is sparsified on its own d×k matrix.

:data:`SPARSIFIERS` is the one registry: ``kind -> class``. Each class names its ``kind`` and its
constructor parameters (``params``) and round-trips through ``to_dict()`` / :func:`get_sparsifier`,
so the estimator's file format, the experiment methods and the TOML choices all read it; a new
sparsifier is one class and one registry entry.
"""

import numpy as np

from ._validation import check_scalar

__all__ = ["Sparsifier", "Threshold", "TopFraction", "Dense", "SPARSIFIERS", "get_sparsifier",
           "check_sparsifier_output"]


class Sparsifier:
    """Base class: subclasses implement ``__call__(W) -> W`` without modifying W in place.

    Subclasses set ``kind`` (their key in :data:`SPARSIFIERS`) and ``params`` (the names of their
    constructor arguments, stored as attributes of the same names).
    """

    kind = None
    params = ()

    def to_dict(self):
        """Plain-dict spec ``{"kind": ..., <param>: value}``, read back by :func:`get_sparsifier`."""
        return {"kind": self.kind, **{name: float(getattr(self, name)) for name in self.params}}

    def __call__(self, W):  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class Threshold(Sparsifier):
    """Zero every entry with ``|w| <= t`` (the report's ``thresh_train``).

    Parameters
    ----------
    t : float
        Threshold, ``t >= 0``; ``t = 0`` removes exact zeros only.
    """

    kind = "threshold"
    params = ("t",)

    def __init__(self, t):
        self.t = check_scalar(t, "t", low=0.0, owner="Threshold")

    def __call__(self, W):
        W = np.asarray(W)
        return np.where(np.abs(W) > self.t, W, 0.0).astype(W.dtype, copy=False)


class TopFraction(Sparsifier):
    """Keep the ``round(p·d·k)`` largest-magnitude entries of each d×k matrix, zero the rest.

    Parameters
    ----------
    p : float
        Fraction of entries kept, in (0, 1] (the report's ``p_train``). At least one entry is kept.

    Notes
    -----
    Selection uses ``np.argpartition`` on ``|W|`` (O(dk)); among entries tied at the cut-off
    magnitude an arbitrary subset is kept, so exactly ``round(p·d·k)`` entries survive.
    """

    kind = "top_fraction"
    params = ("p",)

    def __init__(self, p):
        self.p = check_scalar(p, "p", low=0.0, high=1.0, closed="right", owner="TopFraction")

    def n_keep(self, size):
        """Number of entries kept out of ``size``: ``max(1, round(p·size))``."""
        return max(1, int(round(self.p * size)))

    def __call__(self, W):
        W = np.asarray(W)
        if W.ndim < 2:
            raise ValueError(f"TopFraction needs weights of shape (..., n_features, n_hidden). Got shape {W.shape}.")
        d, k = W.shape[-2:]
        size = d * k
        keep = self.n_keep(size)
        if keep >= size:
            return W.copy()
        flat = W.reshape(-1, size)
        # Indices of the size-keep smallest magnitudes per model are zeroed.
        drop = np.argpartition(np.abs(flat), size - keep, axis=1)[:, : size - keep]
        out = flat.copy()
        np.put_along_axis(out, drop, 0.0, axis=1)
        return out.reshape(W.shape)


class Dense(Sparsifier):
    """No sparsification (dense training); returns a copy."""

    kind = "dense"

    def __call__(self, W):
        return np.array(W, copy=True)


SPARSIFIERS = {cls.kind: cls for cls in (Threshold, TopFraction, Dense)}


def get_sparsifier(spec):
    """Resolve a sparsifier from an instance, None (dense), a dict or a callable.

    Parameters
    ----------
    spec : Sparsifier, None, dict or callable
        A dict has ``"kind"`` in :data:`SPARSIFIERS` and that class's parameters, e.g.
        ``{"kind": "threshold", "t": 0.1}`` (what ``Sparsifier.to_dict`` writes). A callable
        ``W -> W`` is returned as given (its output is checked where it is used, see
        :func:`check_sparsifier_output`).

    Returns
    -------
    sparsifier : Sparsifier or callable
    """
    if spec is None:
        return Dense()
    if isinstance(spec, Sparsifier):
        return spec
    if isinstance(spec, dict):
        kind = spec.get("kind")
        if kind not in SPARSIFIERS:
            raise ValueError(
                f"The 'kind' of a sparsifier must be one of {sorted(SPARSIFIERS)}. Got {kind!r} instead."
            )
        cls = SPARSIFIERS[kind]
        missing = [name for name in cls.params if name not in spec]
        if missing:
            raise ValueError(f"A '{kind}' sparsifier needs the parameter '{missing[0]}'. Got {spec!r} instead.")
        return cls(*(spec[name] for name in cls.params))
    if callable(spec):
        return spec
    raise ValueError(
        "The 'sparsifier' parameter must be a Sparsifier (Threshold, TopFraction, Dense), None, "
        f"a dict or a callable W -> W. Got {spec!r} instead."
    )


def check_sparsifier_output(sparsifier, W, *, model=None):
    """Apply ``sparsifier`` to ``W`` and refuse an output that is not a finite array of W's shape.

    A user callable returning a slice (``lambda W: W[:1]``) would otherwise be broadcast back into
    W, and one returning NaN would silently give NaN weights.

    Parameters
    ----------
    sparsifier : callable
        ``W -> W``.
    W : ndarray of shape (..., n_features, n_hidden)
    model : int or None, default=None
        Index of the model in a batch, named in the error.

    Returns
    -------
    W_sparse : ndarray of W's shape

    Raises
    ------
    ValueError
        The output's shape differs from W's, or it holds NaN or infinite values.
    """
    out = np.asarray(sparsifier(W))
    where = "" if model is None else f" (model {model})"
    if out.shape != W.shape:
        raise ValueError(f"The sparsifier {sparsifier!r} must return an array of the weights' shape {W.shape}. "
                         f"Got shape {out.shape} instead{where}.")
    if out.dtype.kind not in "biuf" or not np.isfinite(out).all():
        raise ValueError(f"The sparsifier {sparsifier!r} must return finite numbers. Got "
                         f"{'a ' + str(out.dtype) + ' array' if out.dtype.kind not in 'biuf' else 'NaN or inf'}"
                         f" instead{where}.")
    return out
