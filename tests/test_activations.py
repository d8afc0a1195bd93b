"""Activations: Hermite constants m_j(σ) against independent integrals, derivatives against finite differences."""

from math import pi, sqrt

import numpy as np
import pytest
from scipy import integrate

from sparsenet.activations import ACTIVATIONS, HERMITE_COEFS, Activation, get_activation, leaky_relu

NAMES = sorted(ACTIVATIONS)


def _he(j, z):
    return np.polyval(HERMITE_COEFS[j][::-1], z)


def _quad_moment(fn, sigma, j):
    """m_j(σ) = ∫ φ(σz) He_j(z) N(z) dz by adaptive quadrature, split at the kink z = 0."""

    def f(z):
        return float(fn(np.array(sigma * z))) * _he(j, z) * np.exp(-z * z / 2) / sqrt(2 * pi)

    left = integrate.quad(f, -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    right = integrate.quad(f, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return left + right


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7])
def test_hermite_matches_quad(name, sigma):
    act = ACTIVATIONS[name]
    got = act.hermite(sigma)
    want = np.array([_quad_moment(act.function, sigma, j) for j in range(5)])
    # Closed forms agree to ~1e-12; 160-point Gauss–Hermite (smooth φ) to ~1e-9 at σ = 1.7.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 if act.is_homogeneous else 1e-8,
                               err_msg=f"{name} at sigma={sigma}")


@pytest.mark.parametrize("name", NAMES)
def test_hermite_matches_monte_carlo(name):
    rng = np.random.default_rng(0)
    act = ACTIVATIONS[name]
    sigma = 1.3
    z = rng.standard_normal(400_000)
    samples = act(sigma * z)[:, None] * np.stack([_he(j, z) for j in range(5)], axis=1)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0) / sqrt(len(z))
    got = act.hermite(sigma)
    assert np.all(np.abs(got - mean) <= 5 * se + 1e-12), (name, got, mean, se)


def test_table_values_section3():
    r = 1 / sqrt(2 * pi)
    table = {
        "relu": [0.5, r, 0.0, -r],
        "relu2": [2 * r, 1.0, 2 * r, 0.0],
        "tanh": [0.60571, 0.0, -0.36360, 0.0],
        "sigmoid": [0.20662, 0.0, -0.06240, 0.0],
        "softplus": [0.5, 0.20662, 0.0, -0.06240],
    }
    for name, want in table.items():
        got = ACTIVATIONS[name].hermite(1.0)[1:]
        np.testing.assert_allclose(got, want, atol=6e-6, err_msg=name)
    a = 0.2
    got = leaky_relu(a).hermite(1.0)[1:]
    np.testing.assert_allclose(got, [(1 + a) / 2, (1 - a) * r, 0.0, -(1 - a) * r], atol=1e-14)


@pytest.mark.parametrize("name", ["relu", "relu2", "leaky_relu"])
def test_homogeneous_scaling(name):
    act = ACTIVATIONS[name]
    sig = np.array([0.3, 1.0, 4.0])
    np.testing.assert_allclose(act.hermite(sig), sig[:, None] ** act.degree * act.hermite(1.0), rtol=1e-14)
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(act(2.5 * z), 2.5**act.degree * act(z), rtol=1e-14)


def test_sigmoid_is_half_tanh_at_half_scale():
    sig = np.array([0.4, 1.0, 2.0])
    m_sig = ACTIVATIONS["sigmoid"].hermite(sig)
    m_tanh = ACTIVATIONS["tanh"].hermite(sig / 2)
    np.testing.assert_allclose(m_sig[:, 1:], 0.5 * m_tanh[:, 1:], atol=1e-12)
    np.testing.assert_allclose(m_sig[:, 0], 0.5, atol=1e-12)


def _user_activations():
    return [
        get_activation(lambda z: np.abs(z) ** 1.5 * (z > 0) + np.sin(z), name="kinked"),
        get_activation(np.sin, smooth=True, name="sin", parity="odd"),
    ]


@pytest.mark.parametrize("act", list(ACTIVATIONS.values()) + _user_activations(), ids=lambda a: a.name)
def test_derivative_matches_finite_differences(act):
    # Points away from the kink at 0, where the central difference is exact to O(h²).
    z = np.concatenate([np.linspace(-4, -0.05, 40), np.linspace(0.05, 4, 40)])
    h = 1e-6
    fd = (act(z + h) - act(z - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(z), fd, rtol=1e-6, atol=1e-6)


def test_user_callable_left_derivative_at_kink():
    act = get_activation(lambda z: np.maximum(z, 0.0))
    assert abs(float(act.derivative(np.array(0.0)))) < 1e-8  # left derivative of ReLU at 0


@pytest.mark.parametrize("act", _user_activations(), ids=lambda a: a.name)
def test_user_callable_hermite_matches_quad(act):
    for sigma in (0.6, 1.4):
        want = np.array([_quad_moment(act.function, sigma, j) for j in range(5)])
        tol = 1e-9 if act.smooth else 1e-6  # trapezoid rule through a kink
        np.testing.assert_allclose(act.hermite(sigma), want, atol=tol)


def test_get_activation_errors():
    with pytest.raises(ValueError, match="The 'activation' parameter must be one of"):
        get_activation("swish")
    with pytest.raises(ValueError, match="The 'activation' parameter"):
        get_activation(3.0)
    with pytest.raises(ValueError, match=r"'alpha' parameter of leaky_relu .* \[0, 1\)\. Got 1\.5"):
        leaky_relu(1.5)
    act = ACTIVATIONS["relu"]
    assert get_activation(act) is act and isinstance(act, Activation)


def test_hermite_constants_accurate_at_large_sigma():
    # φ(σz) is nearly a step at σ = 20: Gauss–Hermite alone gets m_3 of softplus badly wrong.
    from scipy.integrate import quad

    from sparsenet.activations import ACTIVATIONS

    for name in ("softplus", "tanh", "sigmoid"):
        act = ACTIVATIONS[name]
        got = act.hermite(20.0)
        for j, he in enumerate([lambda z: 1.0, lambda z: z, lambda z: z * z - 1, lambda z: z**3 - 3 * z,
                                lambda z: z**4 - 6 * z * z + 3]):
            f = lambda z: act(20.0 * z) * he(z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
            want = quad(f, -np.inf, 0, limit=200)[0] + quad(f, 0, np.inf, limit=200)[0]
            assert abs(got[j] - want) < 1e-6 * max(1.0, abs(want)), (name, j, got[j], want)
