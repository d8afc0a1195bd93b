"""Sample efficiency of the solvers: success rate (95 % Wilson interval) and time per fit, side by side.

Planted problems (blind: only X, y reach the algorithms), by default d = 20, k = 5, κ = 2,
thresh_gt = 0.15, noise-free; sparsifier Threshold(0.075); success = recovery error < 1e-3
(:func:`sparsenet.metrics.recovery_error`). Trial t at sample size n uses the problem seed
(n, t), the same for every method.

Methods
-------
``sgd_iht``         the report's training: blind tensor init (v = its signs), minibatch SGD IHT,
                    25 epochs, batch 20, learning rate 1e-3, 5 pre-training epochs
``recover-<s>``     :func:`sparsenet.recover` with solver ``s`` in {niht, htp, grasp}
``skscope-<S>``     (optional peer; skipped with a message when skscope is not installed) skscope's
                    IHT/HTP/GraSP solvers on the same loss (a JAX function of W, v held), started
                    from recover's first start (tensor init + sign search + short dense fit) and
                    GIVEN the planted number of nonzeros (skscope needs a count; ours a threshold)

Usage::

    python benchmarks/bench_solvers.py --n 300 500 1000 2000 --trials 20
    python benchmarks/bench_solvers.py --n 500 --trials 10 --methods recover-grasp skscope-grasp
    python benchmarks/bench_solvers.py --signs --k 10 --n 1000 --trials 10 --strategies joint greedy
    python benchmarks/bench_solvers.py --oracle --noise 0.1 --n 1000 --trials 20 --methods recover-grasp
    python benchmarks/bench_solvers.py --speed --n 6000 --trials 10

``--speed``: CPU time of the sign search (all 2^k patterns in one batched Levenberg–Marquardt)
against one dense fit per pattern (the unbatched reference), interleaved per trial on the same
rows, with the chosen pattern compared.
"""

import argparse
import json
import time
import warnings

import numpy as np
from scipy.stats import binomtest

from sparsenet import make_planted, recovery_error, tensor_init, train_iht
from sparsenet.recovery import _initial, recover, search_signs
from sparsenet.sparsify import Threshold

OURS = ["sgd_iht", "recover-niht", "recover-htp", "recover-grasp"]
PEERS = ["skscope-iht", "skscope-htp", "skscope-grasp"]


def wilson(successes, trials, confidence=0.95):
    """Wilson score interval of a binomial proportion (scipy's binomtest)."""
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _skscope_fit(name, p, k, seed, thresh):
    import jax.numpy as jnp
    import skscope

    cls = {"iht": skscope.IHTSolver, "htp": skscope.HTPSolver, "grasp": skscope.GraspSolver}[name]
    W0, v0 = tensor_init(p.X, p.y, k, random_state=np.random.default_rng(seed))
    v, W, _ = search_signs(p.X, p.y, W0, v0)
    d = p.X.shape[1]
    X, y, vj = jnp.asarray(p.X), jnp.asarray(p.y), jnp.asarray(v)

    def loss(w):
        Z = X @ w.reshape(d, k)
        return jnp.mean((jnp.maximum(Z, 0.0) ** 2 @ vj - y) ** 2)

    solver = cls(d * k, sparsity=int(np.count_nonzero(p.W)), sample_size=len(y))
    w = solver.solve(loss, init_params=jnp.asarray(W.ravel()), jit=True)
    return np.asarray(w).reshape(d, k), v


def run_one(method, p, k, seed, thresh):
    """(W, v) fitted by ``method`` on problem ``p`` (only p.X, p.y are used)."""
    sp = Threshold(thresh)
    if method == "sgd_iht":
        W0, v0 = tensor_init(p.X, p.y, k, random_state=np.random.default_rng(seed))
        res = train_iht(p.X, p.y, W0, v0, sparsifier=sp, epochs=25, batch_size=20, learning_rate=1e-3,
                        pretrain_epochs=5, random_state=np.random.default_rng([seed, 1]))
        return res.W, res.v
    if method.startswith("recover-"):
        res = recover(p.X, p.y, k, sparsifier=sp, solver=method.split("-", 1)[1],
                      random_state=np.random.default_rng(seed))
        return res.W, res.v
    return _skscope_fit(method.split("-", 1)[1], p, k, seed, thresh)


def table(args):
    methods = list(args.methods)
    if any(m.startswith("skscope") for m in methods):
        try:
            import skscope  # noqa: F401
        except ImportError:
            print("skscope is not installed (pip install skscope): its solvers are skipped.")
            methods = [m for m in methods if not m.startswith("skscope")]
    rows = []
    for n in args.n:
        for method in methods:
            ok, times, cpus, errs = 0, [], [], []
            for t in range(args.trials):
                p = make_planted(n, args.d, args.k, kappa=2.0, thresh_gt=0.15, noise_sd=args.noise,
                                 n_test=10, random_state=np.random.default_rng([n, t]))
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    W, v = run_one(method, p, args.k, seed=10_000 + t, thresh=args.thresh)
                    err = recovery_error(W, v, p.W, p.v, activation="relu2")
                except ValueError as exc:  # e.g. SGD divergence: a failure of the method
                    err = float("inf")
                    print(f"  {method} n={n} trial {t}: {exc}")
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)  # CPU time: less sensitive to other processes
                errs.append(err)
                ok += err < args.success
            lo, hi = wilson(ok, args.trials)
            row = {"n": n, "method": method, "successes": ok, "trials": args.trials, "wilson_low": lo,
                   "wilson_high": hi, "median_time_s": float(np.median(times)),
                   "median_cpu_s": float(np.median(cpus)),
                   "median_error": float(np.median(errs))}
            rows.append(row)
            print(f"n={n:5d} {method:15s} {ok:3d}/{args.trials} [{lo:.2f}, {hi:.2f}]  "
                  f"median {row['median_time_s']:.3f} s (CPU {row['median_cpu_s']:.3f} s)  median error {row['median_error']:.2g}", flush=True)
    return rows


def signs(args):
    """Sign search at larger k: exhaustive vs greedy vs tensor_init's signs (planted multiset found?)."""
    from sparsenet.metrics import align

    rows = []
    for t in range(args.trials):
        p = make_planted(args.n[0], args.d, args.k, thresh_gt=0.15, n_test=10, random_state=np.random.default_rng([7, t]))
        notes = []
        W0, v0 = _initial(p.X, p.y, args.k, "relu2", np.random.default_rng(t), notes)  # recover's first start
        row = {"trial": t, "random_start": any("random start" in m for m in notes), "init": bool(align(W0, v0, p.W, p.v, activation="relu2").sign_consistent)}
        for strategy in args.strategies:
            t0 = time.perf_counter()
            v, W, scored = search_signs(p.X, p.y, W0, v0, strategy=strategy)
            row[strategy] = bool(align(W, v, p.W, p.v, activation="relu2").sign_consistent)
            row[strategy + "_time_s"] = time.perf_counter() - t0
            row[strategy + "_fits"] = len(scored)
        rows.append(row)
        print(row, flush=True)
    for key in ["init", *args.strategies]:
        ok = sum(r[key] for r in rows)
        lo, hi = wilson(ok, len(rows))
        print(f"{key:11s} right sign multiset {ok}/{len(rows)} [{lo:.2f}, {hi:.2f}]")
    return rows


def oracle(args):
    """Noisy data: recover's recovery error against the ORACLE support refit (truth's support and v* given).

    The oracle fits W on the planted support by Levenberg–Marquardt from W* itself, v = v*: the least-squares
    estimate a method that knew the support and the signs would return. Ground truth enters here only.
    """
    from sparsenet.solvers import NetLeastSquares, _levenberg_marquardt

    rows = []
    for n in args.n:
        for t in range(args.trials):
            p = make_planted(n, args.d, args.k, thresh_gt=0.15, noise_sd=args.noise, n_test=10,
                             random_state=np.random.default_rng([n, t]))
            df = NetLeastSquares(p.X, p.y, args.k)
            theta = df.pack({"W": p.W, "v": p.v})
            theta = _levenberg_marquardt(df, theta, np.flatnonzero(p.W.ravel() != 0), 100)
            e_oracle = recovery_error(df.unpack(theta)["W"], p.v, p.W, p.v, activation="relu2")
            t0 = time.perf_counter()
            res = recover(p.X, p.y, args.k, sparsifier=Threshold(args.thresh), solver=args.methods[0].split("-")[-1]
                          if args.methods[0].startswith("recover-") else "auto", random_state=np.random.default_rng(t))
            e = recovery_error(res.W, res.v, p.W, p.v, activation="relu2")
            rows.append({"n": n, "trial": t, "error": e, "oracle_error": e_oracle, "ratio": e / e_oracle,
                         "time_s": time.perf_counter() - t0})
            print(rows[-1], flush=True)
        ratios = np.array([r["ratio"] for r in rows if r["n"] == n])
        ok = int(np.sum(ratios <= 1.5))
        lo, hi = wilson(ok, len(ratios))
        print(f"n={n} noise={args.noise}: error / oracle error median {np.median(ratios):.3f} "
              f"(quartiles {np.quantile(ratios, 0.25):.3f}, {np.quantile(ratios, 0.75):.3f}); "
              f"ratio <= 1.5 in {ok}/{len(ratios)} [{lo:.2f}, {hi:.2f}]")
    return rows


def speed(args):
    """CPU time of search_signs (batched fits) ÷ one _dense_fit per pattern, and the same pattern chosen."""
    import itertools

    from sparsenet.recovery import _dense_fit
    from sparsenet._threads import one_blas_thread
    from sparsenet.solvers import NetLeastSquares

    rows = []
    for t in range(args.trials):
        p = make_planted(args.n[0], args.d, args.k, thresh_gt=0.15, n_test=10, random_state=np.random.default_rng([7, t]))
        W0, v0 = _initial(p.X, p.y, args.k, "relu2", np.random.default_rng(t), [])
        rows_used = np.sort(np.random.default_rng(t).choice(len(p.y), min(1000, len(p.y)), replace=False))
        df = NetLeastSquares(p.X[rows_used], p.y[rows_used], args.k)
        patterns = list(itertools.product((1.0, -1.0), repeat=args.k))
        cpu = {}
        for side in ("batched", "one_at_a_time", "batched", "one_at_a_time"):  # interleaved, best of two
            t0 = time.process_time()
            if side == "batched":
                v, _, scored = search_signs(p.X, p.y, W0, v0, strategy="exhaustive", random_state=t)
            else:
                with one_blas_thread():
                    ref = {pat: _dense_fit(df, W0, np.array(pat), 5)[1] for pat in patterns}
            cpu[side] = min(cpu.get(side, np.inf), time.process_time() - t0)
        scale = float(np.mean(df.y ** 2))
        rows.append({"trial": t, **{side + "_cpu_s": c for side, c in cpu.items()},
                     "ratio": cpu["batched"] / cpu["one_at_a_time"],
                     "same_pattern": tuple(v) == min(ref, key=ref.get),
                     "max_loss_diff_rel": max(abs(scored[pat] - ref[pat]) for pat in patterns) / scale})
        print(rows[-1], flush=True)
    ratios = np.array([r["ratio"] for r in rows])
    same = sum(r["same_pattern"] for r in rows)
    print(f"sign search, batched / one fit per pattern (CPU, n={args.n[0]}, d={args.d}, k={args.k}): median "
          f"{np.median(ratios):.3f} (min {ratios.min():.3f}, max {ratios.max():.3f}, {len(rows)} trials); same "
          f"pattern chosen {same}/{len(rows)}; largest loss difference {max(r['max_loss_diff_rel'] for r in rows):.2g} "
          "of mean(y²)")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[300, 500, 1000, 2000], help="sample sizes")
    parser.add_argument("--d", type=int, default=20, help="input dimension (default 20)")
    parser.add_argument("--k", type=int, default=5, help="hidden units (default 5)")
    parser.add_argument("--trials", type=int, default=20, help="trials per point (default 20)")
    parser.add_argument("--noise", type=float, default=0.0, help="noise standard deviation (default 0)")
    parser.add_argument("--thresh", type=float, default=0.075, help="training threshold (default 0.075)")
    parser.add_argument("--success", type=float, default=1e-3, help="success: recovery error below (1e-3)")
    parser.add_argument("--methods", nargs="+", default=OURS + PEERS, choices=OURS + PEERS, help="methods run")
    parser.add_argument("--signs", action="store_true", help="measure the sign search strategies instead")
    parser.add_argument("--oracle", action="store_true",
                        help="compare recover's error with the oracle-support refit (use with --noise)")
    parser.add_argument("--speed", action="store_true",
                        help="time the batched sign search against one fit per pattern instead")
    parser.add_argument("--strategies", nargs="+", default=["greedy", "exhaustive"],
                        choices=["greedy", "exhaustive", "joint"], help="with --signs: strategies compared")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # tensor_init's small-sample warnings: counted in the outcome, not printed
    rows = signs(args) if args.signs else oracle(args) if args.oracle else speed(args) if args.speed else table(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
