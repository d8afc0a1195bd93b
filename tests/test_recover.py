import numpy as np
import pytest

import sparsenet
from sparsenet.data import make_planted
from sparsenet.metrics import align, recovery_error
from sparsenet.recovery import recover, search_signs
from sparsenet.sparsify import Threshold
from sparsenet.tensor_init import tensor_init


@pytest.fixture(scope="module")
def population():
    """Population-size data (n = 20 000 for d = 8, k = 4): the loss ranks sign patterns reliably."""
    return make_planted(20000, 8, 4, thresh_gt=0.15, random_state=7)


@pytest.mark.parametrize("strategy", ["exhaustive", "greedy"])
def test_sign_search_finds_the_planted_signs(population, strategy):
    p = population
    W0, v0 = tensor_init(p.X, p.y, 4, random_state=0)
    v_bad = -v0  # start the greedy search from the wrong signs on purpose
    v, W, losses = search_signs(p.X, p.y, W0, v_bad, strategy=strategy)
    al = align(W, v, p.W, p.v, activation="relu2")
    assert al.sign_consistent  # the multiset of chosen signs is the planted one
    assert np.all(np.abs(v) == 1)
    assert min(losses.values()) == losses[tuple(v)]
    if strategy == "exhaustive":
        assert len(losses) == 2 ** 4
    else:
        assert len(losses) < 2 ** 4


def test_recover_exact_on_a_small_planted_problem():
    p = make_planted(400, 10, 3, thresh_gt=0.15, random_state=11)
    res = recover(p.X, p.y, 3, sparsifier=Threshold(0.075), random_state=0)
    err = recovery_error(res.W, res.v, p.W, p.v, activation="relu2")
    assert err < 1e-6, f"recovery error {err:.3g} (loss {res.loss:.3g}, {res.n_starts} starts)"
    assert res.solver == "grasp" and res.n_starts >= 1
    assert set(res.history) >= {"loss", "nnz", "n_iter", "stop_reason", "sign_losses", "start_losses"}
    assert len(res.history["start_losses"]) == res.n_starts


def test_recover_same_seed_bit_identical():
    p = make_planted(300, 8, 3, thresh_gt=0.15, noise_sd=0.1, random_state=5)
    a = recover(p.X, p.y, 3, sparsifier=Threshold(0.075), solver="htp", max_starts=2, random_state=3)
    b = recover(p.X, p.y, 3, sparsifier=Threshold(0.075), solver="htp", max_starts=2, random_state=3)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.v, b.v)
    assert a.n_starts == 2  # noisy data never reach restart_tol: a second start runs, the best is kept
    assert a.loss == min(a.history["start_losses"])


def test_start_cache_gives_the_results_of_separate_calls():
    """Solvers sharing one start cache (one problem, one seed) return exactly what each returns alone;
    the reused starts are marked and keep the time of their first computation."""
    p = make_planted(300, 8, 3, thresh_gt=0.15, noise_sd=0.1, random_state=5)
    cache, kw = {}, dict(sparsifier=Threshold(0.075), max_starts=3)
    for i, solver in enumerate(["htp", "grasp", "niht", "htp", "sgd_iht"]):
        alone = recover(p.X, p.y, 3, solver=solver, random_state=np.random.default_rng(3), **kw)
        shared = recover(p.X, p.y, 3, solver=solver, random_state=np.random.default_rng(3), start_cache=cache, **kw)
        np.testing.assert_array_equal(alone.W, shared.W)
        np.testing.assert_array_equal(alone.v, shared.v)
        assert alone.history["start_losses"] == shared.history["start_losses"]
        assert alone.history["sign_losses"] == shared.history["sign_losses"]
        assert alone.warnings == shared.warnings
        reused = shared.history["start_reused"]
        assert len(reused) == shared.n_starts == len(shared.history["start_seconds"])
        if solver == "sgd_iht":  # its shuffling shares the random state: never cached
            assert not any(reused)
        elif i > 0:
            assert reused[0]  # start 0 is the same for every solver
        assert all(t > 0 for t in shared.history["start_seconds"])
    assert 1 <= len(cache) <= kw["max_starts"]


@pytest.mark.parametrize("bit_generator", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_start_cache_with_any_bit_generator(bit_generator):
    """Generators whose state holds arrays (MT19937's key, Philox's counter) key the cache as well."""
    p = make_planted(300, 6, 2, thresh_gt=0.15, noise_sd=0.1, random_state=1)
    cache, kw = {}, dict(sparsifier=Threshold(0.075), max_starts=2, solver="htp")
    alone = recover(p.X, p.y, 2, random_state=np.random.Generator(bit_generator(4)), **kw)
    for _ in range(2):
        shared = recover(p.X, p.y, 2, random_state=np.random.Generator(bit_generator(4)), start_cache=cache, **kw)
        np.testing.assert_array_equal(alone.W, shared.W)
    assert shared.history["start_reused"][0]


@pytest.mark.parametrize("solver", ["sgd_iht", "niht", "htp", "grasp"])
def test_recover_runs_every_solver(solver):
    p = make_planted(300, 6, 2, thresh_gt=0.15, random_state=2)
    res = recover(p.X, p.y, 2, sparsifier=Threshold(0.075), solver=solver, max_starts=1, random_state=0)
    assert res.solver == solver and res.W.shape == (6, 2) and np.all(np.isfinite(res.W))
    assert np.all(np.abs(res.W[res.W != 0]) > 0.075)


def test_public_name():
    import sparsenet.recovery  # noqa: F401 - importing the module must not shadow the function
    assert sparsenet.recover is recover and "recover" in sparsenet.__all__


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, r"'k' parameter of recover must be an int in the range \[1, inf\). Got 0"),
        ({"solver": "adam"}, "'solver' parameter must be one of"),
        ({"signs": "random"}, "'signs' parameter of recover must be 'auto', 'exhaustive', 'greedy' or 'init'"),
        ({"max_starts": 0}, "'max_starts' parameter of recover"),
        ({"train_v": "yes"}, "'train_v' parameter of recover must be a bool"),
        ({"sparsifier": lambda W: W * np.nan}, "must return finite numbers"),
    ],
)
def test_recover_bad_input(kwargs, match):
    p = make_planted(200, 5, 2, thresh_gt=0.15, random_state=0)
    kw = {"k": 2, "sparsifier": Threshold(0.075), **kwargs}
    with pytest.raises(ValueError, match=match):
        recover(p.X, p.y, kw.pop("k"), max_starts=kw.pop("max_starts", 1), **kw)


def test_search_signs_bad_strategy(population):
    with pytest.raises(ValueError, match="'strategy' parameter of search_signs"):
        search_signs(population.X[:50], population.y[:50], population.W, population.v, strategy="all")


@pytest.mark.parametrize("strategy", ["exhaustive", "greedy"])
@pytest.mark.parametrize("seed, n, d, k", [(0, 500, 10, 3), (1, 600, 12, 4), (2, 3000, 20, 5)])
def test_sign_search_scores_as_one_fit_per_pattern(strategy, seed, n, d, k):
    """The batched sign search gives each pattern the loss of its own dense fit (up to rounding), so it
    picks the pattern that fitting the patterns one at a time picks."""
    from sparsenet.recovery import _dense_fit
    from sparsenet.solvers import NetLeastSquares

    p = make_planted(n, d, k, thresh_gt=0.15, random_state=seed)
    W0, v0 = tensor_init(p.X, p.y, k, random_state=seed)
    v, W, losses = search_signs(p.X, p.y, W0, v0, strategy=strategy, random_state=seed)
    rows = np.sort(np.random.default_rng(seed).choice(n, 1000, replace=False)) if n > 1000 else slice(None)
    df = NetLeastSquares(p.X[rows], p.y[rows], k, "relu2")
    ref = {pat: _dense_fit(df, W0, np.array(pat), 5) for pat in losses}
    scale = np.mean(p.y[rows] ** 2)
    for pat, f in losses.items():
        assert abs(f - ref[pat][1]) <= 1e-7 * scale + 1e-7 * ref[pat][1]
    assert tuple(v) == min(ref, key=lambda pat: ref[pat][1])
    np.testing.assert_allclose(W, ref[tuple(v)][0], atol=1e-6 * np.abs(W).max())


def test_start_cache_shared_by_different_problems():
    """One cache passed to calls on other data, k or activation (same seed) gives each call its own
    starts: the results of separate calls, never a start computed for another problem."""
    p = make_planted(300, 6, 3, thresh_gt=0.15, noise_sd=0.1, random_state=1)
    q = make_planted(300, 6, 3, thresh_gt=0.15, noise_sd=0.1, random_state=2)
    kw = dict(sparsifier=Threshold(0.075), max_starts=2, solver="htp")
    cache = {}
    for X, y, k, act in [(p.X, p.y, 3, "relu2"), (q.X, q.y, 3, "relu2"), (p.X, p.y, 2, "relu2"),
                         (p.X, p.y, 3, "tanh"), (p.X, 2 * p.y, 3, "relu2")]:
        alone = recover(X, y, k, activation=act, random_state=np.random.default_rng(4), **kw)
        shared = recover(X, y, k, activation=act, random_state=np.random.default_rng(4), start_cache=cache, **kw)
        assert shared.W.shape == (6, k)
        np.testing.assert_array_equal(alone.W, shared.W)
        np.testing.assert_array_equal(alone.v, shared.v)
        assert not any(shared.history["start_reused"])


def test_start_cache_never_hands_a_freed_activations_start_to_another():
    """A callable activation keys the cache by identity; once it is freed, Python may give its id to a
    new callable (here at once: same size, same allocator slot). The new activation must get its own
    start: the result of a separate call."""
    p = make_planted(200, 5, 2, thresh_gt=0.15, noise_sd=0.1, random_state=1)
    kw = dict(sparsifier=Threshold(0.075), max_starts=1, solver="htp", random_state=0)

    def make(fn):
        return lambda z: fn(z)

    cache = {}
    act = make(np.square)
    old = id(act)
    recover(p.X, p.y, 2, activation=act, start_cache=cache, **kw)
    del act
    made = []  # keep the candidates alive so that each new one takes a fresh slot
    for _ in range(1000):
        act = make(np.tanh)
        if id(act) == old:
            break
        made.append(act)
    shared = recover(p.X, p.y, 2, activation=act, start_cache=cache, **kw)
    alone = recover(p.X, p.y, 2, activation=act, **kw)
    np.testing.assert_array_equal(alone.W, shared.W)
    assert alone.history["sign_losses"] == shared.history["sign_losses"]
    assert not shared.history["start_reused"][0]


def test_start_cache_results_are_independent_of_each_other():
    """A caller editing one result's history (sign_losses) changes neither the cache nor another result."""
    p = make_planted(200, 5, 2, thresh_gt=0.15, noise_sd=0.1, random_state=1)
    kw = dict(sparsifier=Threshold(0.075), max_starts=1, solver="htp", random_state=3)
    alone = recover(p.X, p.y, 2, **kw)
    cache = {}
    first = recover(p.X, p.y, 2, start_cache=cache, **kw)
    second = recover(p.X, p.y, 2, start_cache=cache, **kw)
    first.history["sign_losses"].clear()
    first.W[:] = 0.0
    third = recover(p.X, p.y, 2, start_cache=cache, **kw)
    for res in (second, third):
        assert res.history["start_reused"] == [True]
        assert res.history["sign_losses"] == alone.history["sign_losses"] != {}
        np.testing.assert_array_equal(res.W, alone.W)


@pytest.mark.parametrize("variant", ["generator", "seed_sequence", "float32", "view", "fortran", "signs",
                                     "in_place_X", "in_place_y"])
def test_start_cache_equals_separate_calls_for_other_call_patterns(variant):
    """Shared cache vs separate calls (the oracle) after a first call on (X, y) with seed 3: other
    random_state types of the same seed, float32 data, a non-contiguous or Fortran view of the same
    values, another sign strategy, X or y changed in place. Equal W, v, losses and final rng state."""
    p = make_planted(200, 5, 2, thresh_gt=0.15, noise_sd=0.1, random_state=1)
    X, y = p.X.copy(), p.y.copy()
    kw = dict(sparsifier=Threshold(0.075), max_starts=2, solver="htp")
    cache = {}
    recover(X, y, 2, start_cache=cache, random_state=3, **kw)
    seed, signs = (lambda: 3), "auto"
    if variant == "generator":
        seed = lambda: np.random.default_rng(3)  # noqa: E731
    elif variant == "seed_sequence":
        seed = lambda: np.random.SeedSequence(3)  # noqa: E731
    elif variant == "float32":
        X, y = X.astype(np.float32), y.astype(np.float32)
    elif variant == "view":
        wide = np.zeros((X.shape[0], 2 * X.shape[1]))
        wide[:, ::2] = X
        X = wide[:, ::2]
    elif variant == "fortran":
        X = np.asfortranarray(X)
    elif variant == "signs":
        signs = "greedy"
    elif variant == "in_place_X":
        X[0, 0] += 1.0
    else:
        y[5] *= 2.0
    rng_shared, rng_alone = seed(), seed()
    shared = recover(X, y, 2, start_cache=cache, random_state=rng_shared, signs=signs, **kw)
    alone = recover(X, y, 2, random_state=rng_alone, signs=signs, **kw)
    np.testing.assert_array_equal(alone.W, shared.W)
    np.testing.assert_array_equal(alone.v, shared.v)
    assert alone.history["start_losses"] == shared.history["start_losses"]
    assert alone.history["sign_losses"] == shared.history["sign_losses"]
    if isinstance(rng_shared, np.random.Generator):  # the caller's generator ends where it would alone
        assert rng_shared.bit_generator.state == rng_alone.bit_generator.state
