"""Figures of the experiments, drawn from stored records only (STYLE.md 3.14).

``plot_experiment(config, records)`` returns a :class:`matplotlib.figure.Figure` with one row of
panels per metric and one column per protocol (blind | report); ``save_figure`` writes it as PNG and
SVG.  Nothing here runs an experiment: a figure can be remade from the store at any time.

What a panel shows (honest for bimodal outcomes such as "exact recovery or failure"):

* every run as a point, jittered sideways (a history: every run as a thin curve);
* the median over trials as a line and the interquartile range as a band, a failed or non-finite run
  counting as the worst value (so a band reaching the top edge says that a quarter or more failed);
* failed and non-finite runs as marks at the top edge with their count, never left out silently, and
  per method under the panel (the figure's key, under its title, names every method once);
  a log axis is never given an error bar through zero;
* the metric's resolution as a dashed line (values below it are exact, docs/EXPERIMENT_SCHEMA.md);
* on recovery-error figures, an extra row: the success probability P(exact recovery) per x with its
  Wilson 95 % interval.
"""

from __future__ import annotations

import os
import struct
import textwrap
import zlib
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: figures are only written to files

import numpy as np  # noqa: E402

from matplotlib import ticker as mticker  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sparsenet.experiments.aggregate import (  # noqa: E402
    _xsort,
    aggregate,
    config_field,
    experiment_methods,
    experiment_protocols,
    init_not_applicable,
    is_history_metric,
    per_trial,
    resolution,
    run_counts,
    trials_text,
)
from sparsenet.experiments.canvas import new_figure  # noqa: E402
from sparsenet.experiments.claims import wilson_interval  # noqa: E402

__all__ = ["plot_experiment", "plot_phase_transition", "success_probability", "save_figure",
           "figure_stem", "METRIC_LABELS", "X_LABELS"]

#: y-axis label (with unit) and short panel title of each metric.
METRIC_LABELS = {
    "recovery_error": ("relative recovery error ‖Ŵ − W*‖ / ‖W*‖ (Frobenius norms)", "Recovery error"),
    "init_recovery_error": ("relative error at init. ‖W₀ − W*‖ / ‖W*‖ (Frobenius norms)",
                            "Recovery error of the initialization"),
    "pct_true_negative": ("true negatives (%)", "% true negatives"),
    "pct_true_positive": ("true positives (%)", "% true positives"),
    "exact_support": ("exact support recovered (fraction of runs)", "Exact support recovery"),
    "exact_recovery": ("P(exact recovery): error ≤ resolution and exact support", "Success probability"),
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


#: metrics that are fractions or percentages: always a linear axis (a log axis would hide the zeros)
_RATE_METRICS = frozenset({"exact_support", "exact_recovery", "sign_failure", "pct_true_negative",
                           "pct_true_positive"})


class _PlainLogFormatter(mticker.LogFormatter):
    """Log-axis tick labels as plain numbers (``0.001``, ``2``): no mathtext to lay out."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


class _InView(mticker.Locator):
    """The ticks of ``base`` inside the axis' view only.

    Matplotlib makes a tick (five artists) for every location its locator returns, also for those
    beyond the ends of the axis that are never drawn: a log locator adds a decade on each side, a
    linear one a step. Ticks are most of a figure's drawing cost; the drawn ones stay the same. With
    fewer than two in view all are kept (the formatter's precision depends on them).
    """

    def __init__(self, base, major=None):
        self.base = base
        self.major = major  # a minor locator's axis' own major locator (e.g. for AutoMinorLocator)

    def set_axis(self, axis):
        super().set_axis(axis)
        self.base.set_axis(axis)

    def tick_values(self, vmin, vmax):
        return self.base.tick_values(vmin, vmax)

    def _base_locs(self):
        if self.major is None:
            return self.base()
        # a minor locator that reads the major ticks (AutoMinorLocator: the step between the first
        # two) sees all of them, as without _InView, not only those in view
        ticker = self.axis.major
        in_view, ticker.locator = ticker.locator, self.major
        try:
            return self.base()
        finally:
            ticker.locator = in_view

    def __call__(self):
        locs = np.asarray(self._base_locs(), dtype=float)
        if locs.size == 0:
            return locs
        transform = self.axis.get_transform()
        lo, hi = sorted(transform.transform(np.asarray(self.axis.get_view_interval(), dtype=float)))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = transform.transform(locs)
        tol = 1e-10 * (hi - lo)  # matplotlib's own closeness test of a tick to the view's ends
        keep = (t >= lo - tol) & (t <= hi + tol)
        # with fewer than two in view, all: a formatter sets its precision from two or more (1.0, not 1)
        return locs[keep] if keep.sum() >= 2 else locs


def _ticks_in_view(fig):
    """Every axis of ``fig`` draws only the ticks in its view (:class:`_InView`)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            major = axis.get_major_locator()
            if isinstance(major, _InView):  # a shared axis: its locators are already wrapped
                continue
            axis.set_major_locator(_InView(major))
            axis.set_minor_locator(_InView(axis.get_minor_locator(), major))


_TICK_GID = {"x": "xtick", "y": "ytick"}  # gid of the tick labels drawn by _own_ticks


def _tick_texts(ax, axis: str = "x") -> list:
    """The tick label texts drawn on ``ax``'s ``axis`` ("x" or "y"), major then minor: those of
    :func:`_own_ticks`, or matplotlib's own where it draws them."""
    own = [t for t in ax.texts if t.get_gid() == _TICK_GID[axis]]
    if own:
        return own
    return [t for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()) if t.get_text()]


def _own_ticks(ax) -> None:
    """Draw the ticks of ``ax`` (marks, labels, grid lines) as a few artists of its own.

    Matplotlib makes a :class:`~matplotlib.axis.Tick` per location (five artists with their
    properties, ~2 ms each; most of a figure's cost after the text) and measures every tick label at
    every draw. Here, once the view is final, each axis' major and minor locations in view (as
    matplotlib's ``Axis._update_ticks`` selects them) and labels come from its own locator and
    formatter, and become one line of grid segments, one line of tick markers per side (bottom/left,
    top/right) and a text per label, styled and placed as the axis' own first tick (its pad, marker,
    font, grid style); the axis then gets a :class:`~matplotlib.ticker.NullLocator`.

    An axis keeps matplotlib's ticks where they could not be drawn the same: its formatter has an
    offset text (e.g. "1e-5", drawn by matplotlib beside the axis), it is shared with another axes
    (they share one locator), it is hidden (or the axes is off), or the axes is not rectilinear (polar);
    matplotlib places its label (or a title above labels on top) from its tick labels' extents (place
    the label first, e.g. with :func:`_place_axis_labels`; a title with ``y=1``).
    """
    from matplotlib.text import Text
    from matplotlib.transforms import TransformedPatchPath, _interval_contains_close

    if ax.name != "rectilinear" or not ax.axison:
        return
    # marks and labels are not clipped (clip_on=False); given a clip path, add_artist does not build
    # one per artist (the axes patch's transforms, ~20 % of this function's time)
    unclipped = {"clip_on": False, "clip_path": TransformedPatchPath(ax.patch)}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        if not axis.get_visible() or len(ax._shared_axes[name].get_siblings(ax)) > 1:
            continue
        if axis.label.get_visible() and axis.label.get_text() and axis._autolabelpos:
            continue  # matplotlib would place the label beside its own (here: no) tick labels
        if (name == "x" and ax._autotitlepos is not False and axis.majorTicks[0].label2.get_visible()
                and any(t.get_text() for t in (ax.title, ax._left_title, ax._right_title))):
            continue  # the title goes above the tick labels on top
        view = np.sort(axis.get_transform().transform(np.asarray(axis.get_view_interval(), dtype=float)))
        groups = []
        for major in (True, False):
            locs = np.asarray(axis.get_majorticklocs() if major else axis.get_minorticklocs(), dtype=float)
            formatter = axis.get_major_formatter() if major else axis.get_minor_formatter()
            labels = formatter.format_ticks(locs)
            if major and formatter.get_offset():
                break
            with np.errstate(invalid="ignore", divide="ignore"):
                t = axis.get_transform().transform(locs) if locs.size else locs
            keep = [i for i in range(locs.size) if _interval_contains_close(view, t[i])]  # drawn ones only
            groups.append((axis.majorTicks[0] if major else axis.minorTicks[0], locs[keep],
                           [labels[i] for i in keep]))
        else:
            lim = axis.get_view_interval()
            (ax.set_xlim if name == "x" else ax.set_ylim)(*lim)  # the view stays as it was measured
            zorder = axis.get_zorder()
            for tick, locs, labels in groups:
                if not locs.size:
                    continue
                n = locs.size
                grid = tick.gridline
                if grid.get_visible():
                    across = np.tile([0.0, 1.0, np.nan], n)
                    along = np.repeat(locs, 3)
                    line = Line2D(*((along, across) if name == "x" else (across, along)),
                                  transform=grid.get_transform(), color=grid.get_color(),
                                  alpha=grid.get_alpha(), lw=grid.get_linewidth(), ls=grid.get_linestyle(),
                                  zorder=zorder)
                    ax.add_artist(line)  # clipped to the axes, as a grid line
                # each side as the tick's own artists: tick1line and label1 at 0, tick2line and label2
                # at 1 (axes fraction across the axis)
                for at, mark, label in ((0.0, tick.tick1line, tick.label1), (1.0, tick.tick2line, tick.label2)):
                    if mark.get_visible():
                        across = np.full(n, at)
                        ax.add_artist(Line2D(*((locs, across) if name == "x" else (across, locs)),
                                             transform=mark.get_transform(), ls="none",
                                             marker=mark.get_marker(), ms=mark.get_markersize(),
                                             mew=mark.get_markeredgewidth(), color=mark.get_color(),
                                             mec=mark.get_markeredgecolor(), alpha=mark.get_alpha(),
                                             zorder=zorder, **unclipped))
                    if label.get_visible():  # placed and styled as the tick's own label
                        for loc, text in zip(locs, labels):
                            if text:
                                own = Text(*((loc, at) if name == "x" else (at, loc)), text)
                                own.update_from(label)  # font, colour, alpha, alignment, rotation, transform
                                own.set(rotation_mode=label.get_rotation_mode(), zorder=zorder,
                                        gid=_TICK_GID[name], **unclipped)
                                ax.add_artist(own)
            axis.set_major_locator(mticker.NullLocator())
            axis.set_minor_locator(mticker.NullLocator())


def _excluded_note(counts, metric: str, stats=()) -> str:
    """Legend suffix: distinct failed / non-finite runs, e.g. ``[1 of 2 runs failed: the worst value]``.

    ``counts`` is the :class:`~sparsenet.experiments.report.RunCounts` of the curve (each run once,
    however many x values or epochs it spans); when the exclusions differ between x values the
    worst x is named, e.g. ``(all 2 at p_gt=0.1)``.
    """
    if counts is None or not counts.excluded:
        return ""
    text = counts.text(metric)
    per_x = [(x, s) for x, s in stats if s.n_excluded]
    if per_x and len(stats) > 1 and len({(s.n_excluded, s.n_runs) for _, s in stats}) > 1:
        full = [x for x, s in per_x if s.n_ok == 0]
        if full:
            text += " — none kept at " + ", ".join(
                f"{x:g}" if isinstance(x, float) else str(x) for x in full[:6])
            text += "…" if len(full) > 6 else ""
    return f" [{text}: the worst value]"


def _k(x):
    return float(x) if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
        else (None if x is None else str(x))


def _use_log(values: list[float], metric: str) -> bool:
    vals = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if vals.size == 0 or np.any(vals <= 0):
        return False
    span = vals.max() / vals.min()
    return span > _LOG_SPAN or (metric.endswith("loss") and span > 3.0)


def _all_failed_reasons(records, protocol, label) -> dict:
    """x -> short reason, for the x values where every run of (protocol, label) failed."""
    by_x: dict = {}
    for r in records:
        if r.get("protocol") != protocol or r.get("method") != label or r.get("status") == "missing":
            continue
        by_x.setdefault(r.get("x"), []).append(r)
    out = {}
    for x, runs in by_x.items():
        if runs and all(r.get("status", "ok") != "ok" for r in runs):
            reasons = {init_not_applicable(r.get("error")) for r in runs}
            reason = next(iter(reasons)) if len(reasons) == 1 else None
            out[x] = f"init not applicable:\n{reason}" if reason else f"all {len(runs)} runs failed"
    return out


def _positions(xs, categories):
    """Plot positions of the x values: the values themselves, or 0, 1, ... for a categorical sweep."""
    if categories:
        return np.array([categories.index(str(x)) for x in xs], dtype=float)
    return np.array(xs, dtype=float)


def _slot_unit(all_pos, log: bool = False) -> float:
    """The smallest gap between the x positions ``all_pos`` in the x axis' own space (log10 of x on
    a log axis); with one position, a tenth of its magnitude (of a decade on a log axis; 1 at 0,
    the gap of categories)."""
    u = np.unique(np.log10(all_pos) if log else all_pos)
    gaps = np.diff(u)
    if gaps.size:
        return gaps.min()
    if log:
        return 0.1
    return 0.1 * abs(u[0]) if u.size and u[0] else 1.0


def _shift(pos, delta, log: bool = False):
    """``pos`` moved by ``delta`` in the x axis' own space (log10 of x on a log axis)."""
    return 10.0 ** (np.log10(pos) + delta) if log else pos + delta


def _one_x_view(ax, all_pos, log: bool = False) -> None:
    """With one swept value, the x view centred on it, one :func:`_slot_unit` wide (the methods'
    slots and jitter take at most 0.35 of it on each side): the same in every panel."""
    if np.unique(all_pos).size == 1:
        half = 0.5 * _slot_unit(all_pos, log)
        ax.set_xlim(_shift(all_pos[0], -half, log), _shift(all_pos[0], half, log))


def _jitter(pos, all_pos, n, offset, seed, log=False):
    """Sideways jitter of ``n`` points at ``pos``: each method its own slot (``offset`` in
    [-0.5, 0.5]) within 60 % of the smallest gap between x values (:func:`_slot_unit`; in decades
    on a log axis), then a little random spread."""
    width = 0.6 * _slot_unit(all_pos, log)
    rng = np.random.default_rng(seed)
    if log:
        return _shift(pos, offset * width + rng.uniform(-0.08, 0.08, n) * width, log)
    return pos + offset * width + rng.uniform(-0.08, 0.08, n) * width


def _top_marks(ax, marks, color, dy):
    """Failed / non-finite runs: a mark at the top edge of the panel at each x, with their count."""
    trans = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
    pos = [p for p, _ in marks]
    ax.plot(pos, [0.985 - dy] * len(pos), marker="v", ms=6, color=color, transform=trans,
            clip_on=False, ls="none", gid=_MARK_GID)
    for p, count in marks:
        ax.text(p, 0.95 - dy, f"{count}✗", transform=trans, ha="center", va="top", fontsize=7,
                color=color)


def _protocol_title(protocol, first_row):
    """The protocol in a panel's title: described in the first row of panels, named in the others."""
    return PROTOCOL_TITLES.get(protocol, f"{protocol} protocol") if first_row else f"{protocol} protocol"


def _draw_panel(ax, config, records, metric, protocol, methods, colors, first_row=True):
    history = is_history_metric(metric, config)
    mine = [r for r in records if r.get("protocol") == protocol]
    table = aggregate(mine, metric, history=history, config=config)
    counts = run_counts(mine, metric, history=history, config=config)
    runs = per_trial(mine, metric, history=history, config=config)
    finite_all = [v for d in runs.values() for v in d.values() if np.isfinite(v)]
    log = metric not in _RATE_METRICS and (config_field(config, "yscale") == "log"
                                           or _use_log(finite_all, metric))
    notes = []  # (x position, text, color) for points with no value (every run failed)
    categories = [str(x) for x in sorted({k[2] for k in table}, key=_xsort) if not isinstance(x, float)]
    order = [str(v) for v in (config_field(config, "values", []) or [])]
    categories.sort(key=lambda c: order.index(c) if c in order else len(order))
    all_pos = _positions(sorted({k[2] for k in table}, key=_xsort), categories) if table else np.array([])
    # a log x axis (set below) spaces the methods' slots and the jitter in decades
    xlog = (config_field(config, "xscale") == "log" and not history and not categories
            and all_pos.size > 0 and bool(np.all(all_pos > 0)))
    # the top of the data: the band of a cell whose upper quartile is a failure reaches this edge
    # (on a log axis 1.5 decades above the data, where the failure marks go)
    top = max(finite_all) * (30.0 if log else 1.0) + (0 if log else 0.05 * (np.ptp(finite_all) or 1.0)) \
        if finite_all else 1.0
    drawn = []  # (method, its failure note) of every method drawn
    for i, label in enumerate(methods):
        rows = sorted(((key[2], s) for key, s in table.items() if key[1] == label), key=lambda t: _xsort(t[0]))
        if not rows:
            continue
        if categories:
            rows.sort(key=lambda t: categories.index(str(t[0])))
        color = colors[label]
        xs = _positions([x for x, _ in rows], categories)
        med = np.array([s.median for _, s in rows], dtype=float)
        q1 = np.array([s.q1 for _, s in rows], dtype=float)
        q3 = np.array([s.q3 for _, s in rows], dtype=float)
        note = _excluded_note(counts.get((protocol, label)), metric, rows)
        pts = runs.get((protocol, label), {})
        offset = (i - (len(methods) - 1) / 2) / max(len(methods), 2)
        if history:
            by_trial: dict = {}
            for (x, t), v in pts.items():
                by_trial.setdefault(t, []).append((x, v))
            for curve in by_trial.values():
                curve.sort()
                cx, cy = np.array(curve).T
                ok = np.isfinite(cy)
                # a one-point curve (a single epoch) has no line to draw: a mark instead
                ax.plot(cx[ok], cy[ok], color=color, lw=0.6, alpha=0.35, marker="o" if ok.sum() == 1 else None,
                        ms=3)
        else:
            reasons = _all_failed_reasons(mine, protocol, label)
            px_all, py_all, marks = [], [], []
            for (x, s), pos in zip(rows, xs):
                vals = np.array([v for (px, _), v in pts.items() if px == x], dtype=float)
                ok = np.isfinite(vals)
                px_all.append(_jitter(pos, all_pos, int(ok.sum()), offset,
                                      seed=zlib.crc32(f"{label}|{x}".encode()), log=xlog))
                py_all.append(vals[ok])
                if s.n_excluded:
                    marks.append((pos, s.n_excluded))
                if s.n_ok == 0 and s.n_failed and x in {_k(v) for v in reasons}:
                    notes.append((pos, next(t for v, t in reasons.items() if _k(v) == x), color))
                elif s.n_ok == 0 and s.n_nonfinite and not s.n_failed and categories:
                    what = "sign failure" if "recovery_error" in metric else "non-finite"
                    notes.append((pos, f"all {s.n_nonfinite} runs ∞\n({what})", color))
            ax.plot(np.concatenate(px_all), np.concatenate(py_all), ls="none", marker="o", ms=3,
                    alpha=0.5, color=color, markeredgewidth=0)
            if marks:
                _top_marks(ax, marks, color, 0.06 * (i % 3))
        ok = np.isfinite(med)
        style = {"lw": 1.6} if history else {"lw": 1.4, "marker": "D", "ms": 4}
        if history and ok.sum() == 1:
            style.update(marker="o", ms=5)
        ax.plot(xs[ok], med[ok], color=color, label=label + note, **style)
        drawn.append((label, note))
        band_ok = np.isfinite(q1)
        if band_ok.any():  # one polygon (fill_between makes the same shape at ~4x the cost)
            bx, lo_b, hi_b = xs[band_ok], q1[band_ok], np.where(np.isfinite(q3), q3, top)[band_ok]
            ax.fill(np.concatenate([bx, bx[::-1]]), np.concatenate([lo_b, hi_b[::-1]]), color=color,
                    alpha=0.18, lw=0)
    if categories:
        ax.set_xticks(range(len(categories)), categories)
    res = resolution(config, metric)
    if log:
        ax.set_yscale("log", nonpositive="clip")
        ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=True))
        low = top / 10.0
        if finite_all:
            low = min(v for v in finite_all if v > 0) if any(v > 0 for v in finite_all) else res
            if res and min(finite_all) <= 10 * res:  # down to the resolution line (drawn below)
                low = min(low, res)
            low /= 3.0
            ax.set_ylim(low, top)
        if top / low < 300:  # minor labels only on a short axis (they are most of a draw's cost)
            ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
        else:
            ax.yaxis.set_minor_formatter(mticker.NullFormatter())
        if top / low > 1e4:  # beyond four decades, no minor ticks: each is a tick object to make and
            ax.yaxis.set_minor_locator(mticker.NullLocator())  # draw (most of the ticks), none labelled
        if res > 0 and finite_all and min(finite_all) <= 10 * res:
            ax.axhline(res, color="0.4", ls="--", lw=0.9)
            ax.text(0.01, res, f" resolution {res:g} (exact below)", transform=matplotlib.transforms
                    .blended_transform_factory(ax.transAxes, ax.transData), fontsize=7, color="0.3",
                    va="bottom")
    elif finite_all and metric not in _RATE_METRICS:
        lo = min(finite_all)
        ax.set_ylim(lo - 0.05 * ((top - lo) or 1.0), top + 0.12 * ((top - lo) or 1.0))
    if metric in ("exact_support", "sign_failure", "exact_recovery"):
        ax.set_ylim(-0.05, 1.15)
    elif metric.startswith("pct_"):
        ax.set_ylim(-2.5, 112.5)
    seen: dict = {}
    for pos, text, color in notes:
        j = seen.setdefault(pos, 0)
        seen[pos] += 1
        if j > 2:
            continue
        ax.annotate(text, xy=(pos, 0.85 - 0.16 * j), xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=7, color=color,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "alpha": 0.9})
    if notes and all_pos.size and {pos for pos, _, _ in notes} & {all_pos.min(), all_pos.max()}:
        # a note centred on the outermost x stays inside the panel (plot_experiment's panel width):
        # the x margin (a share of the data's span on each side) holds half the widest note
        half = max(_text_size(line, 7)[0] for _, text, _ in notes for line in text.split("\n")) / 72 / 2 + 0.06
        share = half / (_CELL_W - 1.35)
        ax.set_xmargin(max(ax.get_xmargin(), share / (1 - 2 * share)))
    if config_field(config, "xscale") == "log" and not history and not categories:
        ax.set_xscale("log")
    if not history and not categories:
        _one_x_view(ax, all_pos, xlog)
    ylabel, title = _metric_labels(metric)
    x = "epoch" if history else config_field(config, "x", "x")
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 48)) if "$" not in ylabel else ylabel, fontsize=9)
    proto = _protocol_title(protocol, first_row)
    # A title placed at y = 1 skips matplotlib's automatic placement, which measures the y axis once
    # more per draw (~12 % of a figure's drawing; same pixels). Only a linear axis of a non-rate metric
    # can carry an offset text (e.g. "1e-5") that the automatic placement would lift the title above.
    fixed_title = {"y": 1.0} if log or metric in _RATE_METRICS else {}
    ax.set_title(_wrap_title(f"{title} — {proto}"), fontsize=10, **fixed_title)
    ax.grid(True, alpha=0.3)
    if not finite_all:
        ax.text(0.5, 0.5, "no successful run", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
    # the figure's key names the methods once (plot_experiment); a panel only adds, under its x label,
    # the methods it shows with failed or infinite runs (placed by _fixed_layout)
    noted = [label + note for label, note in drawn if note]
    if noted:
        ax.text(0.5, 0.0, "\n".join("\n".join(textwrap.wrap(t, _LEGEND_CHARS)) for t in noted),
                transform=ax.transAxes, ha="center", va="top", fontsize=8, gid=_NOTE_GID)
    return [label for label, _ in drawn]


def _draw_success(ax, config, records, protocol, methods, colors, first_row=True):
    """P(exact recovery) per x with Wilson 95 % intervals; a failed run is not a success."""
    mine = [r for r in records if r.get("protocol") == protocol]
    runs = per_trial(mine, "exact_recovery", config=config)
    keys = sorted({k[0] for d in runs.values() for k in d}, key=_xsort)
    categories = [str(x) for x in keys if not isinstance(x, float)]
    order = [str(v) for v in (config_field(config, "values", []) or [])]
    categories.sort(key=lambda c: order.index(c) if c in order else len(order))
    all_pos = _positions(keys, categories)
    xlog = (config_field(config, "xscale") == "log" and not categories and all_pos.size > 0
            and bool(np.all(all_pos > 0)))
    drawn = []
    for i, label in enumerate(methods):
        pts = runs.get((protocol, label), {})
        xs = sorted({x for x, _ in pts}, key=_xsort)
        if not xs:
            continue
        drawn.append(label)
        if categories:
            xs.sort(key=lambda x: categories.index(str(x)))
        pos = _positions(xs, categories)
        k = np.array([sum(v == 1.0 for (px, _), v in pts.items() if px == x) for x in xs])
        n = np.array([sum(1 for (px, _) in pts if px == x) for x in xs])
        lo, hi = np.array([wilson_interval(a, b) for a, b in zip(k, n)]).T
        p = k / n
        shift = (i - (len(methods) - 1) / 2) / max(len(methods), 2) * 0.6 * _slot_unit(all_pos, xlog)
        ax.errorbar(_shift(pos, shift, xlog), p, yerr=[p - lo, hi - p], color=colors[label], marker="o", ms=4,
                    lw=1.2, capsize=3, label=label)
    if categories:
        ax.set_xticks(range(len(categories)), categories)
    if config_field(config, "xscale") == "log" and not categories:
        ax.set_xscale("log")
    if not categories:
        _one_x_view(ax, all_pos, xlog)
    res = resolution(config, "recovery_error")
    ax.set_ylim(-0.05, 1.05)
    x = config_field(config, "x", "x")
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel(f"P(error ≤ {res:g} and exact support)", fontsize=9)
    proto = _protocol_title(protocol, first_row)
    ax.set_title(_wrap_title(f"Success probability (Wilson 95 % CI) — {proto}"),
                 fontsize=10, y=1.0)  # fixed y range, no offset text: skip the automatic placement
    ax.grid(True, alpha=0.3)
    return drawn


# --------------------------------------------------------------------------------------------------
# Layout at fixed margins (inches). Matplotlib's constrained layout measures every tick label and
# text of a figure before each save (a whole extra draw, about half of a figure's cost); here the
# margins follow from the number of text lines alone, so a save draws the figure once.

_CELL_W = 6.2  # width of one panel with its margins (in)
_AXES_H = 3.3  # height of the plotting area of a panel (in)
_TITLE_CHARS = 62  # a panel title (fontsize 10) wraps at this many characters
_LEGEND_CHARS = 100  # a legend entry (fontsize 8) wraps at this many characters: it fits its panel
_KEY_CHAR = 0.075  # width of a character of the figure's key (fontsize 8, in), generous
_MARK_GID = "failure-marks"  # gid of the marks of failed / infinite runs at a panel's top edge
_NOTE_GID = "panel-note"  # gid of a panel's text under its x label (failure notes), placed by _fixed_layout
_LINE = {8: 0.135, 9: 0.15, 10: 0.17, 11: 0.19, 12: 0.2}  # height of a text line of each font size (in)


def _wrap_title(text: str) -> str:
    return "\n".join(textwrap.wrap(text, _TITLE_CHARS))


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


@lru_cache(maxsize=1024)
def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height (pt) of one line of ``text`` in the default font at ``size`` points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    width, height, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return width, height


def _fit_label(text: str, inches: float, size: float) -> str:
    """``text`` wrapped into lines of at most about ``inches`` at ``size`` points (its measured width)."""
    width = _text_size(text, size)[0] / 72
    if width <= inches:
        return text
    return "\n".join(textwrap.wrap(text, max(8, int(len(text) * inches / width))))


def _place_axis_labels(fig):
    """Every axis label of ``fig`` at a fixed offset from its axis: beyond the tick labels' texts.

    Matplotlib finds that place at every draw from the bounding boxes of the tick labels, laying the
    ticks out twice more (about 7 % of a figure's drawing); here the offset is the tick length, the
    tick label pad, the labels' extent (their font metrics: the widest y tick label, the height of a
    line of x tick labels) and the label pad, as matplotlib's (within a fraction of a point).
    """
    rc = matplotlib.rcParams
    for ax in fig.axes:
        if ax.get_xlabel():
            size = matplotlib.font_manager.FontProperties(size=rc["xtick.labelsize"]).get_size_in_points()
            off = rc["xtick.major.size"] + rc["xtick.major.pad"] + _text_size("lp", size)[1] + rc["axes.labelpad"]
            ax.xaxis.set_label_coords(0.5, 0.0, transform=ax.transAxes + matplotlib.transforms.ScaledTranslation(
                0.0, -off / 72, fig.dpi_scale_trans))
        if ax.get_ylabel():
            axis = ax.yaxis
            size = matplotlib.font_manager.FontProperties(size=rc["ytick.labelsize"]).get_size_in_points()
            labels = [t.get_text() for t in ax.texts if t.get_gid() == _TICK_GID["y"]] or [*axis.get_major_formatter().format_ticks(axis.get_majorticklocs()),
                                              *axis.get_minor_formatter().format_ticks(axis.get_minorticklocs())]
            width = max((_text_size(t, size)[0] for t in labels if t), default=0.0)
            off = rc["ytick.major.size"] + rc["ytick.major.pad"] + width + rc["axes.labelpad"]
            axis.set_label_coords(0.0, 0.5, transform=ax.transAxes + matplotlib.transforms.ScaledTranslation(
                -off / 72, 0.0, fig.dpi_scale_trans))


def _fixed_layout(fig, axes, *, cell_w, axes_h, left, right, head="", head_size=12, xlabel_h=0.5,
                  extra_right=0.0, key=(), place_labels=False, own_ticks=False):
    """Size ``fig`` and place its ``axes`` (a 2-D array; removed ones skipped) at fixed margins.

    Every column is ``cell_w`` wide (``left`` and ``right`` margins around the plotting area);
    every row is as tall as its plotting area (``axes_h``) plus its titles above and its tick
    labels and x label (``xlabel_h``; 0.2 less in a row without x labels) and its panels' notes below (a text of gid ``panel-note``, centred under the x
    label), counted in text lines.
    ``head`` is the figure's title; ``key`` (``(handle, label)`` pairs) the figure's legend, in as
    many columns as fit under the title; ``extra_right`` inches are kept free on the right (a colour bar).
    Every axis then makes only the ticks it draws (:func:`_ticks_in_view`), with ``own_ticks`` as
    artists of its own (:func:`_own_ticks`); with ``place_labels`` its labels are placed once
    (:func:`_place_axis_labels`; horizontal tick labels only).
    """
    nrow, ncol = axes.shape
    alive = [[ax if ax.figure is fig and ax in fig.axes else None for ax in row] for row in axes]
    notes = {ax: t for row in alive for ax in row if ax is not None for t in ax.texts if t.get_gid() == _NOTE_GID}
    tops, bottoms, ticks_h = [], [], []
    for row in alive:
        title = max((_lines(ax.get_title()) for ax in row if ax is not None), default=0)
        size = max((ax.title.get_fontsize() for ax in row if ax is not None), default=10)
        tops.append(title * _LINE.get(round(size), size / 60) + 0.15)
        below = max((_lines(notes[ax].get_text()) * 0.135 + 0.1 for ax in row if ax in notes), default=0.0)
        ticks_h.append(xlabel_h if any(ax is not None and ax.get_xlabel() for ax in row) else xlabel_h - 0.2)
        bottoms.append(ticks_h[-1] + below + 0.1)
    width = ncol * cell_w + extra_right
    head_h = _lines(head) * _LINE.get(head_size, head_size / 60) + (0.15 if head else 0.05)
    key = list(key)
    if key:
        chars = max(len(label) for _, label in key)
        key_cols = max(1, min(len(key), int((width - 0.4) // (chars * _KEY_CHAR + 0.7))))
        key_h = -(-len(key) // key_cols) * 0.19 + 0.12
    else:
        key_h = 0.0
    height = head_h + key_h + sum(tops) + nrow * axes_h + sum(bottoms)
    fig.set_size_inches(width, height)
    y = height - head_h - key_h
    for i, row in enumerate(alive):
        y -= tops[i] + axes_h
        for j, ax in enumerate(row):
            if ax is None:
                continue
            ax.set_position([(j * cell_w + left) / width, y / height,
                             (cell_w - left - right) / width, axes_h / height])
            if ax in notes:
                notes[ax].set_y(-ticks_h[i] / axes_h)
        y -= bottoms[i]
    if head:
        fig.suptitle(head, fontsize=head_size, y=1.0 - 0.08 / height, va="top")
    if key:
        fig.legend([h for h, _ in key], [label for _, label in key], loc="upper center", ncol=key_cols,
                   bbox_to_anchor=(0.5, 1.0 - (head_h - 0.02) / height), fontsize=8, frameon=False,
                   borderaxespad=0.0, columnspacing=1.5)
    _ticks_in_view(fig)
    if place_labels:  # first: _own_ticks leaves the ticks of an axis whose label matplotlib places
        _place_axis_labels(fig)
    if own_ticks:
        for ax in fig.axes:
            _own_ticks(ax)


def plot_experiment(config, records) -> matplotlib.figure.Figure:
    """Draw one experiment: a panel per (metric, protocol), metrics as rows, protocols as columns.

    A figure with ``recovery_error`` among its metrics (and no history x) gets one more row: the
    success probability P(exact recovery) with Wilson 95 % intervals.

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
    if ("recovery_error" in metrics and "exact_recovery" not in metrics
            and config_field(config, "x") != "epoch"
            and any((r.get("metrics") or {}).get("recovery_error") is not None for r in records)):
        metrics.append("exact_recovery")
    protocols = experiment_protocols(config, records)
    methods = experiment_methods(config, records)
    cmap = matplotlib.colormaps["tab10"]
    colors = {m: cmap(i % 10) for i, m in enumerate(methods)}
    if len(protocols) == 1 and len(metrics) > 1:
        panels = [(metric, protocols[0]) for metric in metrics]
        ncol = 2
        nrow = (len(panels) + 1) // 2
    else:  # metrics as rows, protocols as columns (blind | report)
        panels = [(metric, protocol) for metric in metrics for protocol in protocols]
        nrow, ncol = len(metrics), len(protocols)
    fig = new_figure()
    axes = fig.subplots(nrow, ncol, squeeze=False)
    flat = axes.ravel()
    shown: set = set()
    history = False
    for i, (ax, (metric, protocol)) in enumerate(zip(flat, panels)):
        if metric == "exact_recovery":
            shown.update(_draw_success(ax, config, records, protocol, methods, colors, i < ncol))
        else:
            shown.update(_draw_panel(ax, config, records, metric, protocol, methods, colors, i < ncol))
            history = history or is_history_metric(metric, config)
    # one key for the whole figure: each method's colour and median line, named once
    style = {"lw": 1.6} if history else {"lw": 1.4, "marker": "D", "ms": 4}
    key = [(Line2D([], [], color=colors[m], **style), m) for m in methods if m in shown]
    if any(line.get_gid() == _MARK_GID for ax in fig.axes for line in ax.lines):  # explained once
        key.append((Line2D([], [], color="0.3", marker="v", ms=6, ls="none"),
                    "n✗ at the top: n runs failed or infinite (worst value)"))
    for ax in flat[len(panels):]:
        fig.delaxes(ax)
    margin = max(ax.get_xmargin() for ax in flat[:len(panels)])  # a panel's notes may widen its margins:
    for ax in flat[:len(panels)]:  # the same x at the same place in every panel of a column
        ax.set_xmargin(margin)
    # at most 6 steps on a linear x axis (matplotlib's default allows 9 on a panel this wide): each
    # tick is a tick object, a label and a grid line to make and draw
    for ax in fig.axes:
        if ax.get_xscale() == "linear" and type(ax.xaxis.get_major_locator()) is mticker.AutoLocator:
            ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    # an axis label said once: the x label under the lowest panel of a column, the y label left of the
    # first panel of a row, where the neighbouring panels' labels are the same (tick labels stay on all)
    for i in range(nrow):
        for j in range(ncol):
            ax = axes[i, j]
            below = axes[i + 1, j] if i + 1 < nrow else None
            if ax.figure is fig and below is not None and below in fig.axes and below.get_xlabel() == ax.get_xlabel():
                ax.set_xlabel("")
    for i in range(nrow):
        for j in range(ncol - 1, 0, -1):
            ax, left = axes[i, j], axes[i, j - 1]
            if ax in fig.axes and left in fig.axes and left.get_ylabel() == ax.get_ylabel():
                ax.set_ylabel("")
    figure = config_field(config, "figure")
    title = config_field(config, "title") or config_field(config, "name", "")
    head = f"Fig. {int(figure)}: {title}" if figure is not None else str(title)
    trials = config_field(config, "trials")
    if trials is not None:
        head += f"  (every run shown; line: median, band: interquartile range over {trials_text(trials)})"
    head = "\n".join(textwrap.wrap(head, 62 * ncol))  # fits the figure's width at fontsize 12
    _fixed_layout(fig, axes, cell_w=_CELL_W, axes_h=_AXES_H, left=1.05, right=0.3, head=head, key=key,
                  place_labels=True, own_ticks=True)
    return fig


# --------------------------------------------------------------------------------------------------
# 2-D sweeps (phase transitions): success probability heat maps


def _grid_values(config, records, key, field_name):
    values = list(config_field(config, field_name, []) or [])
    if not values:
        values = sorted({r["params"][key] for r in records if key in (r.get("params") or {})})
    return values


def success_probability(config, records):
    """Success probability of a 2-D sweep per (protocol, method), computed from stored records.

    A run succeeds when its ``recovery_error`` is below the experiment's ``success_threshold``
    (default 1e-2); a failed run (raised, diverged) counts as a failure; runs not stored are ignored.

    Returns
    -------
    xs, ys : list
        The swept values of ``x`` and ``y`` (config order).
    table : dict
        ``(protocol, method) -> (P, N)``: arrays of shape (len(ys), len(xs)), the success fraction
        (NaN where no run is stored) and the number of runs counted.
    """
    x, y = config_field(config, "x"), config_field(config, "y")
    threshold = float(config_field(config, "success_threshold", 1e-2))
    xs = _grid_values(config, records, x, "values")
    ys = _grid_values(config, records, y, "y_values")
    ix = {float(v): i for i, v in enumerate(xs)}
    iy = {float(v): i for i, v in enumerate(ys)}
    table = {}
    for r in records:
        if r.get("status") not in ("ok", "failed"):
            continue
        p = r.get("params") or {}
        i, j = iy.get(float(p.get(y, np.nan))), ix.get(float(p.get(x, np.nan)))
        if i is None or j is None:
            continue
        key = (r.get("protocol"), r.get("method"))
        if key not in table:
            table[key] = (np.zeros((len(ys), len(xs))), np.zeros((len(ys), len(xs)), dtype=int))
        hits, counts = table[key]
        error = (r.get("metrics") or {}).get("recovery_error")
        ok = r["status"] == "ok" and error is not None and np.isfinite(error) and error < threshold
        hits[i, j] += ok
        counts[i, j] += 1
    out = {}
    for key, (hits, counts) in table.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            out[key] = (np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), counts)
    return xs, ys, out


def plot_phase_transition(config, records) -> matplotlib.figure.Figure:
    """Heat map of the success probability over the 2-D grid (x, y), with the 50% contour.

    One panel per (method, protocol): methods as rows, protocols as columns. The axes are the grid
    points evenly spaced and labelled by their values; the white line is the 50% contour.

    Parameters
    ----------
    config : dict or object
        A 2-D experiment definition (``x``, ``values``, ``y``, ``y_values``, ``success_threshold``).
    records : list of dict
        Its stored records.

    Returns
    -------
    matplotlib.figure.Figure
    """
    records = list(records)
    xs, ys, table = success_probability(config, records)
    protocols = [p for p in experiment_protocols(config, records) if any(k[0] == p for k in table)] or ["blind"]
    methods = [m for m in experiment_methods(config, records) if any(k[1] == m for k in table)] or [""]
    x, y = config_field(config, "x"), config_field(config, "y")
    threshold = float(config_field(config, "success_threshold", 1e-2))
    nrow, ncol = len(methods), len(protocols)
    # a panel of a small grid still holds its axis labels (wrapped to its sides)
    axes_w, axes_h = max(0.55 * len(xs), 1.5), max(0.45 * len(ys) + 0.6, 1.5)
    xlabel, ylabel = _fit_label(X_LABELS.get(x, x), axes_w + 1.0, 10), _fit_label(X_LABELS.get(y, y), axes_h, 9)
    more_left = 0.15 * (_lines(ylabel) - 1)
    fig = new_figure()
    axes = fig.subplots(nrow, ncol, squeeze=False)
    image = None
    for i, method in enumerate(methods):
        for j, protocol in enumerate(protocols):
            ax = axes[i, j]
            P, N = table.get((protocol, method), (np.full((len(ys), len(xs)), np.nan), None))
            image = ax.imshow(np.ma.masked_invalid(P), origin="lower", aspect="auto", vmin=0.0, vmax=1.0,
                              cmap="viridis", interpolation="nearest")
            for (a, b), value in np.ndenumerate(P):
                if np.isfinite(value):
                    ax.text(b, a, f"{value:.2f}".lstrip("0") if value < 1 else "1", ha="center", va="center",
                            fontsize=7, color="white" if value < 0.5 else "black")
            finite = np.isfinite(P)
            if min(P.shape) >= 2 and finite.any() and np.nanmin(P) < 0.5 < np.nanmax(P):
                ax.contour(np.arange(len(xs)), np.arange(len(ys)), np.where(finite, P, 0.0), levels=[0.5],
                           colors="white", linewidths=2.0)
            ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs], rotation=45 if len(xs) > 8 else 0)
            ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel, fontsize=9)
            head = "\n".join(textwrap.wrap(str(method), 48))
            ax.set_title(f"{head}\n{protocol} protocol", fontsize=9, y=1.0)  # no offset text on a heat map
    title = config_field(config, "title") or config_field(config, "name", "")
    trials = config_field(config, "trials")
    head = str(title) + (f"  (fraction of {trials_text(trials)}; white line: 50%)" if trials else "")
    head = "\n".join(textwrap.wrap(head, max(40, int(ncol * (axes_w + 1.3 + more_left) / 0.09))))
    _fixed_layout(fig, axes, cell_w=axes_w + 1.3 + more_left, axes_h=axes_h, left=1.05 + more_left, right=0.25,
                  head=head, head_size=11, xlabel_h=(0.75 if len(xs) > 8 else 0.5) + 0.17 * (_lines(xlabel) - 1),
                  extra_right=1.1)
    # the colour bar beside the panels, as tall as the first to the last row of plotting areas
    first, last = axes[0, -1].get_position(), axes[-1, -1].get_position()
    width = fig.get_figwidth()
    cax = fig.add_axes([last.x1 + 0.3 / width, last.y0, 0.18 / width, first.y1 - last.y0])
    fig.colorbar(image, cax=cax, label=_fit_label(f"P(recovery error < {threshold:g})",
                                                  (first.y1 - last.y0) * fig.get_figheight(), 10))
    return fig


def _png_bytes(rgba: np.ndarray, dpi: float) -> bytes:
    """``rgba`` (height x width x 4, uint8) as PNG: rows unfiltered, zlib level 3, with the dpi and
    the Software tag matplotlib writes.

    Pillow (what matplotlib's ``savefig`` calls) tries every PNG filter on every row before
    compressing: ~4x the time of this writer on the report's figures, for files ~8 % smaller.
    """
    h, w, _ = rgba.shape
    raw = np.empty((h, 1 + 4 * w), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None on every row
    raw[:, 1:] = rgba.reshape(h, 4 * w)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ppm = round(dpi / 0.0254)  # pixels per metre
    software = f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/".encode("latin-1")
    return b"".join([b"\x89PNG\r\n\x1a\n",
                     chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)),  # 8-bit RGBA
                     chunk(b"tEXt", b"Software\0" + software),
                     chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)),
                     chunk(b"IDAT", zlib.compress(raw.tobytes(), 3)),
                     chunk(b"IEND", b"")])


def save_figure(fig, out_dir, stem: str, *, svg: bool = False) -> tuple[Path, Path | None]:
    """Write ``fig`` as ``out_dir/stem.png`` (120 dpi) and, with ``svg``, ``out_dir/stem.svg``.

    Returns the two paths (the second None without ``svg``; a stale ``stem.svg`` of an earlier
    report is then removed, so that no SVG disagrees with its PNG). The same figure gives the same
    bytes: no timestamp, a fixed SVG hash salt. An SVG costs about as much as the PNG again (a second
    draw); the report links and inlines only the PNG.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg_path = out / f"{stem}.png", out / f"{stem}.svg"
    # written to a temporary name and renamed: a kill mid-write never leaves a truncated figure
    tmp_png, tmp_svg = out / f".{stem}.png.tmp", out / f".{stem}.svg.tmp"
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    with matplotlib.cbook._setattr_cm(fig, dpi=120):  # as savefig(dpi=120): the same pixels
        canvas.draw()
        tmp_png.write_bytes(_png_bytes(np.asarray(canvas.buffer_rgba()), fig.dpi))
    if svg:  # text kept as text (smaller, faster than glyph outlines)
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": stem}):
            fig.savefig(tmp_svg, format="svg", metadata={"Date": None})
        os.replace(tmp_svg, svg_path)
    elif svg_path.exists():
        svg_path.unlink()
    os.replace(tmp_png, png)
    return png, (svg_path if svg else None)
