"""Hermite-moment contractions: brute-force d^j tensors, the population identity, control variates."""

from math import sqrt

import numpy as np
import pytest

from sparsenet.activations import ACTIVATIONS
from sparsenet.moments import control_variate_targets, hermite_contract, partial_matchings, symmetrize

LET = "abcd"


def _hermite_tensor(x, j):
    """Explicit He_j(x) ∈ R^{d^j} (test oracle only)."""
    d = len(x)
    T = np.zeros((d,) * j)
    I = np.eye(d)
    for P in partial_matchings(j):
        paired = {m for pair in P for m in pair}
        ops, subs = [], []
        for m in range(j):
            if m not in paired:
                ops.append(x)
                subs.append(LET[m])
        for p, q in P:
            ops.append(I)
            subs.append(LET[p] + LET[q])
        T += (-1) ** len(P) * np.einsum(",".join(subs) + "->" + LET[:j], *ops)
    return T


def _brute_moment(X, y, j):
    return sum(yi * _hermite_tensor(xi, j) for xi, yi in zip(X, y)) / len(y)


def _contract_explicit(T, mats):
    out = T
    for m, A in enumerate(mats):
        A2 = np.eye(T.shape[0]) if A is None else (A[:, None] if A.ndim == 1 else A)
        out = np.moveaxis(np.tensordot(out, A2, axes=([m], [0])), -1, m)
    squeeze = tuple(m for m, A in enumerate(mats) if A is not None and A.ndim == 1)
    return out.squeeze(axis=squeeze) if squeeze else out


def test_matching_counts():
    assert [len(partial_matchings(j)) for j in range(6)] == [1, 1, 2, 4, 10, 26]


@pytest.mark.parametrize("j", [1, 2, 3, 4])
def test_hermite_contract_matches_brute_force(j):
    rng = np.random.default_rng(j)
    n, d = 60, 4
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    M = _brute_moment(X, y, j)
    V = rng.standard_normal((d, 2))
    W = rng.standard_normal((d, 3))
    layouts = [
        [None] * j,
        [V] * j,
        [rng.standard_normal((d, r)) if r else rng.standard_normal(d) for r in (3, 0, 2, 1)[:j]],
        [rng.standard_normal(d) for _ in range(j)],
        [V] + [None] * (j - 1),
        [V, W, V, None][:j],  # a matrix in non-adjacent modes: its products and Gram matrices are shared
    ]
    for mats in layouts:
        want = _contract_explicit(M, mats)
        got = hermite_contract(X, y, mats)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * max(1.0, np.abs(want).max()))
        np.testing.assert_allclose(hermite_contract(X, y, mats, chunk_size=7), got, rtol=0, atol=1e-13)


def test_mode_order_is_kept():
    # For j = 3 the matching {(1, 3)} contributes E[y (A_2ᵀx)_b] (A_1ᵀA_3)_{ac}: axes in mode order.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 4))
    y = rng.standard_normal(40)
    mats = [rng.standard_normal((4, r)) for r in (2, 3, 5)]
    got = hermite_contract(X, y, mats)
    assert got.shape == (2, 3, 5)
    np.testing.assert_allclose(got, _contract_explicit(_brute_moment(X, y, 3), mats), atol=1e-13)


def _planted(n, d, k, act, rng):
    W = rng.standard_normal((d, k)) * 0.7
    v = np.array([1.0, -1.0, 1.0][:k])
    X = rng.standard_normal((n, d))
    return X, act(X @ W) @ v, W, v


@pytest.mark.parametrize("name", ["relu2", "relu", "tanh"])
def test_population_identity_monte_carlo(name):
    """M̂_j(V, …) → Σ_i v_i m_j(σ_i) (Vᵀw̄_i)^{⊗j}, within 5 batch standard errors."""
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(1)
    n, d, k, batches = 400_000, 4, 3, 20
    X, y, W, v = _planted(n, d, k, act, rng)
    sig = np.linalg.norm(W, axis=0)
    Wbar = W / sig
    m = act.hermite(sig)  # (k, 5)
    A = rng.standard_normal((d, 2))
    for j in (1, 2, 3, 4):
        mats = [A] * j
        Uproj = A.T @ Wbar
        letters = LET[:j]
        pop = np.einsum(",".join(["i"] + [c + "i" for c in letters]) + "->" + letters, v * m[:, j], *([Uproj] * j))
        parts = np.array([hermite_contract(Xb, yb, mats)
                          for Xb, yb in zip(np.split(X, batches), np.split(y, batches))])
        est = parts.mean(axis=0)
        se = parts.std(axis=0, ddof=1) / sqrt(batches)
        assert np.all(np.abs(est - pop) <= 5 * se + 1e-12), (name, j, np.max(np.abs(est - pop) / se))


def test_control_variate_same_mean_lower_variance():
    act = ACTIVATIONS["relu2"]
    rng = np.random.default_rng(2)
    n, d, k, batches = 200_000, 5, 3, 20
    X, y, W, v = _planted(n, d, k, act, rng)
    V = np.linalg.qr(W)[0]
    sig = np.linalg.norm(W, axis=0)
    U = V.T @ (W / sig)
    m = act.hermite(sig)
    for j, which in ((2, 0), (3, 1)):
        pop = np.einsum(",".join(["i"] + ["abc"[t] + "i" for t in range(j)]) + "->" + "abc"[:j],
                        v * m[:, j], *([U] * j))
        raw, cv = [], []
        for Xb, yb in zip(np.split(X, batches), np.split(y, batches)):
            raw.append(hermite_contract(Xb, yb, [V] * j))
            cv.append(hermite_contract(Xb, control_variate_targets(Xb, yb, V)[which], [V] * j))
        raw, cv = np.array(raw), np.array(cv)
        se_cv = cv.std(axis=0, ddof=1) / sqrt(batches)
        assert np.all(np.abs(cv.mean(axis=0) - pop) <= 5 * se_cv + 1e-12)
        # The control variate halves the spread or better (measured ratio 0.51 for j = 2 here).
        ratio = np.linalg.norm(cv.std(axis=0)) / np.linalg.norm(raw.std(axis=0))
        assert ratio < 0.7, (j, ratio)


def test_control_variate_targets_shapes():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 4))
    y = rng.standard_normal(100)
    y1, y2 = control_variate_targets(X, y)
    assert y1.shape == (100,) and y2 is None
    # y1 is y minus its projection on (1, x) up to the sample covariance: nearly uncorrelated with x.
    assert abs(y1.mean()) < 1e-12 + abs(X.mean(axis=0) @ (X.T @ y / 100))
    _, y2 = control_variate_targets(X, y, np.linalg.qr(rng.standard_normal((4, 2)))[0])
    assert y2.shape == (100,)


def test_symmetrize():
    rng = np.random.default_rng(4)
    T = rng.standard_normal((3, 3, 3))
    S = symmetrize(T)
    for p in [(1, 0, 2), (2, 1, 0), (1, 2, 0)]:
        np.testing.assert_allclose(S, S.transpose(p), atol=1e-15)
    np.testing.assert_allclose(symmetrize(S), S, atol=1e-15)


def test_chunking_bounds_memory_and_matches():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((5003, 6))
    y = rng.standard_normal(5003)
    V = rng.standard_normal((6, 4))
    full = hermite_contract(X, y, [V, V, V, V], chunk_size=10**6)
    for chunk in (1, 333, 5003):
        np.testing.assert_allclose(hermite_contract(X, y, [V, V, V, V], chunk_size=chunk), full,
                                   rtol=1e-12, atol=1e-12)


def test_symmetric_blas_paths_match_einsum():
    # d >= 64: P2-type products go through syrk (triangle over chunks); three equal modes through
    # the pairs a <= b gemm. Both must equal the plain row-wise products.
    rng = np.random.default_rng(3)
    n, d = 700, 70
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    alpha = rng.standard_normal(d)
    ref2 = np.einsum("n,na,nb->ab", y, X, X) / n - y.mean() * np.eye(d)
    np.testing.assert_allclose(hermite_contract(X, y, [None, None], chunk_size=128), ref2, atol=1e-12)
    full = hermite_contract(X, y, [None, None, alpha])
    V = np.linalg.qr(rng.standard_normal((d, 4)))[0]
    np.testing.assert_allclose(V.T @ full @ V, hermite_contract(X, y, [V, V, alpha]), atol=1e-12)
    Z = X @ V
    ref_z = np.einsum("n,na,nb,nc->abc", y, Z, Z, Z) / n
    ref_z -= sum(np.einsum("a,bc->abc", Z.T @ y / n, V.T @ V).transpose(p) for p in [(0, 1, 2), (1, 0, 2), (1, 2, 0)])
    np.testing.assert_allclose(hermite_contract(X, y, [V, V, V]), ref_z, atol=1e-12)
    np.testing.assert_allclose(hermite_contract(X, y, [V, V, V], projections=[Z, None, None]), ref_z, atol=1e-12)
