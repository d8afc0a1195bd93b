import numpy as np
import pytest
from scipy.optimize import least_squares

from sparsenet.activations import ACTIVATIONS
from sparsenet.data import make_planted
from sparsenet.metrics import recovery_error
from sparsenet.solvers import HTP, NIHT, SOLVERS, GraSP, NetLeastSquares, SGDIHT, get_solver
from sparsenet.sparsify import Dense, Threshold, TopFraction
from sparsenet.train import train_iht


def _datafit(rng, n=40, d=4, k=3, activation="tanh", **terms):
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    return NetLeastSquares(X, y, k, activation, **terms)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("terms", [{}, {"hidden_bias": True, "skip": True, "intercept": True}])
def test_gradient_and_jacobian_match_finite_differences(name, terms, rng):
    df = _datafit(rng, activation=name, **terms)
    theta = rng.standard_normal(df.size) * 0.7
    f, g = df.value_grad(theta)
    J = df.jacobian(theta, np.arange(df.size))
    h = 1e-6
    fd_g, fd_J = np.empty(df.size), np.empty((df.n, df.size))
    for i in range(df.size):
        e = np.zeros(df.size)
        e[i] = h
        fd_g[i] = (df.value(theta + e) - df.value(theta - e)) / (2 * h)
        fd_J[:, i] = (df.residual(theta + e) - df.residual(theta - e)) / (2 * h)
    np.testing.assert_allclose(g, fd_g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(J, fd_J, rtol=1e-5, atol=1e-6)
    direction = rng.standard_normal(df.size)
    np.testing.assert_allclose(df.jvp(theta, direction), J @ direction, rtol=1e-10, atol=1e-10)
    assert f == pytest.approx(np.mean(df.residual(theta) ** 2), rel=1e-12)
    sub = np.array([0, df.size - 1, 2])
    np.testing.assert_array_equal(df.jacobian(theta, sub), J[:, sub])


def test_pack_unpack_round_trip(rng):
    df = _datafit(rng, hidden_bias=True, skip=True, intercept=True)
    params = {"W": rng.standard_normal((4, 3)), "v": rng.standard_normal(3), "b": rng.standard_normal(3),
              "u": rng.standard_normal(4), "c": 1.5}
    back = df.unpack(df.pack(params))
    for key, val in params.items():
        np.testing.assert_array_equal(back[key], val)
    assert df.size == 12 + 3 + 3 + 4 + 1


def test_niht_first_step_is_the_normalized_formula(rng):
    df = _datafit(rng, n=60, d=5, k=2, activation="relu2")
    W = rng.standard_normal((5, 2))
    v = np.array([1.0, -1.0])
    sp = Threshold(0.3)
    res = NIHT(max_iter=1).solve(df, sp, {"W": W, "v": v})
    theta = df.pack({"W": sp(W), "v": v})
    f, g = df.value_grad(theta)
    g[df.indices("v")] = 0.0  # v is not trained
    gS = np.where(theta != 0, g, 0.0)
    Jg = df.jacobian(theta, np.arange(df.size)) @ gS
    mu = df.n * (gS @ gS) / (2 * Jg @ Jg)
    expected = sp((theta - mu * g)[df.indices("W")].reshape(5, 2))
    assert df.value(df.pack({"W": expected, "v": v})) <= f  # the formula's step is accepted without halving
    np.testing.assert_allclose(res.W, expected, rtol=1e-12, atol=1e-14)
    assert res.n_iter == 1 and len(res.history["loss"]) == 2 and res.stop_reason == "max_iter"


@pytest.mark.parametrize("fit", ["gauss_newton", "lbfgs"])
def test_htp_fit_is_the_least_squares_optimum_on_its_support(fit, rng):
    p = make_planted(300, 6, 2, thresh_gt=0.2, noise_sd=0.3, random_state=1)
    df = NetLeastSquares(p.X, p.y, 2, "relu2")
    W0 = p.W + 0.05 * rng.standard_normal(p.W.shape)
    res = HTP(fit=fit, fit_max_iter=500).solve(df, Threshold(0.1), {"W": W0, "v": p.v})
    support = np.flatnonzero(res.W.ravel() != 0)
    # independent oracle: scipy's MINPACK Levenberg–Marquardt on the same support from the same point
    theta = df.pack({"W": res.W, "v": res.v})

    def resid(x):
        t = theta.copy()
        t[support] = x
        return df.residual(t)

    ref = least_squares(resid, theta[support] + 1e-3, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert res.loss <= np.mean(ref.fun ** 2) * (1 + 1e-6)
    g = df.value_grad(theta)[1][support]
    assert np.linalg.norm(g) < 1e-5 * max(res.loss, 1.0), np.linalg.norm(g)
    assert res.stop_reason in ("support_stable", "loss_plateau", "zero_loss")


@pytest.mark.parametrize("name", ["niht", "htp", "grasp"])
def test_full_batch_solvers_recover_near_truth(name):
    p = make_planted(1500, 8, 3, thresh_gt=0.15, random_state=3)
    df = NetLeastSquares(p.X, p.y, 3, "relu2")
    W0 = p.W + 0.03 * np.random.default_rng(0).standard_normal(p.W.shape)  # start near the truth
    res = get_solver(name).solve(df, Threshold(0.075), {"W": W0, "v": p.v})
    err = np.linalg.norm(res.W - p.W) / np.linalg.norm(p.W)
    assert err < 1e-4, f"{name}: relative error {err:.3g}, stop {res.stop_reason} after {res.n_iter}"
    assert np.array_equal(res.W != 0, p.W != 0)
    assert np.all(np.diff(res.history["loss"]) <= 1e-12)  # the loss never increases between iterations
    assert len(res.history["loss"]) == res.n_iter + 1


def test_grasp_finds_support_missed_by_the_start():
    p = make_planted(1500, 8, 3, thresh_gt=0.15, random_state=3)
    df = NetLeastSquares(p.X, p.y, 3, "relu2")
    W0 = p.W.copy()
    i, j = np.argwhere(p.W != 0)[0]
    W0[i, j] = 0.0  # a true entry outside the starting support
    res = GraSP().solve(df, TopFraction(np.count_nonzero(p.W) / p.W.size), {"W": W0, "v": p.v})
    assert recovery_error(res.W, res.v, p.W, p.v, activation="relu2") < 1e-8  # hidden units may swap


def test_train_v_fits_v_and_fixed_v_stays(rng):
    p = make_planted(400, 5, 2, thresh_gt=0.15, random_state=2)
    df = NetLeastSquares(p.X, p.y, 2, "relu2")
    v0 = p.v * 1.3
    held = HTP().solve(df, Dense(), {"W": p.W, "v": v0})
    np.testing.assert_array_equal(held.v, v0)
    trained = HTP().solve(df, Dense(), {"W": p.W, "v": v0}, train=("W", "v"))
    assert not np.array_equal(trained.v, v0) and trained.loss < 1e-12


def test_sgd_iht_solver_is_train_iht(tiny_problem):
    p = tiny_problem
    df = NetLeastSquares(p.X, p.y, 3, "relu2")
    res = SGDIHT(epochs=3, random_state=4).solve(df, Threshold(0.1), {"W": p.W + 0.1, "v": p.v})
    ref = train_iht(p.X, p.y, p.W + 0.1, p.v, sparsifier=Threshold(0.1), epochs=3, random_state=4)
    np.testing.assert_array_equal(res.W, ref.W)
    assert res.n_iter == 3 and res.stop_reason == "max_iter"


def test_solver_registry_and_bad_input(rng):
    assert set(SOLVERS) == {"sgd_iht", "niht", "htp", "grasp"}
    df = _datafit(rng)
    start = {"W": np.ones((4, 3)), "v": np.ones(3)}
    with pytest.raises(ValueError, match=r"'solver' parameter must be one of \['grasp', 'htp', 'niht', 'sgd_iht'\]"):
        get_solver("lbfgs")
    with pytest.raises(ValueError, match="'fit' parameter of HTP must be 'gauss_newton' or 'lbfgs'. Got 'cg'"):
        HTP(fit="cg").solve(df, None, start)
    with pytest.raises(ValueError, match=r"'max_iter' parameter of NIHT must be an int in the range \[0, inf\)"):
        NIHT(max_iter=-1).solve(df, None, start)
    with pytest.raises(ValueError, match="'train' parameter of GraSP must contain 'W' and only blocks"):
        GraSP().solve(df, None, start, train=("W", "b"))
    with pytest.raises(ValueError, match="SGDIHT trains the plain network only"):
        SGDIHT().solve(_datafit(rng, skip=True), None, start)
    with pytest.raises(ValueError, match="must return an array of the weights' shape"):
        HTP().solve(df, lambda W: W[:1], start)


def _one_at_a_time(df, W0, V, max_iter, tol):
    from sparsenet.solvers import _levenberg_marquardt

    out = []
    for v in V:
        theta = _levenberg_marquardt(df, df.pack({"W": W0, "v": v}), df.indices("W"), max_iter, tol=tol)
        out.append((df.unpack(theta)["W"].copy(), df.value(theta)))
    return np.array([W for W, _ in out]), np.array([f for _, f in out])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n, d, k, activation", [(300, 8, 3, "relu2"), (200, 6, 4, "tanh"), (250, 7, 3, "relu")])
@pytest.mark.parametrize("scaled", [False, True])
def test_batched_levenberg_marquardt_equals_one_at_a_time(seed, n, d, k, activation, scaled):
    """The batched fit of many output vectors is the one-at-a-time fit of each, up to rounding."""
    import itertools

    from sparsenet.solvers import _levenberg_marquardt_many

    p = make_planted(n, d, k, thresh_gt=0.15, activation=activation, random_state=seed)
    rng = np.random.default_rng(seed)
    W0 = p.W + 0.3 * rng.standard_normal(p.W.shape)  # a start near the planted W, as tensor_init's
    V = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
    if scaled:  # not all |v| = 1: the shared first iteration does not apply
        V = V * rng.uniform(0.5, 2.0, size=V.shape)
    W_ref, f_ref = _one_at_a_time(p_df := NetLeastSquares(p.X, p.y, k, activation), W0, V, 5, 1e-6)
    W, f = _levenberg_marquardt_many(p_df, W0, V, 5, tol=1e-6)
    scale = np.mean(p.y ** 2)
    np.testing.assert_allclose(f / scale, f_ref / scale, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-7 * np.abs(W_ref).max())
    assert np.argmin(f) == np.argmin(f_ref)
    # Chunks (of candidates and of rows) change no result beyond rounding; reruns are bit-identical.
    W_small, f_small = _levenberg_marquardt_many(p_df, W0, V, 5, tol=1e-6, max_bytes=2 ** 14)
    np.testing.assert_allclose(W_small, W, rtol=0, atol=1e-9 * np.abs(W).max())
    W_again, f_again = _levenberg_marquardt_many(p_df, W0, V, 5, tol=1e-6)
    np.testing.assert_array_equal(W_again, W)
    np.testing.assert_array_equal(f_again, f)


def test_batched_levenberg_marquardt_handles_a_singular_system():
    """A zero column of X makes JᵀJ singular without damping; the step still exists (λ > 0)."""
    from sparsenet.solvers import _levenberg_marquardt_many

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    X[:, 2] = 0.0
    y = rng.standard_normal(60)
    df = NetLeastSquares(X, y, 2, "relu2")
    W0 = rng.standard_normal((4, 2))
    V = np.array([[1.0, -1.0], [1.0, 1.0]])
    W, f = _levenberg_marquardt_many(df, W0, V, 4, tol=1e-6)
    W_ref, f_ref = _one_at_a_time(df, W0, V, 4, 1e-6)
    np.testing.assert_allclose(f, f_ref, rtol=1e-8)
    np.testing.assert_allclose(W, W_ref, atol=1e-8)
    np.testing.assert_array_equal(W[:, 2], W0[2].reshape(1, -1).repeat(2, 0))  # no gradient: row 2 unchanged


def test_forward_memo_follows_theta_changed_in_place(rng):
    """The datafit remembers its forward pass at the last θ: a θ changed in place (as scipy's L-BFGS-B
    callback does) or a new θ is recomputed, never served from the memo."""
    df = _datafit(rng, hidden_bias=True, skip=True, intercept=True)
    theta = rng.standard_normal(df.size)
    free = np.arange(df.size)
    for _ in range(3):
        f, g = df.value_grad(theta)
        J, Jv, r = df.jacobian(theta, free), df.jvp(theta, g), df.residual(theta)
        fresh = NetLeastSquares(df.X, df.y, df.k, df.act, hidden_bias=True, skip=True, intercept=True)
        f0, g0 = fresh.value_grad(theta)
        assert f == f0
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(J, fresh.jacobian(theta, free))
        np.testing.assert_array_equal(Jv, fresh.jvp(theta, g))
        np.testing.assert_array_equal(r, fresh.residual(theta))
        theta[::2] += 0.1  # in place: same object, new point


def test_solve_damped_matches_a_direct_solve_and_flags_singular_systems():
    """(H_c + λ_c diag(d_c)) x = b for the selected candidates: Cholesky when positive definite, LU otherwise
    (indefinite), ok = False only for a singular matrix; numpy's solve as the oracle."""
    from sparsenet.solvers import _solve_damped

    rng = np.random.default_rng(0)
    m, a = 6, 5
    G = rng.standard_normal((a, m, m))
    H = np.stack([G[0] @ G[0].T, G[1] + G[1].T, G[2] @ G[2].T, np.zeros((m, m)), G[4] + G[4].T])
    diag = np.abs(rng.standard_normal((a, m))) + 0.1
    diag[3, 0] = 0.0  # candidate 3: zero matrix, damped except in its first coordinate -> singular
    lam = np.array([1e-3, 1e-6, 10.0, 1.0, 1e-2])
    sel = np.array([0, 1, 3, 4])
    b = rng.standard_normal((len(sel), m))
    x, ok = _solve_damped(H, diag, lam, sel, b)
    np.testing.assert_array_equal(ok, [True, True, False, True])
    for t in np.flatnonzero(ok):
        c = sel[t]
        A = H[c] + lam[c] * np.diag(diag[c])
        np.testing.assert_allclose(A @ x[t], b[t], atol=1e-9 * np.abs(b[t]).max() * np.linalg.cond(A))
        np.testing.assert_allclose(x[t], np.linalg.solve(A, b[t]), rtol=1e-8)
    assert np.linalg.eigvalsh(H[1] + lam[1] * np.diag(diag[1])).min() < 0  # the LU path was taken
