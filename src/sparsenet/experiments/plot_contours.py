"""One figure with every method's 50 % success contour of a 2-D sweep, with 95 % Wilson bands.

Reads stored records only (through :func:`sparsenet.experiments.plots.success_probability`).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from sparsenet.experiments.canvas import new_figure  # noqa: E402
from sparsenet.experiments.claims import _normal_quantile  # noqa: E402
from sparsenet.experiments.plots import (  # noqa: E402
    X_LABELS, _fit_label, _fixed_layout, _lines, config_field, success_probability)

__all__ = ["plot_success_contours", "wilson_bounds"]


def wilson_bounds(P, N, confidence=0.95):
    """Elementwise Wilson score interval of success fractions ``P`` over ``N`` trials (NaN where N = 0).

    .. math:: \\frac{\\hat p + z^2/2N \\pm z\\sqrt{\\hat p(1-\\hat p)/N + z^2/4N^2}}{1 + z^2/N}
    """
    P = np.asarray(P, dtype=float)
    N = np.asarray(N, dtype=float)
    z = _normal_quantile(0.5 + confidence / 2)  # tabulated at 95 %: no scipy.special import
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (P + z * z / (2 * N)) / (1 + z * z / N)
        half = z * np.sqrt(P * (1 - P) / N + z * z / (4 * N * N)) / (1 + z * z / N)
    bad = N <= 0
    return np.where(bad, np.nan, centre - half), np.where(bad, np.nan, centre + half)


def plot_success_contours(config, records, *, level=0.5, protocol="blind", confidence=0.95):
    """Each method's ``level`` success contour over the (x, y) grid of a 2-D sweep, on one axis.

    Solid line: the contour of the measured success fraction; dashed lines: the contours of the
    lower and upper Wilson bounds (``confidence``), i.e. where the fraction is significantly
    above / below ``level`` point by point. Methods whose fraction never crosses ``level`` are named
    in the legend with the side they stay on.

    Parameters
    ----------
    config : dict or object
        A 2-D experiment definition (``x``, ``values``, ``y``, ``y_values``, ``success_threshold``).
    records : list of dict
        Its stored records.
    level : float, default=0.5
    protocol : str, default="blind"
    confidence : float, default=0.95

    Returns
    -------
    matplotlib.figure.Figure
    """
    xs, ys, table = success_probability(config, list(records))
    methods = [m for (p, m) in table if p == protocol]
    fig = new_figure()
    axes = fig.subplots(1, 1, squeeze=False)
    ax = axes[0, 0]
    colors = matplotlib.colormaps["tab10"].colors
    handles = []
    gx, gy = np.arange(len(xs)), np.arange(len(ys))
    for i, method in enumerate(methods):
        P, N = table[(protocol, method)]
        color = colors[i % len(colors)]
        finite = np.isfinite(P)
        crosses = min(P.shape) >= 2 and finite.any() and np.nanmin(P) < level < np.nanmax(P)
        label = str(method)
        if crosses:
            ax.contour(gx, gy, np.where(finite, P, 0.0), levels=[level], colors=[color], linewidths=2.0)
            lo, hi = wilson_bounds(P, N, confidence)
            for bound in (lo, hi):
                if np.nanmin(bound) < level < np.nanmax(bound):
                    ax.contour(gx, gy, np.where(finite, bound, 0.0), levels=[level], colors=[color],
                               linewidths=0.8, linestyles="dashed")
        elif finite.any():
            lo_p, hi_p = np.nanmin(P), np.nanmax(P)
            label += (f" (no {level:.0%} crossing: always {'above' if lo_p > level else 'below'})" if lo_p > level
                      or hi_p < level else f" (no {level:.0%} crossing: range {lo_p:.0%}–{hi_p:.0%})")
        handles.append(Line2D([], [], color=color, lw=2.0, label=label))
    handles.append(Line2D([], [], color="grey", lw=0.8, ls="dashed",
                          label=f"{confidence:.0%} Wilson bounds at {level:.0%}"))
    x, y = config_field(config, "x"), config_field(config, "y")
    ax.set_xticks(gx, [f"{v:g}" for v in xs], rotation=45 if len(xs) > 8 else 0)
    ax.set_yticks(gy, [f"{v:g}" for v in ys])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    axes_h = 0.4 * len(ys) + 2.2
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel(_fit_label(X_LABELS.get(y, y), axes_h, 10))  # wrapped to the panel's height
    more_left = 0.17 * (_lines(ax.get_ylabel()) - 1)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best")
    threshold = float(config_field(config, "success_threshold", 1e-2))
    title = config_field(config, "title") or config_field(config, "name", "")
    ax.set_title(f"{title}\n{level:.0%} contour of P(recovery error < {threshold:g}), {protocol} protocol",
                 fontsize=10, y=1.0)
    _fixed_layout(fig, axes, cell_w=0.5 * len(xs) + 4.5 + more_left, axes_h=axes_h, left=1.15 + more_left, right=0.3,
                  xlabel_h=0.75 if len(xs) > 8 else 0.5)
    return fig
