"""Sparse networks on real tabular regression data: 10 public data sets, 5-fold CV, six methods.

Data sets install offline with a package: scikit-learn (diabetes), statsmodels.datasets (fair, randhie,
star98, grunfeld, anes96, sunspots, macrodata) and vega_datasets' local files (cars, seattle_weather);
``pip install -e ".[realdata]"``. Rows beyond ``MAX_ROWS`` are subsampled once with a fixed seed.

Protocol: shuffled 5-fold CV (``KFold(5, shuffle=True, random_state=0)``), the same folds for every
method. On each training fold:

- **SparseNetCV**: ``SparseNetRegressorCV`` (hidden sizes 4/8/16, kept fractions 1/2…1/16, inner 3-fold
  CV on the training fold only — nested CV, the test fold is never seen — restricted to candidates with
  at most 25 % of the weights of the dense network of the same hidden size, ``max_weight_fraction=0.25``);
- **LassoCV**, **ElasticNetCV** (l1_ratio .1/.5/.9), inner 5-fold CV;
- **MLP dense**: ``MLPRegressor`` with the hidden size SparseNetCV chose on that fold (relu, adam,
  early stopping, max_iter 500);
- **MLP pruned**: that MLP, its weights (both layers together) magnitude-pruned to SparseNetCV's nonzero
  count, then fine-tuned on the support with full-batch L-BFGS (:func:`sparsenet.netfit.fit_network`,
  same L2 penalty as the MLP);
- **HistGB**: ``HistGradientBoostingRegressor`` (defaults), the strong reference.

Features and target are standardized on the training fold for every method (pipelines), R² is computed
on the test fold in the target's units. Nonzeros count multiplicative weights (W, v and the skip term
for ours; both weight matrices for the MLPs; coefficients for the linear models), not biases.

Writes ``benchmarks/results_real_data.json``, ``examples/README_real_data.md`` (tables and the paired
tests) and ``examples/real_data.png``. Usage: ``python benchmarks/bench_real_data.py [--quick]``.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_ROWS = 600
SEED = 0
N_FOLDS = 5
METHODS = ("SparseNetCV", "LassoCV", "ElasticNetCV", "MLP dense", "MLP pruned", "HistGB")


# ------------------------------------------------------------------------------------------------
# Data sets: (X, y) as float arrays; categorical columns one-hot encoded
# ------------------------------------------------------------------------------------------------
def _sm(name):
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data


def _frame_xy(frame, target, drop=()):
    import pandas as pd

    frame = frame.drop(columns=list(drop)).dropna()
    y = frame.pop(target).to_numpy(dtype=float)
    X = pd.get_dummies(frame, drop_first=True, dtype=float).to_numpy(dtype=float)
    return X, y


def load_datasets():
    """name -> (X, y, description)."""
    import pandas as pd
    from sklearn.datasets import load_diabetes

    out = {}
    X, y = load_diabetes(return_X_y=True)
    out["diabetes"] = (X, y, "disease progression ~ 10 clinical features (sklearn)")
    out["fair"] = (*_frame_xy(_sm("fair"), "affairs"), "time in affairs ~ 8 survey answers (statsmodels)")
    out["randhie"] = (*_frame_xy(_sm("randhie"), "mdvis"), "doctor visits ~ 9 insurance/health (statsmodels)")
    star = _sm("star98")
    star = star.assign(share=star["NABOVE"] / (star["NABOVE"] + star["NBELOW"])).drop(columns=["NABOVE", "NBELOW"])
    out["star98"] = (*_frame_xy(star, "share"), "share of pupils above median ~ 20 school features (statsmodels)")
    grunfeld = _sm("grunfeld").astype({"firm": str})
    out["grunfeld"] = (*_frame_xy(grunfeld, "invest"), "investment ~ value, capital, year, firm (statsmodels)")
    out["anes96"] = (*_frame_xy(_sm("anes96"), "PID", drop=["vote"]), "party identification ~ 9 survey items (statsmodels)")
    sun = _sm("sunspots")["SUNACTIVITY"].to_numpy(dtype=float)
    lags = 8
    out["sunspots"] = (np.column_stack([sun[lags - j - 1: len(sun) - j - 1] for j in range(lags)]), sun[lags:],
                       "yearly sunspot number ~ previous 8 years (statsmodels)")
    macro = _sm("macrodata").drop(columns=["year", "quarter", "realint"])  # realint = tbilrate - infl
    out["macrodata"] = (*_frame_xy(macro, "infl"), "US inflation ~ 10 quarterly macro series (statsmodels)")
    from vega_datasets import local_data

    cars = local_data.cars().drop(columns=["Name"])
    cars["Year"] = pd.to_datetime(cars["Year"]).dt.year.astype(float)
    out["cars"] = (*_frame_xy(cars, "Miles_per_Gallon"), "fuel economy ~ 6 car features + origin (vega_datasets)")
    weather = local_data.seattle_weather()
    day = pd.to_datetime(weather.pop("date"))
    weather["doy_sin"] = np.sin(2 * np.pi * day.dt.day_of_year / 365.25)
    weather["doy_cos"] = np.cos(2 * np.pi * day.dt.day_of_year / 365.25)
    weather["year"] = day.dt.year.astype(float)
    out["seattle_weather"] = (*_frame_xy(weather, "temp_max"), "daily max temperature ~ weather of the day (vega_datasets)")

    rng = np.random.default_rng(SEED)
    for name, (X, y, text) in list(out.items()):
        if len(y) > MAX_ROWS:
            keep = np.sort(rng.choice(len(y), MAX_ROWS, replace=False))
            out[name] = (X[keep], y[keep], text)
    return out


# ------------------------------------------------------------------------------------------------
# Methods
# ------------------------------------------------------------------------------------------------
def _scaled(model):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(make_pipeline(StandardScaler(), model), transformer=StandardScaler())


def _mlp(k):
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(k,), early_stopping=True, max_iter=500, random_state=SEED)


def _pruned_finetuned(mlp_pipe, X, y, n_keep):
    """Magnitude-prune the fitted MLP's two weight matrices jointly to ``n_keep`` weights, then refit the
    kept weights and all biases with L-BFGS on the standardized training data."""
    from sparsenet.activations import get_activation
    from sparsenet.netfit import Network, fit_network

    pipe = mlp_pipe.regressor_
    scaler, mlp = pipe[0], pipe[-1]
    Xs = scaler.transform(X)
    ys = mlp_pipe.transformer_.transform(y[:, None])
    W1, W2 = mlp.coefs_
    flat = np.abs(np.concatenate([W1.ravel(), W2.ravel()]))
    n_keep = min(int(n_keep), flat.size)
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:n_keep]] = True
    mask1, mask2 = keep[:W1.size].reshape(W1.shape), keep[W1.size:].reshape(W2.shape)
    d, k = W1.shape
    net0 = Network(W=W1 * mask1, c=mlp.intercepts_[0].copy(), V=W2 * mask2, B=np.zeros((d, 1)),
                   b=mlp.intercepts_[1].copy())
    free = Network(W=mask1, c=np.ones(k, bool), V=mask2, B=np.zeros((d, 1), bool), b=np.ones(1, bool))
    relu = get_activation("relu")
    # sklearn's MLP minimizes ½·mean(r²) + α/(2n)·‖w‖²; netfit's penalty is ½·α'·‖w‖², so α' = α/n.
    net, _ = fit_network(Xs, ys, net0, free, relu, alpha=mlp.alpha / len(y), max_iter=500)

    def predict(X_new):
        out = net.decision(scaler.transform(X_new), relu)
        return mlp_pipe.transformer_.inverse_transform(out).ravel()

    return predict, int(np.count_nonzero(net.W) + np.count_nonzero(net.V))


def run_fold(X_tr, y_tr, X_te, y_te, quick=False, skip=()):
    """One outer fold: {method: (r2, nonzeros, seconds, extra)}; methods in ``skip`` are not run."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import ElasticNetCV, LassoCV
    from sklearn.metrics import r2_score

    from sparsenet.estimator import SparseNetRegressorCV

    res = {}
    t = time.perf_counter()
    ours = SparseNetRegressorCV(n_hidden=(4, 8) if quick else (4, 8, 16), cv=3, max_weight_fraction=0.25,
                                random_state=SEED).fit(X_tr, y_tr)
    est = ours.estimator_
    res["SparseNetCV"] = (r2_score(y_te, ours.predict(X_te)), est.n_weights_, time.perf_counter() - t,
                          {"n_hidden": ours.n_hidden_, "sparsity": ours.sparsity_})
    k = ours.n_hidden_
    d = X_tr.shape[1]
    for name, model, nnz in (
        ("LassoCV", lambda: _scaled(LassoCV(cv=5, random_state=SEED)), lambda m: np.count_nonzero(m.regressor_[-1].coef_)),
        ("ElasticNetCV", lambda: _scaled(ElasticNetCV(l1_ratio=[0.1, 0.5, 0.9], cv=5, random_state=SEED)),
         lambda m: np.count_nonzero(m.regressor_[-1].coef_)),
        ("MLP dense", lambda: _scaled(_mlp(k)), lambda m: d * k + k),
        ("HistGB", lambda: HistGradientBoostingRegressor(random_state=SEED), lambda m: -1),
    ):
        if name in skip:
            continue
        t = time.perf_counter()
        fitted = model().fit(X_tr, y_tr)
        secs = time.perf_counter() - t
        res[name] = (r2_score(y_te, fitted.predict(X_te)), int(nnz(fitted)), secs, {})
        if name == "MLP dense":
            t = time.perf_counter()
            predict, n_pruned = _pruned_finetuned(fitted, X_tr, y_tr, est.n_weights_)
            res["MLP pruned"] = (r2_score(y_te, predict(X_te)), n_pruned, secs + time.perf_counter() - t, {})
    return res


def run(quick=False, reuse=None):
    """All data sets and folds. ``reuse``: earlier records whose methods are not rerun (they do not depend
    on SparseNetCV: the linear models and HistGB; same data, folds and seeds give the same numbers)."""
    from sklearn.model_selection import KFold

    records = []
    skip = sorted({r["method"] for r in reuse or []})
    datasets = load_datasets()
    for name, (X, y, text) in datasets.items():
        t0 = time.perf_counter()
        folds = KFold(N_FOLDS, shuffle=True, random_state=SEED).split(X)
        for fold, (tr, te) in enumerate(folds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLP convergence warnings, dummy-column conditioning
                res = run_fold(X[tr], y[tr], X[te], y[te], quick=quick, skip=skip)
            res.update({r["method"]: (r["r2"], r["nnz"], r["seconds"], {}) for r in reuse or []
                        if r["dataset"] == name and r["fold"] == fold})
            for method, (r2, nnz, secs, extra) in res.items():
                records.append(dict(dataset=name, n=len(y), d=X.shape[1], fold=fold, method=method, r2=float(r2),
                                    nnz=int(nnz), seconds=float(secs), **extra))
        ours = [r for r in records if r["dataset"] == name and r["method"] == "SparseNetCV"]
        print(f"{name:16s} n={len(y):5d} d={X.shape[1]:3d}  ours R² {np.mean([r['r2'] for r in ours]):.3f}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    return records, {name: (len(y), X.shape[1], text) for name, (X, y, text) in datasets.items()}


# ------------------------------------------------------------------------------------------------
# Statistics and report
# ------------------------------------------------------------------------------------------------
def _per_dataset(records, method, key="r2"):
    names = sorted({r["dataset"] for r in records})
    return names, np.array([np.mean([r[key] for r in records if r["dataset"] == n and r["method"] == method])
                            for n in names])


def _bootstrap_median_ci(diff, rng, n_boot=10000):
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    meds = np.median(diff[idx], axis=1)
    return np.percentile(meds, [2.5, 97.5])


def compare(records, other, rng):
    """Paired comparison of SparseNetCV with ``other`` over data sets (mean R² over the 5 folds each)."""
    from scipy.stats import binomtest, wilcoxon

    names, ours = _per_dataset(records, "SparseNetCV")
    _, theirs = _per_dataset(records, other)
    diff = ours - theirs
    tie = np.abs(diff) < 1e-3  # R² differences below 0.001 count as ties (noise of the fits)
    wins, losses = int(np.sum((diff > 0) & ~tie)), int(np.sum((diff < 0) & ~tie))
    p_wil = float(wilcoxon(ours, theirs).pvalue) if np.any(diff != 0) else 1.0
    p_sign = float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
    # Per-fold sign test: 5 folds × data sets, paired on the same test fold.
    fold_diff = np.array([
        [r["r2"] for r in records if r["method"] == "SparseNetCV" and r["dataset"] == n and r["fold"] == f][0]
        - [r["r2"] for r in records if r["method"] == other and r["dataset"] == n and r["fold"] == f][0]
        for n in names for f in range(N_FOLDS)])
    fw, fl = int(np.sum(fold_diff > 1e-3)), int(np.sum(fold_diff < -1e-3))
    return dict(other=other, median_diff=float(np.median(diff)), ci=_bootstrap_median_ci(diff, rng).tolist(),
                wins=wins, losses=losses, ties=int(tie.sum()), p_wilcoxon=p_wil, p_sign=p_sign,
                fold_wins=fw, fold_losses=fl,
                p_fold_sign=float(binomtest(fw, fw + fl).pvalue) if fw + fl else 1.0,
                diffs=dict(zip(names, diff.round(4).tolist())))


def report(records, info):
    rng = np.random.default_rng(SEED)
    names = sorted(info)
    lines = ["# Sparse networks on real data (produced by `python benchmarks/bench_real_data.py`)", ""]
    lines += [f"{len(names)} public regression data sets that install with a package, shuffled 5-fold CV "
              f"(seed {SEED}), the same folds for every method; at most {MAX_ROWS} rows per set (seeded "
              "subsample). SparseNetCV = `SparseNetRegressorCV` (hidden sizes 4/8/16 × kept fractions "
              "1/2…1/16, inner 3-fold CV on the training fold only, candidates limited to ≤ 25 % of the "
              "weights of the dense network of the same hidden size). MLP dense has the hidden size "
              "SparseNetCV chose on that fold; MLP pruned is it magnitude-pruned to SparseNetCV's nonzero "
              "count and fine-tuned. See the benchmark's docstring for every setting.", ""]
    lines += ["## Test R² (mean over 5 folds) and nonzero weights (mean)", ""]
    header = "| data set | n | d | " + " | ".join(METHODS) + " | ours: k, kept, % of dense |"
    lines += [header, "|" + "---|" * (len(METHODS) + 4)]
    for n in names:
        row = [n, str(info[n][0]), str(info[n][1])]
        for m in METHODS:
            rs = [r for r in records if r["dataset"] == n and r["method"] == m]
            r2 = np.mean([r["r2"] for r in rs])
            nnz = np.mean([r["nnz"] for r in rs])
            row.append(f"{r2:.3f}" + ("" if m == "HistGB" else f" ({nnz:.0f})"))
        ours = [r for r in records if r["dataset"] == n and r["method"] == "SparseNetCV"]
        dense = [r["nnz"] for r in records if r["dataset"] == n and r["method"] == "MLP dense"]
        frac = np.mean([o["nnz"] / dn for o, dn in zip(ours, dense)])
        ks = "/".join(str(o["n_hidden"]) for o in ours)
        ps = "/".join(f"{o['sparsity']:g}" for o in ours)
        row.append(f"k {ks}; p {ps}; {100 * frac:.0f} %")
        lines.append("| " + " | ".join(row) + " |")
    med = {m: float(np.median(_per_dataset(records, m)[1])) for m in METHODS}
    secs = {m: float(np.median([r["seconds"] for r in records if r["method"] == m])) for m in METHODS}
    lines.append("| **median R²** | | | " + " | ".join(f"**{med[m]:.3f}**" for m in METHODS) + " | |")
    lines.append("| median fit time (s) | | | " + " | ".join(f"{secs[m]:.2f}" for m in METHODS) + " | |")
    lines += ["", "Nonzeros in parentheses (multiplicative weights; biases not counted). Ours' share of the "
              "dense MLP's d·k + k weights is per fold, averaged.", ""]
    lines += ["## Paired comparison of SparseNetCV with each method", "",
              "Over data sets: difference of mean test R² (ours − theirs), median with a 95 % bootstrap "
              "interval (10,000 resamples of data sets), wins/losses/ties (|diff| < 0.001 is a tie), "
              "Wilcoxon signed-rank and sign test p-values (two-sided). Per fold: sign test over the "
              f"{len(names) * N_FOLDS} (data set, fold) pairs.", "",
              "| vs | median ΔR² [95 % CI] | wins / losses / ties | Wilcoxon p | sign p | "
              "fold wins / losses | fold sign p |", "|---|---|---|---|---|---|---|"]
    comps = [compare(records, m, rng) for m in METHODS if m != "SparseNetCV"]
    for c in comps:
        lines.append(f"| {c['other']} | {c['median_diff']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] | "
                     f"{c['wins']} / {c['losses']} / {c['ties']} | {c['p_wilcoxon']:.3f} | {c['p_sign']:.3f} | "
                     f"{c['fold_wins']} / {c['fold_losses']} | {c['p_fold_sign']:.3f} |")
    lines += ["", "Per data set ΔR² (ours − theirs):", "",
              "| data set | " + " | ".join(c["other"] for c in comps) + " |", "|---|" + "---|" * len(comps)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{c['diffs'][n]:+.3f}" for c in comps) + " |")
    return "\n".join(lines) + "\n", comps, med


def plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for r in records})
    fig, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(3.2 * ((len(names) + 1) // 2), 6.4))
    markers = dict(zip(METHODS, "o^vsDP"))
    for ax, n in zip(axes.ravel(), names):
        for m in METHODS:
            if m == "HistGB":
                r2 = np.mean([r["r2"] for r in records if r["dataset"] == n and r["method"] == m])
                ax.axhline(r2, color="gray", ls="--", lw=1, label=m)
                continue
            rs = [r for r in records if r["dataset"] == n and r["method"] == m]
            ax.scatter([r["nnz"] for r in rs], [r["r2"] for r in rs], marker=markers[m], s=18, alpha=0.7, label=m)
        ax.set_xscale("log")
        ax.set_title(n, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6)
    fig.supxlabel("nonzero weights (log)")
    fig.supylabel("test R² (each point one fold)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def diagnose(names):
    """Where SparseNetCV loses: on the same outer folds, (a) SparseNetCV without the 25 % budget and
    (b) the best candidate of its grid *on the test fold* (an oracle: it shows whether the family holds a
    better model that the inner CV did not pick, and is never used for selection), (c) LassoCV again."""
    from sklearn.linear_model import LassoCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    from sparsenet.estimator import SparseNetRegressor, SparseNetRegressorCV
    from sparsenet.netfit import path_fractions

    datasets = load_datasets()
    rows = []
    for name in names:
        X, y, _ = datasets[name]
        out = {"budget": [], "free": [], "free_nnz": [], "oracle": [], "oracle_nnz": [], "lasso": []}
        for tr, te in KFold(N_FOLDS, shuffle=True, random_state=SEED).split(X):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = SparseNetRegressorCV(cv=3, max_weight_fraction=0.25, random_state=SEED).fit(X[tr], y[tr])
                free = SparseNetRegressorCV(cv=3, random_state=SEED).fit(X[tr], y[tr])
                lasso = _scaled(LassoCV(cv=5, random_state=SEED)).fit(X[tr], y[tr])
                best = (-np.inf, 0)
                for k in (4, 8, 16):
                    base = SparseNetRegressor(n_hidden=k, init="random", solver="lbfgs", random_state=SEED)
                    for stage in base._fit_path(X[tr], y[tr], path_fractions(0.0625)):
                        best = max(best, (r2_score(y[te], stage.predict(X[te])), stage.n_weights_))
            out["budget"].append(ours.score(X[te], y[te]))
            out["free"].append(free.score(X[te], y[te]))
            out["free_nnz"].append(free.estimator_.n_weights_)
            out["oracle"].append(best[0])
            out["oracle_nnz"].append(best[1])
            out["lasso"].append(lasso.score(X[te], y[te]))
        rows.append((name, {key: float(np.mean(val)) for key, val in out.items()}))
        print(name, rows[-1][1], flush=True)
    lines = ["", "## Where SparseNetCV loses: diagnostics on the same outer folds", "",
             "`python benchmarks/bench_real_data.py --diagnose " + ",".join(names) + "`. Mean test R² over the 5 "
             "folds. *No budget*: SparseNetCV with every candidate allowed (no 25 % limit). *Oracle*: the best "
             "stage of the grid's paths scored on the test fold itself — not a method, it only shows whether "
             "the model family holds a better model than the one the inner CV picked.", "",
             "| data set | SparseNetCV (≤ 25 %) | no budget (nonzeros) | oracle candidate (nonzeros) | LassoCV |",
             "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['budget']:.3f} | {r['free']:.3f} ({r['free_nnz']:.0f}) | "
                     f"{r['oracle']:.3f} ({r['oracle_nnz']:.0f}) | {r['lasso']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="hidden sizes 4/8 only (a smoke run)")
    parser.add_argument("--diagnose", metavar="NAMES",
                        help="comma-separated data sets: run the loss diagnostics only and append them to "
                        "examples/README_real_data.md")
    parser.add_argument("--reuse", metavar="METHODS",
                        help="comma-separated methods independent of SparseNetCV (LassoCV, ElasticNetCV, HistGB) "
                        "to take from benchmarks/results_real_data.json instead of rerunning")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    reuse = None
    if args.reuse:
        keep = set(args.reuse.split(",")) & {"LassoCV", "ElasticNetCV", "HistGB"}
        old = json.loads((ROOT / "benchmarks" / "results_real_data.json").read_text())["records"]
        reuse = [r for r in old if r["method"] in keep]

    if args.diagnose:
        with threadpool_limits(1):
            text = diagnose([n for n in args.diagnose.split(",") if n])
        print(text)
        path = ROOT / "examples" / "README_real_data.md"
        path.write_text(path.read_text().split("\n## Where SparseNetCV loses")[0].rstrip("\n") + "\n" + text)
        return

    t0 = time.perf_counter()
    with threadpool_limits(1):  # one core per process: the machines this runs on are shared
        records, info = run(quick=args.quick, reuse=reuse)
    text, comps, med = report(records, info)
    total = time.perf_counter() - t0
    text += f"\nTotal run time {total:.0f} s.\n"
    print(text)
    (ROOT / "benchmarks" / "results_real_data.json").write_text(json.dumps(
        {"records": records, "comparisons": comps, "median_r2": med}, indent=1))
    (ROOT / "examples" / "README_real_data.md").write_text(text)
    plot(records, ROOT / "examples" / "real_data.png")


if __name__ == "__main__":
    main()
