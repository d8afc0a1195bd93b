"""Each baseline against its definition (issue 8)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sparsenet.baselines import (imp_schedule, iht_refit, iterative_magnitude_pruning, l1_prox, magnitude_mask,
                                 prune_finetune, refit_support, run_jointly, soft_threshold)
from sparsenet.initializers import random_init
from sparsenet.sparsify import TopFraction
from sparsenet.train import train_iht

FAST = dict(epochs=4, batch_size=50, learning_rate=1e-3)


@pytest.fixture(scope="module")
def init(tiny_problem):
    d, k = tiny_problem.W.shape
    return random_init(d, k, random_state=0)


@given(arrays(np.float64, (4, 3), elements=st.floats(-5, 5)), st.floats(0, 3))
def test_soft_threshold_matches_elementwise_definition(W, t):
    expected = np.array([[w - t if w > t else (w + t if w < -t else 0.0) for w in row] for row in W])
    np.testing.assert_allclose(soft_threshold(W, t), expected, atol=1e-12)


@given(arrays(np.float64, (2, 5, 3), elements=st.floats(-5, 5)), st.floats(0, 2), st.floats(0, 2))
@settings(max_examples=50)
def test_soft_threshold_monotone_in_threshold(W, a, b):
    lo, hi = sorted((a, b))
    assert np.count_nonzero(soft_threshold(W, hi)) <= np.count_nonzero(soft_threshold(W, lo))


@given(arrays(np.float64, (3, 6, 2), elements=st.floats(-5, 5)), st.integers(1, 12))
def test_magnitude_mask_keeps_exactly_n_largest(W, n):
    mask = magnitude_mask(W, n)
    assert mask.sum(axis=(1, 2)).tolist() == [n] * 3
    for b in range(3):  # every kept magnitude >= every dropped one
        kept, dropped = np.abs(W[b][mask[b]]), np.abs(W[b][~mask[b]])
        assert dropped.size == 0 or kept.min() >= dropped.max()


@given(st.integers(2, 200), st.data())
def test_imp_schedule_geometric_and_exact(n_total, data):
    n_target = data.draw(st.integers(1, n_total))
    rounds = data.draw(st.integers(1, 8))
    counts = imp_schedule(n_total, n_target, rounds)
    assert len(counts) == rounds and counts[-1] == n_target
    assert all(a >= b for a, b in zip([n_total] + counts, counts))


def test_prox_step_in_training_equals_soft_threshold(tiny_problem, init):
    """One full-batch step of l1_prox = gradient step then soft threshold at alpha*lr, computed independently."""
    from sparsenet.train import loss_and_grad

    p = tiny_problem
    W0, v0 = init
    alpha, lr = 0.7, 0.05
    res = l1_prox(p.X, p.y, W0, v0, alpha=alpha, epochs=1, batch_size=None, learning_rate=lr)
    _, gW, _ = loss_and_grad(p.X[None], p.y[None], W0[None], v0[None])
    Z = W0 - lr * gW[0]
    expected = np.sign(Z) * np.maximum(np.abs(Z) - alpha * lr, 0.0)
    np.testing.assert_allclose(res.W, expected, rtol=1e-10, atol=1e-12)



@pytest.mark.parametrize("kernels", ["numpy", "compiled"])
def test_l1_prox_on_the_grouped_path_equals_each_model_alone(tiny_problem, init, kernels, monkeypatch):
    """Candidates sharing an order group take the grouped path (numpy or compiled) and each equals training
    it alone on the per-model numpy path with a plain soft-threshold closure (no ``l1_alpha``) and that seed."""
    import sparsenet.train as train
    from sparsenet.baselines import _l1_prox_op

    p = tiny_problem
    W0, v0 = init
    alphas = np.array([0.0, 0.5, 3.0, 10.0, 1.0])
    B = len(alphas)
    kw = dict(sparsifiers=None, epochs=3, batch_size=30, learning_rate=np.linspace(1e-3, 3e-3, B), train_v=True,
              X_test=p.X_test, y_test=p.y_test)
    monkeypatch.setattr(train, "_KERNELS", kernels)
    calls = []
    grouped = train._grouped_minibatch_epoch
    monkeypatch.setattr(train, "_grouped_minibatch_epoch", lambda *a, **k: calls.append(1) or grouped(*a, **k))
    res = train.train_iht_batched(p.X, p.y, np.repeat(W0[None], B, 0), np.repeat(v0[None], B, 0),
                                  prox=_l1_prox_op(alphas), random_states=[7, 7, 7, 8, 8],
                                  order_groups=[0, 0, 0, 1, 1], **kw)
    assert len(calls) == 3 * 2  # per epoch one grouped call per group size (3 and 2)
    assert np.count_nonzero(res.W[3] == 0) > 0  # the threshold zeroed weights
    monkeypatch.setattr(train, "_KERNELS", "numpy")
    monkeypatch.setattr(train, "_grouped_minibatch_epoch", grouped)
    for b, seed in enumerate([7, 7, 7, 8, 8]):
        lr = kw["learning_rate"][b]

        def prox(W, step, a=alphas[b]):
            return np.sign(W) * np.maximum(np.abs(W) - a * step, 0.0)

        one = train.train_iht(p.X, p.y, W0, v0, sparsifier=None, epochs=3, batch_size=30, learning_rate=lr,
                              train_v=True, pretrain_epochs=0, sparsify_last=False, prox=prox, random_state=seed)
        np.testing.assert_allclose(res.W[b], one.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(res.v[b], one.v, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n_keep", [1, 7, 18])
def test_prune_finetune_keeps_exactly_n(tiny_problem, init, n_keep):
    p = tiny_problem
    res = prune_finetune(p.X, p.y, *init, n_nonzero=n_keep, random_state=0, **FAST)
    assert np.count_nonzero(res.W) == n_keep == res.support.sum()
    assert not np.any(res.W[~res.support])
    assert res.history["train_loss"].shape == (FAST["epochs"] + 1,)
    assert res.info == {"dense_epochs": 2, "finetune_epochs": 2}


def test_prune_is_magnitude_of_dense_stage(tiny_problem, init):
    """The support is the top-n of the weights after the dense epochs (dense_fraction=1: no fine-tuning)."""
    p = tiny_problem
    res = prune_finetune(p.X, p.y, *init, n_nonzero=5, dense_fraction=1.0, random_state=0, **FAST)
    dense = train_iht(p.X, p.y, *init, sparsifier=None, pretrain_epochs=0, sparsify_last=False,
                      random_state=0, **FAST)
    np.testing.assert_array_equal(res.support, magnitude_mask(dense.W, 5))
    np.testing.assert_allclose(res.W, dense.W * res.support)


@pytest.mark.parametrize("rewind", [False, True])
def test_imp_reaches_exact_target_and_supports_are_nested(tiny_problem, init, rewind):
    p = tiny_problem
    res = iterative_magnitude_pruning(p.X, p.y, *init, n_nonzero=6, n_rounds=3, rewind=rewind, random_state=0,
                                      epochs=8, batch_size=50)
    assert np.count_nonzero(res.W) == 6 == res.support.sum()
    assert res.info["schedule"][0][-1] == 6 and res.info["phase_epochs"] == [2, 2, 2, 2]
    assert res.history["nnz"].shape == (9,)


def test_imp_batched_per_model_targets(tiny_problem, rng):
    p = tiny_problem
    d, k = p.W.shape
    W0 = rng.standard_normal((3, d, k)) / np.sqrt(d)
    v0 = np.ones((3, k))
    res = iterative_magnitude_pruning(p.X, p.y, W0, v0, n_nonzero=np.array([2, 5, 9]), random_state=0,
                                      epochs=5, batch_size=50)
    assert np.count_nonzero(res.W, axis=(1, 2)).tolist() == [2, 5, 9]


@pytest.mark.parametrize("support_kind", ["given", "from_W"])
def test_refit_never_changes_support(tiny_problem, init, support_kind):
    p = tiny_problem
    W0, v0 = init
    support = np.abs(W0) > np.median(np.abs(W0))
    if support_kind == "given":
        res = refit_support(p.X, p.y, W0, v0, support=support, epochs=3, batch_size=50, random_state=0)
    else:
        res = refit_support(p.X, p.y, W0 * support, v0, epochs=3, batch_size=50, random_state=0)
    np.testing.assert_array_equal(res.W != 0, support)
    assert not np.allclose(res.W[support], W0[support])  # it did train


def test_oracle_refit_never_changes_support(tiny_problem, init):
    """The oracle support (truth matched to the init's units) is kept exactly through training."""
    from sparsenet.experiments.baseline_methods import oracle_support

    p = tiny_problem
    W0, v0 = init
    mask = oracle_support(W0, v0, p)
    assert mask.sum() == np.count_nonzero(p.W)
    res = refit_support(p.X, p.y, W0, v0, support=mask, epochs=3, batch_size=50, random_state=0)
    np.testing.assert_array_equal(res.W != 0, mask)


def test_iht_refit_keeps_iht_support(tiny_problem, init):
    p = tiny_problem
    sp = TopFraction(0.5)
    res = iht_refit(p.X, p.y, *init, sparsifier=sp, epochs=5, refit_epochs=2, pretrain_epochs=1,
                    batch_size=50, random_state=0)
    iht = train_iht(p.X, p.y, *init, sparsifier=sp, epochs=3, pretrain_epochs=1, batch_size=50, random_state=0)
    np.testing.assert_array_equal(res.support, iht.W != 0)
    np.testing.assert_array_equal(res.W != 0, iht.W != 0)
    assert res.history["train_loss"].shape == (6,)


def test_l1_larger_alpha_fewer_nonzeros(tiny_problem, init):
    p = tiny_problem
    W0, v0 = init
    alphas = [0.0, 0.01, 0.1, 0.5, 2.0]
    B = len(alphas)
    res = l1_prox(p.X, p.y, np.repeat(W0[None], B, 0), np.repeat(v0[None], B, 0), alpha=np.array(alphas),
                  random_state=[0] * B, **FAST)
    nnz = np.count_nonzero(res.W, axis=(1, 2))
    assert np.all(np.diff(nnz) <= 0), nnz
    assert nnz[0] == W0.size and nnz[-1] < W0.size


def test_l1_selection_targets_count_and_is_reproducible(tiny_problem, init):
    p = tiny_problem
    target = 9
    res = l1_prox(p.X, p.y, *init, n_nonzero=target, n_grid=5, n_refine=2, random_state=3, **FAST)
    nnz = np.count_nonzero(res.W)
    assert res.info["nnz"] == [nnz]
    best = min(abs(z - target) for _, z in res.info["tried"][0])
    assert abs(nnz - target) == best and best <= 3, res.info["tried"]
    again = l1_prox(p.X, p.y, *init, alpha=res.info["alpha"][0], random_state=3, **FAST)
    np.testing.assert_array_equal(again.W, res.W)


def test_l1_needs_exactly_one_of_target_and_alpha(tiny_problem, init):
    p = tiny_problem
    with pytest.raises(ValueError, match="exactly one of 'n_nonzero'"):
        l1_prox(p.X, p.y, *init, **FAST)
    with pytest.raises(ValueError, match="exactly one of 'n_nonzero'"):
        l1_prox(p.X, p.y, *init, n_nonzero=3, alpha=0.1, **FAST)


def test_bad_n_nonzero_message(tiny_problem, init):
    p = tiny_problem
    with pytest.raises(ValueError, match=r"The 'n_nonzero' parameter of prune_finetune must be an int in the range \[1, 18\]"):
        prune_finetune(p.X, p.y, *init, n_nonzero=19, **FAST)


def test_same_seed_bit_identical(tiny_problem, init):
    p = tiny_problem
    a = prune_finetune(p.X, p.y, *init, n_nonzero=5, random_state=1, **FAST)
    b = prune_finetune(p.X, p.y, *init, n_nonzero=5, random_state=1, **FAST)
    np.testing.assert_array_equal(a.W, b.W)


def test_registry_entries_expand_and_run():
    """Every baseline entry resolves, builds and runs through the experiment runner (quick scale)."""
    from sparsenet.experiments.config import parse_config
    from sparsenet.experiments.runner import execute_task, make_tasks
    from sparsenet.experiments.config import expand

    names = ["random_iht", "tensor_iht", "prune_finetune", "imp", "l1_prox", "iht_refit", "oracle_refit"]
    doc = {
        "experiment": {"name": "t", "x": "p_gt", "values": [0.5], "metrics": ["recovery_error"],
                       "protocols": ["blind"], "trials": 1},
        "setting": {"n": 300, "d": 6, "k": 2, "epochs": 3, "batch_size": 50, "pretrain_epochs": 1, "n_test": 50},
        "methods": [{"label": n, "method": n, **({"target": "p_gt"} if n != "oracle_refit" else {}),
                     **({"refit_epochs": 1} if n == "iht_refit" else {})} for n in names],
    }
    cfg = parse_config(doc)
    records = [r for t in make_tasks(expand(cfg)) for r in execute_task(t)]
    by = {r["params"]["method"]: r for r in records}
    assert set(by) == set(names)
    for name, r in by.items():
        assert r["status"] == "ok", (name, r["error"])
        assert len(r["history"]["train_loss"]) == 4, name  # epochs + 1, whichever stage ran them
    assert by["oracle_refit"]["metrics"]["exact_support"] == 1
    for name in ("prune_finetune", "imp", "iht_refit", "random_iht", "tensor_iht"):
        assert by[name]["metrics"]["nnz"] == 0.5 * 12, name


def _programs(p, W0, v0, stream):
    """Staged baselines on one problem: budgets, learning rates, train_v and schedules that differ, stages of
    0 epochs (no dense stage; no refit; a budget of 0) and one-shot pruning by IHT's sparsifier."""
    kw = dict(batch_size=50, X_test=p.X_test, y_test=p.y_test, random_state=stream)
    return [
        prune_finetune.program(p.X, p.y, W0, v0, n_nonzero=9, dense_fraction=0.4, epochs=7, learning_rate=2e-3, **kw),
        prune_finetune.program(p.X, p.y, W0, v0, n_nonzero=5, dense_fraction=0.0, epochs=7, **kw),
        iterative_magnitude_pruning.program(p.X, p.y, W0, v0, n_nonzero=4, n_rounds=3, rewind=True, epochs=7,
                                            train_v=True, **kw),
        iterative_magnitude_pruning.program(p.X, p.y, W0, v0, n_nonzero=7, n_rounds=2, epochs=4, **kw),
        iht_refit.program(p.X, p.y, W0, v0, sparsifier=TopFraction(0.5), refit_epochs=2, pretrain_epochs=2, epochs=7,
                          **kw),
        iht_refit.program(p.X, p.y, W0, v0, sparsifier=TopFraction(0.3), refit_epochs=0, pretrain_epochs=9, epochs=5,
                          **kw),
        iht_refit.program(p.X, p.y, W0, v0, sparsifier=TopFraction(0.3), refit_epochs=0, epochs=0, **kw),
    ]


def test_run_jointly_equals_each_baseline_alone(tiny_problem, init):
    """Lockstep training of several staged baselines on one shared stream = each alone on a fresh copy of it."""
    from sparsenet.baselines import _drive

    p = tiny_problem
    W0, v0 = init
    joint = run_jointly(_programs(p, W0, v0, np.random.default_rng(4)))
    for i, got in enumerate(joint):
        alone = _drive(*_programs(p, W0, v0, np.random.default_rng(4))[i])
        np.testing.assert_allclose(got.W, alone.W, rtol=1e-10, atol=1e-13, err_msg=str(i))
        np.testing.assert_allclose(got.v, alone.v, rtol=1e-10, atol=1e-13, err_msg=str(i))
        np.testing.assert_array_equal(got.support, alone.support)
        assert got.info == alone.info and got.n_iter_ == alone.n_iter_
        for key in alone.history:
            np.testing.assert_allclose(got.history[key], alone.history[key], rtol=1e-10, atol=1e-13, err_msg=key)
    assert joint[4].history["nnz"][-1] == 9  # the IHT support's count, kept by the refit
    assert len(joint[6].history["train_loss"]) == 1  # a budget of 0: the initial state only


def test_run_jointly_refuses_programs_on_different_streams(tiny_problem, init):
    p = tiny_problem
    progs = _programs(p, *init, np.random.default_rng(4))[:1] + _programs(p, *init, np.random.default_rng(4))[:1]
    with pytest.raises(ValueError, match="one random_state Generator"):
        run_jointly(progs)
    W0, v0 = init
    stream = np.random.default_rng(4)
    two = prune_finetune.program(p.X, p.y, np.stack([W0, W0]), np.stack([v0, v0]), n_nonzero=3, epochs=2,
                                 random_state=[stream, stream])  # alone: two orders per epoch from the stream
    with pytest.raises(ValueError, match="one model each"):
        run_jointly([two, _programs(p, W0, v0, stream)[0]])


def _staged_config(lr_imp):
    from sparsenet.experiments.config import parse_config

    methods = [{"label": "pf", "method": "prune_finetune", "target": "p_gt", "init": "tensor"},
               {"label": "imp", "method": "imp", "target": "p_gt", "init": "tensor", "learning_rate": lr_imp},
               {"label": "refit", "method": "iht_refit", "target": "p_gt", "refit_epochs": 2},
               {"label": "iht", "method": "tensor_iht", "target": "p_gt"}]
    return parse_config({
        "experiment": {"name": "t", "x": "p_gt", "values": [0.5, 0.75], "metrics": ["recovery_error"],
                       "protocols": ["blind"], "trials": 2},
        "setting": {"n": 300, "d": 6, "k": 2, "epochs": 6, "batch_size": 50, "pretrain_epochs": 1, "n_test": 50},
        "methods": methods})


def test_runner_staged_runs_of_a_problem_train_jointly_as_alone(monkeypatch):
    """The runner's staged baselines of one problem train jointly: the same records as each run alone."""
    import sparsenet.baselines as bl
    from sparsenet.experiments.config import expand
    from sparsenet.experiments.runner import execute_task, make_tasks

    joint_sizes = []  # programs of each joint call that returned (no fallback to running alone)
    joint = bl.run_jointly

    def spy(programs):
        out = joint(programs)
        joint_sizes.append(len(out))
        return out

    monkeypatch.setattr(bl, "run_jointly", spy)
    runs = expand(_staged_config(2e-3))
    grouped = make_tasks(runs)
    got = {r["run_key"]: r for t in grouped for r in execute_task(t)}
    assert joint_sizes == [3] * 4  # the 3 staged runs of each of the 4 problems, jointly
    alone = {r["run_key"]: r for t in make_tasks(runs, max_models=1) for r in execute_task(t)}
    assert got.keys() == alone.keys() and all(r["status"] == "ok" for r in got.values())
    for key, rec in got.items():
        # without loss_history (not read by this experiment) the losses are recorded where a training call
        # starts or ends, and joint calls end at every program's stage boundary: equal where both recorded
        hist, ref = rec["history"], alone[key]["history"]
        assert hist.keys() == ref.keys() and hist["nnz"] == ref["nnz"], rec["method"]
        for name in ("train_loss", "test_loss"):
            a, b = np.array(hist[name]), np.array(ref[name])
            both = np.isfinite(a) & np.isfinite(b)
            assert both[[0, -1]].all(), (rec["method"], name)
            np.testing.assert_allclose(a[both], b[both], rtol=1e-10, err_msg=name)
        for name, value in rec["metrics"].items():
            if name != "wall_time":
                np.testing.assert_allclose(value, alone[key]["metrics"][name], rtol=1e-10, err_msg=name)


def test_runner_a_diverging_staged_run_fails_alone():
    from sparsenet.experiments.config import expand
    from sparsenet.experiments.runner import execute_task, make_tasks

    records = [r for t in make_tasks(expand(_staged_config(1e3))) for r in execute_task(t)]
    status = {(r["method"], r["status"]) for r in records}
    assert status == {("imp", "failed"), ("prune_finetune", "ok"), ("iht_refit", "ok"), ("tensor_iht", "ok")}
    assert all("diverged" in r["error"] for r in records if r["status"] == "failed")


def _check_lean_equals_full(lean, full):
    """loss_history=False: same W, v, nnz; each recorded loss equals the full history's, NaN elsewhere."""
    np.testing.assert_array_equal(lean.W, full.W)
    np.testing.assert_array_equal(lean.v, full.v)
    np.testing.assert_array_equal(lean.history["nnz"], full.history["nnz"])
    for key in ("train_loss", "test_loss"):
        got, want = np.asarray(lean.history[key]), np.asarray(full.history[key])
        assert got.shape == want.shape and np.isfinite(want).all()
        kept = np.isfinite(got)
        assert kept[[0, -1]].all() and not kept.all()  # start and end recorded, some epochs left out
        np.testing.assert_array_equal(got[kept], want[kept])


@pytest.mark.parametrize("name", ["prune_finetune", "imp", "l1_prox", "iht_refit", "refit_support"])
def test_baselines_without_loss_history_train_the_same_models(tiny_problem, init, name):
    p = tiny_problem
    W0, v0 = init
    kw = dict(epochs=6, batch_size=50, X_test=p.X_test, y_test=p.y_test, random_state=3)
    call = {
        "prune_finetune": lambda **o: prune_finetune(p.X, p.y, W0, v0, n_nonzero=8, **kw, **o),
        "imp": lambda **o: iterative_magnitude_pruning(p.X, p.y, W0, v0, n_nonzero=6, n_rounds=2, **kw, **o),
        "l1_prox": lambda **o: l1_prox(p.X, p.y, W0, v0, n_nonzero=8, n_grid=3, n_refine=1, **kw, **o),
        "iht_refit": lambda **o: iht_refit(p.X, p.y, W0, v0, sparsifier=TopFraction(0.5), refit_epochs=2,
                                           pretrain_epochs=1, **kw, **o),
        "refit_support": lambda **o: refit_support(p.X, p.y, W0, v0, support=np.abs(W0) > 0.3, **kw, **o),
    }[name]
    _check_lean_equals_full(call(loss_history=False), call())


def test_run_jointly_without_loss_history(tiny_problem, init):
    p = tiny_problem
    W0, v0 = init
    progs = _programs(p, W0, v0, np.random.default_rng(4))[:5]
    for tr, _ in progs:
        tr.kw["loss_history"] = False
    full = run_jointly(_programs(p, W0, v0, np.random.default_rng(4))[:5])
    for got, want in zip(run_jointly(progs), full):
        _check_lean_equals_full(got, want)
