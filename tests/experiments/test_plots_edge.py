"""Edge cases of the figures' speed-ups (plots._own_ticks, plots._InView, the PNG writer), each
against matplotlib's own drawing of the same figure as the oracle (stock Tick objects, savefig)."""

import datetime
import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sparsenet.experiments import plots  # noqa: E402


def _linear(fig):
    ax = fig.subplots()
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.grid(True, alpha=0.3)


def _log(fig):
    ax = fig.subplots()
    ax.plot([1, 10, 100], [1e-3, 1, 1e3])
    ax.set(xscale="log", yscale="log")
    ax.grid(True)


def _symlog(fig):
    ax = fig.subplots()
    ax.plot(np.linspace(-100, 100, 5), np.linspace(-1e3, 1e3, 5))
    ax.set(xscale="symlog", yscale="symlog")


def _logit(fig):
    ax = fig.subplots()
    ax.plot([1, 2, 3], [0.001, 0.5, 0.999])
    ax.set_yscale("logit")


def _inverted(fig):
    ax = fig.subplots()
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_xlim(2, 0)
    ax.invert_yaxis()


def _sharex(fig):
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot([0, 1, 2], [1, 3, 2])
    bottom.plot([0, 5], [0, 1])


def _sharey(fig):
    left, right = fig.subplots(1, 2, sharey=True)
    left.plot([0, 1, 2], [1, 3, 2])
    right.plot([0, 5], [0, 10])


def _single_x(fig):
    fig.subplots().plot([3.0], [2.0], "o")


def _nan(fig):
    ax = fig.subplots()
    ax.plot([0, 1, 2, 3], [1, np.nan, 3, 2])
    ax.plot([0, 1], [np.nan, np.nan])


def _offset_text(fig):
    fig.subplots().plot([1e5, 1e5 + 1], [1e-5, 2e-5])


def _tiny_and_huge(fig):
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [1e-12, 3e-12])
    right.plot([0, 1], [1e12, 3e12])
    right.set_yscale("log")


def _categorical(fig):
    fig.subplots().plot(["a", "bb", "ccc"], [1, 2, 3])


def _twinx(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.twinx().plot([0, 1], [10, 30], "r")


def _ticks_top_right(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.xaxis.tick_top()
    ax.yaxis.tick_right()


def _ticks_both_sides(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.tick_params(top=True, right=True, labeltop=True, labelright=True)


def _colorbar(fig):
    ax = fig.subplots()
    fig.colorbar(ax.imshow(np.arange(12).reshape(3, 4)))


def _dates(fig):
    import matplotlib.dates as mdates

    ax = fig.subplots()
    days = [datetime.datetime(2024, 1, 1) + datetime.timedelta(hours=h) for h in range(0, 60, 10)]
    ax.plot(days, range(6))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _label_style(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.minorticks_on()
    ax.grid(True, which="both")
    ax.tick_params(direction="inout", length=8, colors="r", labelsize=14, labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_alpha(0.3)


def _hidden_axes(fig):
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1])
    left.yaxis.set_visible(False)
    right.plot([0, 1], [0, 1])
    right.set_axis_off()


def _one_major_in_view(fig):  # AutoMinorLocator spaces the minor ticks by two major ticks
    from matplotlib.ticker import AutoMinorLocator, MultipleLocator

    ax = fig.subplots()
    ax.plot([0, 1], [0.95, 1.04])
    ax.yaxis.set_major_locator(MultipleLocator(0.1))
    ax.yaxis.set_minor_locator(AutoMinorLocator())


def _polar(fig):
    fig.add_subplot(projection="polar").plot([0, 1, 2], [1, 2, 3])


CASES = [_linear, _log, _symlog, _logit, _inverted, _sharex, _sharey, _single_x, _nan, _offset_text,
         _tiny_and_huge, _categorical, _twinx, _ticks_top_right, _ticks_both_sides, _colorbar, _dates,
         _label_style, _hidden_axes, _one_major_in_view, _polar]


def _render(build, mode):
    fig = Figure(figsize=(4, 3), dpi=60)
    FigureCanvasAgg(fig)
    build(fig)
    if mode == "in view":  # as plots._fixed_layout does
        plots._ticks_in_view(fig)
    if mode in ("own", "in view"):
        for ax in fig.axes:
            plots._own_ticks(ax)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3]


@pytest.mark.parametrize("mode", ["own", "in view"])
@pytest.mark.parametrize("build", CASES, ids=[f.__name__[1:] for f in CASES])
def test_own_ticks_draw_matplotlibs_pixels(build, mode):
    """_own_ticks (alone, and after _ticks_in_view) draws the pixels of matplotlib's own Tick objects,
    or leaves an axis it cannot draw the same to matplotlib."""
    ours, stock = _render(build, mode), _render(build, "stock")
    differ = np.abs(ours.astype(int) - stock).max(axis=-1) > 0
    assert not differ.any(), f"{differ.sum()} pixels differ"


def _labelled(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1000])
    ax.set_xlabel("x label")
    ax.set_ylabel("y label")


def _labelled_twin(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    twin = ax.twinx()
    twin.plot([0, 1], [10, 30], "r")
    twin.set_ylabel("right label")


def _title_over_top_labels(fig):
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1000])
    ax.xaxis.tick_top()
    ax.set_title("a title")


@pytest.mark.parametrize("build", [_labelled, _labelled_twin, _title_over_top_labels],
                         ids=["labels", "twin label", "title"])
def test_own_ticks_leave_labels_and_titles_where_matplotlib_puts_them(build):
    """An axis label or a title that matplotlib places from the tick labels' extents is drawn where
    it is drawn with matplotlib's Tick objects, not over the tick labels (pixels as the stock figure)."""
    ours, stock = _render(build, "in view"), _render(build, "stock")
    differ = np.abs(ours.astype(int) - stock).max(axis=-1) > 0
    assert not differ.any(), f"{differ.sum()} pixels differ"


# -------------------------------------------------------------------------- odd experiments
def _rec(method, x, metrics, *, protocol="blind", seed=0, history=None):
    return {"run_key": f"{protocol}-{method}-{x}-{seed}", "experiment": "odd", "protocol": protocol,
            "method": method, "x": x, "seed": seed, "status": "ok", "error": None, "metrics": metrics,
            "history": history or {}, "wall_time": 0.1, "params": {}}


def _config(values, x="thresh_train", metrics=("recovery_error",), **extra):
    return {"experiment": {"name": "odd", "title": "T", "x": x, "values": list(values), "metrics": list(metrics),
                           "protocols": ["blind", "report"], "trials": 3, **extra},
            "methods": [{"label": "tensor"}, {"label": "random"}]}


def _drawn_x(fig):
    """x of every point drawn in data coordinates on the panels (points, medians, error bars)."""
    out = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_transform() == ax.transData and len(line.get_xdata()):
                out.append(np.asarray(line.get_xdata(), dtype=float))
    return np.concatenate(out)


@pytest.mark.parametrize("values, xscale, near", [([0.05], None, 0.1), ([3], None, 0.1), ([1e-3, 1e-2, 1e-1], "log", 1.0)],
                         ids=["one x", "one integer x", "log x"])
def test_points_are_drawn_at_their_swept_value(values, xscale, near):
    """Every point of a 1-D sweep is drawn beside its own x: within ``near`` x 100 % of it (the
    jitter and the methods' slots). With one swept value the slots were 0.6 wide in x's units
    (0.05 drawn at -0.1 and 0.2); on a log axis they were a share of the smallest linear gap (1e-3
    drawn at a negative x, which a log axis cannot show)."""
    extra = {"xscale": xscale} if xscale else {}
    recs = [_rec(m, x, {"recovery_error": 0.1 * (s + 1), "exact_support": 1}, seed=s, protocol=p)
            for m in ("tensor", "random") for x in values for s in range(3) for p in ("blind", "report")]
    fig = plots.plot_experiment(_config(values, **extra), recs)
    drawn = _drawn_x(fig)
    nearest = np.asarray(values, dtype=float)[np.abs(drawn[:, None] - np.asarray(values)).argmin(axis=1)]
    assert drawn.size >= 4 * 3 * 2 and np.all(drawn > 0)
    assert np.all(np.abs(drawn - nearest) <= near * nearest), sorted(set(drawn.round(4)))
    for ax in fig.axes:
        lo, hi = sorted(ax.get_xlim())
        assert all(lo < v < hi for v in values)
        if len(values) == 1:  # the one value in the middle of every panel
            assert (lo + hi) / 2 == pytest.approx(values[0])


def test_a_history_of_one_epoch_is_drawn():
    """A history experiment with one epoch value (epochs = 0: the loss at initialization only) shows
    every run and the median as a visible mark at epoch 0 (a one-point line has no ink)."""
    values = {"tensor": [11.5, 11.7, 11.6], "random": [20.0, 21.0, 22.0]}
    recs = [_rec(m, None, {}, seed=s, protocol=p, history={"train_loss": [v]})
            for m, vs in values.items() for s, v in enumerate(vs) for p in ("blind", "report")]
    fig = plots.plot_experiment(_config((), x="epoch", metrics=("train_loss",)), recs)
    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
        assert len(lines) == 2 * (3 + 1)  # each run and the median of each method
        assert all(ln.get_marker() not in (None, "", " ", "None") and ln.get_markersize() > 0 for ln in lines)
        medians = sorted(ln.get_ydata()[0] for ln in lines if ln.get_linewidth() > 1)
        assert medians == pytest.approx(sorted(np.median(v) for v in values.values()))


@pytest.mark.parametrize("xs, ys", [([400], [0.5]), ([300, 400], [0.25, 0.5]), ([400], [0.1, 0.2, 0.3]),
                                    ([100, 200, 300, 400, 500, 600], [0.5])])
def test_small_phase_transition_grids_keep_their_texts_inside_and_apart(xs, ys):
    """A 2-D sweep of one or two values per axis: every panel (with its axis labels), the colour
    bar's label and the title inside the figure, none overlapping (the panel was sized to its grid
    alone: the y label ran beyond the figure's top and across the title)."""
    from sparsenet.experiments.plot_contours import plot_success_contours
    from test_plots import _boxes_apart

    cfg = {"experiment": {"name": "pt", "title": "tiny phase transition", "x": "n", "values": xs, "y": "p_gt",
                          "y_values": ys, "trials": 2, "protocols": ["blind"]},
           "methods": [{"label": "IHT top-p"}]}
    recs = [{"protocol": "blind", "method": "IHT top-p", "status": "ok", "params": {"n": x, "p_gt": y},
             "metrics": {"recovery_error": 1e-6 if s else 0.5}} for x in xs for y in ys for s in range(2)]
    for fig in (plots.plot_phase_transition(cfg, recs), plot_success_contours(cfg, recs)):
        _boxes_apart(fig)
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:  # the axis labels too (get_tightbbox of a colour bar leaves its label out)
            for label in (ax.xaxis.label, ax.yaxis.label):
                if label.get_text():
                    box = label.get_window_extent(renderer)
                    assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, (label.get_text(), box)
                    assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, (label.get_text(), box)


@pytest.mark.parametrize("values", [[0.05, 0.15], ["relu2", "tanh"]], ids=["numeric", "categorical"])
def test_notes_of_all_failed_values_stay_inside_their_panel(values):
    """Where every run failed, the note ("all 2 runs failed") is drawn inside its panel, clear of the
    y tick labels (it was centred on the outermost x, half beyond the panel's left edge, over the
    labels: the report of an experiment whose runs all failed)."""
    recs = [dict(_rec(m, x, {}, seed=s, protocol="blind"), status="failed", error="diverged")
            for m in ("tensor", "random") for x in values for s in range(2)]
    cfg = _config(values, x="activation" if isinstance(values[0], str) else "thresh_train")
    cfg["experiment"]["protocols"] = ["blind"]
    fig = plots.plot_experiment(cfg, recs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        ticks = [t.get_window_extent(renderer) for t in plots._tick_texts(ax, "y")]
        for note in ax.texts:
            if "runs failed" not in note.get_text() or note.get_bbox_patch() is None:
                continue
            box = note.get_bbox_patch().get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, (note.get_text(), box, frame)
            assert not any(box.overlaps(t) for t in ticks)
            checked += 1
    assert checked == 2 * 2  # one panel (no success row without a recovery error): 2 x values x 2 methods


def test_log_axis_reaches_the_resolution_only_where_its_line_is_drawn():
    """A log y axis goes down to the metric's resolution only in a panel that draws the resolution
    line (data within 10x of it); otherwise it starts at a third of the smallest value (losses of 1-30
    were drawn on an axis down to 3e-11, ten empty decades under the data, with no line there)."""
    from sparsenet.experiments.aggregate import resolution

    cfg = _config((), x="epoch", metrics=("train_loss",))
    losses = {"tensor": [[30.0, 12.0, 3.0], [25.0, 10.0, 2.0]], "random": [[28.0, 20.0, 15.0], [26.0, 18.0, 1.0]]}
    recs = [_rec(m, None, {}, seed=s, protocol=p, history={"train_loss": h})
            for m, hs in losses.items() for s, h in enumerate(hs) for p in ("blind", "report")]
    fig = plots.plot_experiment(cfg, recs)
    smallest = min(min(h) for hs in losses.values() for h in hs)
    for ax in fig.axes:
        assert ax.get_yscale() == "log" and not any("resolution" in t.get_text() for t in ax.texts)
        assert ax.get_ylim()[0] == pytest.approx(smallest / 3)
    res = resolution(_config([0.0, 0.1]), "recovery_error")
    recs = [_rec(m, x, {"recovery_error": v}, seed=s, protocol=p) for m in ("tensor", "random") for x in (0.0, 0.1)
            for s, v in enumerate((5 * res, 0.5, 0.2)) for p in ("blind", "report")]
    fig = plots.plot_experiment(_config([0.0, 0.1]), recs)
    ax = fig.axes[0]
    assert any("resolution" in t.get_text() for t in ax.texts) and ax.get_ylim()[0] == pytest.approx(res / 3)
