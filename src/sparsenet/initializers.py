"""Data-free initialization: random Gaussian hidden weights and random output signs."""

import numpy as np

from ._validation import check_random_state, check_scalar

__all__ = ["random_init"]


def random_init(d, k, *, scale=None, random_state=None):
    """Draw W0 with i.i.d. N(0, scale²) entries and v0 uniform in {−1, +1}.

    Parameters
    ----------
    d : int
        Number of input features.
    k : int
        Number of hidden units.
    scale : float or None, default=None
        Standard deviation of the entries; None uses ``1/sqrt(d)`` so that each column has norm ≈ 1
        (the scale of the planted weights, whose singular values lie in [1, κ]).
    random_state : None, int or numpy.random.Generator, default=None

    Returns
    -------
    W0 : ndarray of shape (d, k)
    v0 : ndarray of shape (k,)
    """
    d = check_scalar(d, "d", kind="int", low=1, owner="random_init")
    k = check_scalar(k, "k", kind="int", low=1, owner="random_init")
    scale = 1.0 / np.sqrt(d) if scale is None else check_scalar(scale, "scale", low=0.0, closed="neither", owner="random_init")
    rng = check_random_state(random_state)
    W0 = scale * rng.standard_normal((d, k))
    v0 = rng.choice([-1.0, 1.0], size=k)
    return W0, v0
