"""Sparsifiers: the hard-thresholding operators of IHT.

A sparsifier is a callable ``W -> W`` on arrays of shape (..., n_features, n_hidden); leading axes
are independent models (a batch), and each model is sparsified on its own d×k matrix.
"""

import numpy as np

from ._validation import check_scalar

__all__ = ["Sparsifier", "Threshold", "TopFraction", "Dense", "get_sparsifier"]


class Sparsifier:
    """Base class: subclasses implement ``__call__(W) -> W`` without modifying W in place."""

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

    def __call__(self, W):
        return np.array(W, copy=True)


def get_sparsifier(spec):
    """Resolve a sparsifier from an instance, None (dense) or a dict.

    Parameters
    ----------
    spec : Sparsifier, None or dict
        A dict has ``"kind"`` in {"threshold", "top_fraction", "dense"} and the parameter
        (``"t"`` or ``"p"``), e.g. ``{"kind": "threshold", "t": 0.1}``.

    Returns
    -------
    sparsifier : Sparsifier
    """
    if spec is None:
        return Dense()
    if isinstance(spec, Sparsifier):
        return spec
    if isinstance(spec, dict):
        kinds = {"threshold": (Threshold, "t"), "top_fraction": (TopFraction, "p"), "dense": (Dense, None)}
        kind = spec.get("kind")
        if kind not in kinds:
            raise ValueError(
                f"The 'kind' of a sparsifier must be one of {sorted(kinds)}. Got {kind!r} instead."
            )
        cls, arg = kinds[kind]
        if arg is None:
            return cls()
        if arg not in spec:
            raise ValueError(f"A '{kind}' sparsifier needs the parameter '{arg}'. Got {spec!r} instead.")
        return cls(spec[arg])
    if callable(spec):
        return spec
    raise ValueError(
        "The 'sparsifier' parameter must be a Sparsifier (Threshold, TopFraction, Dense), None, "
        f"a dict or a callable W -> W. Got {spec!r} instead."
    )
