"""Figures of the experiments, drawn from stored records only (STYLE.md 3.14).

``plot_experiment(config, records)`` returns a :class:`matplotlib.figure.Figure` with one row of
panels per metric and one column per protocol (blind | report); ``save_figure`` writes it as PNG and
SVG.  Nothing here runs an experiment: a figure can be remade from the store at any time.

Each curve is the mean over trials with ± one standard deviation (error bars for a sweep, a band for
per-epoch histories).  Failed runs and non-finite values (an infinite recovery error marks a sign
failure) are left out of the mean and counted in the legend entry of the panel they belong to.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: figures are only written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sparsenet.experiments.report import (  # noqa: E402
    _xsort,
    aggregate,
    config_field,
    experiment_methods,
    experiment_protocols,
    is_history_metric,
)

__all__ = ["plot_experiment", "save_figure", "figure_stem", "METRIC_LABELS", "X_LABELS"]

#: y-axis label (with unit) and short panel title of each metric.
METRIC_LABELS = {
    "recovery_error": (r"relative recovery error $\|\hat W - W^*\|_F \,/\, \|W^*\|_F$",
                       "Recovery error"),
    "init_recovery_error": (r"relative error at init. $\|W_0 - W^*\|_F \,/\, \|W^*\|_F$",
                            "Recovery error of the initialization"),
    "pct_true_negative": ("true negatives (%)", "% true negatives"),
    "pct_true_positive": ("true positives (%)", "% true positives"),
    "exact_support": ("exact support recovered (fraction of runs)", "Exact support recovery"),
    "sign_failure": ("sign failures (fraction of runs)", "Sign failures"),
    "test_mse": ("test loss (MSE)", "Test MSE"),
    "test_rel_mse": ("relative test MSE (MSE / Var y)", "Relative test MSE"),
    "train_loss": ("training loss (MSE)", "Training loss"),
    "test_loss": ("test loss (MSE)", "Test loss"),
    "nnz": ("nonzero weights in W (count)", "Nonzeros"),
    "tp": ("true positives (count)", "True positives"),
    "tn": ("true negatives (count)", "True negatives"),
    "fa": ("false alarms (count)", "False alarms"),
    "md": ("missed detections (count)", "Missed detections"),
    "wall_time": ("wall time per run (s)", "Wall time"),
}

#: x-axis label (with unit) of each swept setting.
X_LABELS = {
    "epoch": "epoch (0 = at initialization)",
    "thresh_train": "IHT threshold thresh_train (|weight|, dimensionless)",
    "p_train": "IHT kept fraction p_train (fraction of weights)",
    "thresh_gt": "ground-truth threshold thresh_gt (|weight|, dimensionless)",
    "p_gt": "ground-truth kept fraction p_gt (fraction of weights)",
    "n": "training samples n (count)",
    "d": "input dimension d (count)",
    "k": "hidden units k (count)",
    "noise_sd": "label noise standard deviation σ (units of y)",
    "kappa": "condition number κ of W*",
    "pretrain_epochs": "dense pre-training epochs (count)",
    "epochs": "training epochs (count)",
    "learning_rate": "learning rate",
    "batch_size": "minibatch size (samples)",
}

PROTOCOL_TITLES = {
    "blind": "blind protocol (only X, y reach the algorithm)",
    "report": "report protocol (the report's code: v = v*, split moments)",
}

_LOG_SPAN = 30.0  # use a log y-axis when the plotted values span more than this factor


def figure_stem(config) -> str:
    """File stem of an experiment's figure, with the report's figure number when it has one.

    ``fig04_recovery_error_vs_thresh_train``; an extra sweep without a number gets its name,
    e.g. ``noise_recovery_error_vs_noise_sd``.
    """
    figure = config_field(config, "figure")
    name = str(config_field(config, "name", "experiment"))
    prefix = f"fig{int(figure):02d}" if figure is not None else name
    metrics = "_".join(config_field(config, "metrics", []) or ["metric"])
    x = config_field(config, "x", "x")
    return f"{prefix}_{metrics}_vs_{x}"


def _metric_labels(metric: str) -> tuple[str, str]:
    return METRIC_LABELS.get(metric, (metric.replace("_", " "), metric.replace("_", " ")))


def _excluded_note(stats) -> str:
    failed = sum(s.n_failed for s in stats)
    nonfinite = sum(s.n_nonfinite for s in stats)
    parts = []
    if failed:
        parts.append(f"{failed} failed")
    if nonfinite:
        parts.append(f"{nonfinite} infinite (sign failure)")
    return f" [excluded: {', '.join(parts)}]" if parts else ""


def _use_log(values: list[float], metric: str) -> bool:
    vals = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if vals.size == 0 or np.any(vals <= 0):
        return False
    span = vals.max() / vals.min()
    return span > _LOG_SPAN or (metric.endswith("loss") and span > 3.0)


def _draw_panel(ax, config, records, metric, protocol, methods, colors):
    history = is_history_metric(metric, config)
    table = aggregate([r for r in records if r.get("protocol") == protocol], metric,
                      history=history)
    plotted = []
    categories = [str(x) for x in sorted({k[2] for k in table}, key=_xsort)
                  if not isinstance(x, float)]
    order = [str(v) for v in (config_field(config, "values", []) or [])]
    categories.sort(key=lambda c: order.index(c) if c in order else len(order))
    for label in methods:
        rows = sorted(((key[2], s) for key, s in table.items() if key[1] == label),
                      key=lambda t: t[0])
        if not rows:
            continue
        if all(isinstance(x, float) for x, _ in rows):
            xs = np.array([x for x, _ in rows], dtype=float)
        else:  # a categorical sweep (e.g. activation): evenly spaced, labelled ticks
            rows.sort(key=lambda t: categories.index(str(t[0])))
            xs = np.arange(len(categories), dtype=float)[[categories.index(str(x))
                                                          for x, _ in rows]]
        mean = np.array([s.mean for _, s in rows], dtype=float)
        std = np.array([s.std for _, s in rows], dtype=float)
        ok = np.isfinite(mean)
        note = _excluded_note([s for _, s in rows])
        if history:
            # one curve per record; the band is ± one standard deviation over trials
            ax.plot(xs[ok], mean[ok], color=colors[label], lw=1.6, label=label + note)
            ax.fill_between(xs[ok], (mean - std)[ok], (mean + std)[ok], color=colors[label],
                            alpha=0.2, lw=0)
        else:
            ax.errorbar(xs[ok], mean[ok], yerr=std[ok], color=colors[label], marker="o", ms=4,
                        lw=1.4, capsize=3, elinewidth=1.0, label=label + note)
        plotted.extend(mean[ok].tolist())
        plotted.extend((mean + std)[ok].tolist())
    if categories:
        ax.set_xticks(range(len(categories)), categories)
    # the config's yscale = "log" forces a log axis; the default ("linear") lets the data decide
    if config_field(config, "yscale") == "log" or _use_log(plotted, metric):
        ax.set_yscale("log", nonpositive="clip")
    if config_field(config, "xscale") == "log" and not history and not categories:
        ax.set_xscale("log")
    ylabel, title = _metric_labels(metric)
    x = "epoch" if history else config_field(config, "x", "x")
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 48)) if "$" not in ylabel else ylabel,
                  fontsize=9)
    proto = PROTOCOL_TITLES.get(protocol, f"{protocol} protocol")
    ax.set_title(f"{title} — " + "\n".join(textwrap.wrap(proto, 44)), fontsize=10)
    ax.grid(True, alpha=0.3)
    if not plotted:
        ax.text(0.5, 0.5, "no successful run", transform=ax.transAxes, ha="center",
                va="center", color="0.4")
    if ax.get_legend_handles_labels()[0]:
        # below the axes so it never hides the data; constrained layout makes room for it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=8, frameon=False,
                  ncol=1)


def plot_experiment(config, records) -> matplotlib.figure.Figure:
    """Draw one experiment: a panel per (metric, protocol), metrics as rows, protocols as columns.

    Parameters
    ----------
    config : dict or object
        The experiment definition (docs/EXPERIMENT_SCHEMA.md), as the parsed TOML dict or an object
        with the same fields.
    records : list of dict
        Stored records of this experiment.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; write it with :func:`save_figure`.
    """
    records = list(records)
    metrics = list(config_field(config, "metrics", []) or [])
    if not metrics:
        raise ValueError("The experiment config has no 'metrics' to plot.")
    protocols = experiment_protocols(config, records)
    methods = experiment_methods(config, records)
    cmap = plt.get_cmap("tab10")
    colors = {m: cmap(i % 10) for i, m in enumerate(methods)}
    nrow, ncol = len(metrics), len(protocols)
    legend_h = 0.25 * len(methods) + 0.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, (4.2 + legend_h) * nrow),
                             squeeze=False, layout="constrained")
    for i, metric in enumerate(metrics):
        for j, protocol in enumerate(protocols):
            _draw_panel(axes[i, j], config, records, metric, protocol, methods, colors)
    figure = config_field(config, "figure")
    title = config_field(config, "title") or config_field(config, "name", "")
    head = f"Fig. {int(figure)}: {title}" if figure is not None else str(title)
    trials = config_field(config, "trials")
    if trials is not None:
        head += f"  (mean ± std over {trials} trials)"
    fig.suptitle(head, fontsize=12)
    return fig


def save_figure(fig, out_dir, stem: str) -> tuple[Path, Path]:
    """Write ``fig`` as ``out_dir/stem.png`` (120 dpi) and ``out_dir/stem.svg``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    fig.savefig(png, dpi=120)
    fig.savefig(svg)
    return png, svg
