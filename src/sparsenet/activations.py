"""Activation functions: value, derivative and Hermite constants m_j(σ).

m_j(σ) = E_{z~N(0,1)}[φ(σ z) He_j(z)], j = 0..4, with the probabilists' Hermite polynomials
He_0 = 1, He_1 = z, He_2 = z² − 1, He_3 = z³ − 3z, He_4 = z⁴ − 6z² + 3. They are the
coefficients that tie the data moments to the weights (Stein's identity, TENSOR_INIT.md §2):
M_j = Σ_i v_i m_j(‖w_i‖) w̄_i^{⊗j}.
"""

from dataclasses import dataclass, field
from math import gamma, pi, sqrt
from typing import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "HERMITE_COEFS", "N_HERMITE"]

N_HERMITE = 5  # j = 0..4
# HERMITE_COEFS[j, t] = coefficient of z^t in He_j(z)
HERMITE_COEFS = np.array(
    [
        [1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [-1, 0, 1, 0, 0],
        [0, -3, 0, 1, 0],
        [3, 0, -6, 0, 1],
    ],
    dtype=float,
)

# Gauss–Hermite (probabilists') rule: accurate for smooth φ only (TENSOR_INIT.md §3).
_GH_NODES, _GH_WEIGHTS = hermegauss(160)
_GH_WEIGHTS = _GH_WEIGHTS / sqrt(2 * pi)
# Composite trapezoid on a grid with z = 0 as a node: handles a kink at 0 (user callables).
_TZ = np.linspace(-12.0, 12.0, 24001)
_TW = np.exp(-_TZ**2 / 2) / sqrt(2 * pi) * (_TZ[1] - _TZ[0])
_TW[[0, -1]] *= 0.5
_GH_MAX_SIGMA = 3.0


def _hermite_table(z):
    """He_j(z) for j = 0..4 stacked on a new last axis."""
    powers = np.stack([z**t for t in range(N_HERMITE)], axis=-1)
    return powers @ HERMITE_COEFS.T


def _relu_power_moments(q):
    """m_j(1) for φ = max(z, 0)^q in closed form: E[z^t max(z,0)^q] = 2^{(t+q)/2−1} Γ((t+q+1)/2)/√π."""
    g = np.array([2 ** ((t + q) / 2 - 1) * gamma((t + q + 1) / 2) / sqrt(pi) for t in range(N_HERMITE)])
    return HERMITE_COEFS @ g


@dataclass(frozen=True)
class Activation:
    """An activation function with what the algorithms need to know about it.

    Parameters
    ----------
    name : str
        Name used in configs, reports and saved models.
    function : callable
        Elementwise φ(z) on ndarrays.
    derivative : callable
        Elementwise φ'(z); at a kink, the left derivative.
    degree : float or None, default=None
        q if φ is positively homogeneous, φ(tz) = t^q φ(z) for t > 0 (ReLU: 1, squared ReLU: 2).
    parity : {"odd", "odd+const", "even", None}, default=None
        Symmetry of φ: for an odd φ, (v, w) and (−v, −w) are the same network; "odd+const"
        (φ(−z) = c − φ(z), e.g. sigmoid) is odd up to a constant, so the flip changes y only by
        a constant and the data identify v_i·w_i but not the sign of each v_i on its own.
    hermite_unit : ndarray of shape (5,) or None
        m_j(1) in closed form for a homogeneous φ (then m_j(σ) = σ^q m_j(1)).
    smooth : bool, default=True
        Whether Gauss–Hermite quadrature is accurate for φ (False for kinks).

    Notes
    -----
    ``hermite(sigma)`` returns m_j(σ) = E_{z~N(0,1)}[φ(σz) He_j(z)], j = 0..4.
    """

    name: str
    function: Callable = field(repr=False)
    derivative: Callable = field(repr=False)
    degree: float | None = None
    parity: str | None = None
    hermite_unit: np.ndarray | None = field(default=None, repr=False, compare=False)
    smooth: bool = True

    def __call__(self, z):
        return self.function(z)

    @property
    def is_homogeneous(self):
        """True when φ(tz) = t^q φ(z) for all t > 0."""
        return self.degree is not None

    def hermite(self, sigma=1.0):
        """Hermite constants m_j(σ), j = 0..4.

        Parameters
        ----------
        sigma : float or ndarray of shape (m,)
            Scales σ > 0 (the norms of hidden weight vectors).

        Returns
        -------
        m : ndarray of shape (5,) or (m, 5)
            ``m[..., j] = E[φ(σ z) He_j(z)]``: closed form for homogeneous φ, 160-point
            Gauss–Hermite for smooth φ, a fine composite trapezoid rule (kink-safe at 0) otherwise.
        """
        sigma = np.asarray(sigma, dtype=float)
        if self.hermite_unit is not None and self.degree is not None:
            return sigma[..., None] ** self.degree * self.hermite_unit
        flat = sigma.reshape(-1)
        out = np.empty((flat.size, N_HERMITE))
        # Gauss–Hermite resolves φ(σz) only while it is smooth on the scale of its nodes: a kink,
        # or a steep tanh/sigmoid at large σ, needs the fine trapezoid rule instead.
        gh = np.full(flat.size, self.smooth) & (flat <= _GH_MAX_SIGMA)
        for sel, nodes, weights in ((gh, _GH_NODES, _GH_WEIGHTS), (~gh, _TZ, _TW)):
            if sel.any():
                values = np.asarray(self.function(flat[sel, None] * nodes), dtype=float)
                out[sel] = (values * weights) @ _hermite_table(nodes)
        return out.reshape(sigma.shape + (N_HERMITE,))


def _relu(z):
    return np.maximum(z, 0.0)


def _step(z):
    return (z > 0).astype(np.result_type(z, np.float32))


def _relu2(z):
    r = np.maximum(z, 0.0)
    return r * r


def _relu2_grad(z):
    return 2.0 * np.maximum(z, 0.0)


def _sigmoid(z):
    # 1/2 + tanh(z/2)/2 is stable for large |z| (no overflow in exp).
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _sigmoid_grad(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _tanh_grad(z):
    t = np.tanh(z)
    return 1.0 - t * t


def _softplus(z):
    return np.logaddexp(0.0, z)


def leaky_relu(alpha=0.01):
    """Leaky ReLU φ(z) = max(z, αz), 0 ≤ α < 1, as an :class:`Activation` (homogeneous, degree 1).

    Parameters
    ----------
    alpha : float, default=0.01
        Slope for z < 0.

    Returns
    -------
    activation : Activation
    """
    if not 0 <= alpha < 1:
        raise ValueError(f"The 'alpha' parameter of leaky_relu must be a float in the range [0, 1). Got {alpha!r} instead.")
    unit = (1 - alpha) * _relu_power_moments(1)
    unit[1] += alpha  # m_1 of αz is α
    return Activation(
        name="leaky_relu" if alpha == 0.01 else f"leaky_relu({alpha:g})",
        function=lambda z: np.where(z > 0, z, alpha * z),
        derivative=lambda z: np.where(z > 0, 1.0, alpha),
        degree=1.0,
        hermite_unit=unit,
        smooth=False,
    )


ACTIVATIONS = {
    "relu2": Activation("relu2", _relu2, _relu2_grad, degree=2.0, hermite_unit=_relu_power_moments(2), smooth=False),
    "relu": Activation("relu", _relu, _step, degree=1.0, hermite_unit=_relu_power_moments(1), smooth=False),
    "leaky_relu": leaky_relu(0.01),
    "tanh": Activation("tanh", np.tanh, _tanh_grad, parity="odd"),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_grad, parity="odd+const"),
    "softplus": Activation("softplus", _softplus, _sigmoid),
}


def _left_derivative(fn, h=1e-5):
    # Second-order one-sided (backward) difference: the left derivative at a kink.
    return lambda z: (3.0 * fn(z) - 4.0 * fn(z - h) + fn(z - 2.0 * h)) / (2.0 * h)


def get_activation(activation, *, derivative=None, degree=None, parity=None, smooth=False, name=None):
    """Resolve an activation given by name, as an :class:`Activation`, or as a callable.

    Parameters
    ----------
    activation : str, Activation or callable
        One of ``ACTIVATIONS`` ("relu2", "relu", "leaky_relu", "tanh", "sigmoid", "softplus"),
        an Activation (returned unchanged) or an elementwise numpy callable φ.
    derivative : callable or None, default=None
        φ' for a user callable; None uses a second-order backward difference (left derivative).
    degree : float or None, default=None
        Homogeneity degree of a user callable, if any.
    parity : {"odd", "odd+const", "even", None}, default=None
        Symmetry of a user callable.
    smooth : bool, default=False
        Declare a user callable smooth so Gauss–Hermite quadrature is used for m_j.
    name : str or None, default=None
        Name of a user callable (defaults to its ``__name__``).

    Returns
    -------
    activation : Activation

    Raises
    ------
    ValueError
        Unknown name, or an object that is neither a string nor callable.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"The 'activation' parameter must be one of {sorted(ACTIVATIONS)} or a callable. "
                f"Got {activation!r} instead."
            ) from None
    if callable(activation):
        if parity not in (None, "odd", "odd+const", "even"):
            raise ValueError(
                f"The 'parity' parameter must be 'odd', 'odd+const', 'even' or None. Got {parity!r} instead."
            )
        return Activation(
            name=name or getattr(activation, "__name__", "custom"),
            function=activation,
            derivative=derivative or _left_derivative(activation),
            degree=degree,
            parity=parity,
            smooth=smooth,
        )
    raise ValueError(
        f"The 'activation' parameter must be one of {sorted(ACTIVATIONS)} or a callable. "
        f"Got {activation!r} instead."
    )
