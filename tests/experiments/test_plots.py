"""Figures: files, panels, every run drawn, failures marked, the success-probability row."""

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from sparsenet.experiments.plots import _tick_texts, figure_stem, plot_experiment, save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

INF = float("inf")


def rec(method, x, metrics, *, protocol="blind", seed=0, status="ok", history=None):
    return {"run_key": f"{protocol}-{method}-{x}-{seed}", "experiment": "figXX",
            "protocol": protocol, "method": method, "x": x, "seed": seed, "status": status,
            "error": None, "metrics": metrics, "history": history or {}, "wall_time": 0.1,
            "params": {}}


def config(metrics=("recovery_error",), figure=4, x="thresh_train", values=(0.0, 0.1, 0.2)):
    return {"experiment": {"name": f"fig{figure:02d}", "figure": figure, "title": "T", "x": x,
                           "values": list(values), "metrics": list(metrics),
                           "protocols": ["blind", "report"], "trials": 2},
            "methods": [{"label": "tensor"}, {"label": "random"}]}


def records(values=(0.0, 0.1, 0.2)):
    out = []
    for p in ("blind", "report"):
        for m, off in (("tensor", 0.0), ("random", 0.1)):
            for x in values:
                for s in range(2):
                    out.append(rec(m, x, {"recovery_error": 0.1 + off + x + 0.01 * s,
                                          "pct_true_negative": 50.0 + 100 * x},
                                   protocol=p, seed=s))
    return out


def test_save_figure_writes_png_and_svg_with_figure_number(tmp_path):
    cfg = config()
    fig = plot_experiment(cfg, records())
    stem = figure_stem(cfg)
    assert stem == "fig04_recovery_error_vs_thresh_train"
    png, svg = save_figure(fig, tmp_path, stem, svg=True)
    assert png.name == "fig04_recovery_error_vs_thresh_train.png" and svg.suffix == ".svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:2000]
    # without svg (the default) only the PNG is written, and the SVG of an earlier save is removed
    png2, none = save_figure(fig, tmp_path, stem)
    plt.close(fig)
    assert none is None and png2 == png and not svg.exists()
    assert [p.name for p in tmp_path.iterdir()] == [png.name]


def test_saved_png_has_the_pixels_and_dpi_of_matplotlibs_savefig(tmp_path):
    """save_figure's own PNG writer, read back by Pillow, equals matplotlib's savefig(dpi=120)."""
    from PIL import Image

    cfg = config(metrics=("recovery_error", "pct_true_negative"), figure=8)
    fig = plot_experiment(cfg, records())
    png, _ = save_figure(fig, tmp_path, "ours")
    fig.savefig(tmp_path / "stock.png", dpi=120)
    ours, stock = Image.open(png), Image.open(tmp_path / "stock.png")
    assert ours.mode == stock.mode == "RGBA" and ours.size == stock.size
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(stock))
    assert ours.info["dpi"] == pytest.approx(stock.info["dpi"]) and ours.info["dpi"][0] == pytest.approx(120, abs=0.02)
    assert ours.info["Software"] == stock.info["Software"]
    assert fig.dpi == matplotlib.rcParams["figure.dpi"]  # the figure's own dpi is restored


def test_saved_figures_are_byte_identical_when_redrawn(tmp_path):
    cfg = config(metrics=("recovery_error", "pct_true_negative"), figure=8)
    out = []
    for sub in ("a", "b"):
        fig = plot_experiment(cfg, records())
        out.append([p.read_bytes() for p in save_figure(fig, tmp_path / sub, figure_stem(cfg), svg=True)])
        plt.close(fig)
    assert out[0][0] == out[1][0]  # PNG
    assert out[0][1] == out[1][1]  # SVG: no timestamp


def test_one_panel_per_metric_and_protocol_with_titles():
    cfg = config(metrics=("recovery_error", "pct_true_negative"), figure=8)
    fig = plot_experiment(cfg, records())
    axes = fig.get_axes()
    assert len(axes) == 6  # recovery error, % true negatives, then the success probability row
    titles = [ax.get_title() for ax in axes]
    assert sum("blind" in t for t in titles) == 3 and sum("report" in t for t in titles) == 3
    assert "%" in axes[2].get_ylabel() and axes[4].get_xlabel().startswith("IHT threshold")
    # each axis label said once: the x label under a column's lowest panel, the y label left of a row
    assert [bool(ax.get_xlabel()) for ax in axes] == [False] * 4 + [True] * 2
    assert [bool(ax.get_ylabel()) for ax in axes] == [True, False] * 3
    assert all(t.startswith("Success probability") for t in titles[4:])
    labels = axes[0].get_legend_handles_labels()[1]
    assert labels == ["tensor", "random"]
    plt.close(fig)


def test_config_as_object():
    exp = SimpleNamespace(**config()["experiment"])
    cfg = SimpleNamespace(experiment=exp, methods=[SimpleNamespace(label="tensor")])
    fig = plot_experiment(cfg, records())
    assert len(fig.get_axes()) == 4
    plt.close(fig)


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label().startswith(label))


def test_failed_and_infinite_runs_are_the_worst_value_and_marked_at_the_top():
    recs = records()
    recs.append(rec("tensor", 0.1, {"recovery_error": INF}, seed=5))
    recs.append(rec("tensor", 0.2, {}, seed=6, status="failed"))
    fig = plot_experiment(config(), recs)
    ax = fig.get_axes()[0]
    label = ax.get_legend_handles_labels()[1][0]
    assert "1 of 8 runs failed" in label and "1 of 8 runs infinite" in label
    median = _line(ax, "tensor").get_ydata()
    # the median counts the bad run as the worst value: np.median([0.2, 0.21, +inf]) = 0.21
    assert median[1] == pytest.approx(np.median([0.2, 0.21, INF]))
    assert median[2] == pytest.approx(np.median([0.3, 0.31, INF]))
    # every finite run is drawn as a point, the two bad ones as marks at the top edge with a count
    points = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert sum(len(ln.get_ydata()) for ln in points) == 12
    assert sorted(t.get_text() for t in ax.texts if "✗" in t.get_text())[:2] == ["1✗", "1✗"]
    assert ax.get_legend_handles_labels()[1][1] == "random"  # nothing excluded: no note
    plt.close(fig)


def test_no_band_or_bar_through_zero_on_a_log_axis():
    recs = [rec(m, x, {"recovery_error": v}, seed=s, protocol=p)
            for m in ("tensor", "random") for x in (0.0, 0.1, 0.2) for s, v in enumerate((1e-6, 0.5, 2e-6))
            for p in ("blind", "report")]
    fig = plot_experiment(config(), recs)
    ax = fig.get_axes()[0]
    assert ax.get_yscale() == "log"
    bands = [patch.get_path().vertices for patch in ax.patches if patch.get_alpha() == 0.18]
    assert len(bands) == 2  # the interquartile band of each method
    for vertices in bands:
        assert np.all(vertices[:, 1] > 0)
    plt.close(fig)


def test_success_probability_row_has_wilson_intervals():
    from scipy.stats import binomtest

    recs = [rec("tensor", x, {"recovery_error": 1e-6 if s < 2 else 0.3, "exact_support": 1}, seed=s,
                protocol=p) for x in (0.0, 0.1, 0.2) for s in range(5) for p in ("blind", "report")]
    fig = plot_experiment(config(), recs)
    ax = fig.get_axes()[2]
    assert ax.get_title().startswith("Success probability")
    bars = next(c for c in ax.containers if c.get_label() == "tensor")
    assert list(bars.lines[0].get_ydata()) == pytest.approx([0.4, 0.4, 0.4])
    ci = binomtest(2, 5).proportion_ci(method="wilson")
    segs = bars.lines[2][0].get_segments()
    assert sorted(segs[0][:, 1]) == pytest.approx([ci.low, ci.high])
    plt.close(fig)


def test_history_metrics_plot_against_epoch_on_log_scale(tmp_path):
    cfg = config(metrics=("train_loss", "test_loss"), figure=3, x="epoch", values=())
    recs = [rec(m, None, {}, seed=s, protocol=p,
                history={"train_loss": [a * 0.5 ** e for e in range(11)],
                         "test_loss": [1.1 * a * 0.5 ** e for e in range(11)]})
            for p in ("blind", "report") for m, a in (("tensor", 1.0), ("random", 10.0))
            for s in range(2)]
    fig = plot_experiment(cfg, recs)
    axes = fig.get_axes()
    assert len(axes) == 4
    assert all(ax.get_yscale() == "log" for ax in axes)
    assert "epoch" in axes[2].get_xlabel() and "MSE" in axes[0].get_ylabel()
    assert list(axes[0].get_lines()[0].get_xdata()) == list(range(11))
    png, _ = save_figure(fig, tmp_path, figure_stem(cfg))
    assert png.name.startswith("fig03_")
    plt.close(fig)


def test_all_failed_panel_still_draws():
    recs = [rec("tensor", x, {}, status="failed", seed=s, protocol=p)
            for x in (0.0, 0.1) for s in range(2) for p in ("blind", "report")]
    fig = plot_experiment(config(), recs)
    assert len(fig.get_axes()) == 2
    assert any("no successful run" in t.get_text() for t in fig.get_axes()[0].texts)
    plt.close(fig)


def test_categorical_sweep_keeps_config_order():
    acts = ["relu2", "relu", "tanh"]
    cfg = config(x="activation", values=acts)
    recs = [rec("tensor", a, {"recovery_error": 0.1 * (i + 1)}, seed=s, protocol=p)
            for i, a in enumerate(acts) for s in range(2) for p in ("blind", "report")]
    fig = plot_experiment(cfg, recs)
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in _tick_texts(ax, "x")] == acts
    assert list(_line(ax, "tensor").get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    plt.close(fig)


def test_failed_history_run_is_counted_once_not_per_epoch():
    cfg = config(metrics=("train_loss",), figure=3, x="epoch", values=())
    recs = [rec("tensor", None, {}, seed=s, protocol=p,
                history={"train_loss": [1.0 / (e + 1) for e in range(10)]})
            for p in ("blind", "report") for s in range(2)]
    recs.append(rec("tensor", None, {}, seed=9, protocol="report", status="failed"))
    fig = plot_experiment(cfg, recs)
    blind, report = fig.get_axes()
    assert blind.get_legend_handles_labels()[1] == ["tensor"]
    label = report.get_legend_handles_labels()[1][0]
    assert "1 of 3 runs failed" in label and "10" not in label and "9 failed" not in label
    plt.close(fig)


def test_sweep_failures_are_distinct_runs_over_all_x():
    recs = [rec("random", x, {"recovery_error": INF}, seed=s, protocol="blind")
            for x in (0.0, 0.1, 0.2) for s in range(2)]
    recs[0] = rec("random", 0.0, {"recovery_error": 0.3}, seed=0)
    cfg = config()
    cfg["experiment"]["protocols"] = ["blind"]
    fig = plot_experiment(cfg, recs)
    label = fig.get_axes()[0].get_legend_handles_labels()[1][0]
    assert "5 of 6 runs infinite (sign failure)" in label
    plt.close(fig)


def test_rate_metric_stays_linear_under_log_yscale():
    cfg = config(metrics=("exact_support", "recovery_error"))
    cfg["experiment"]["yscale"] = "log"
    recs = [rec(m, x, {"exact_support": float(s), "recovery_error": 0.1 + x}, seed=s, protocol=p)
            for m in ("tensor", "random") for x in (0.0, 0.1, 0.2) for s in range(2)
            for p in ("blind", "report")]
    fig = plot_experiment(cfg, recs)
    axes = fig.get_axes()
    assert axes[0].get_yscale() == "linear" and axes[2].get_yscale() == "log"
    plt.close(fig)


def test_init_not_applicable_is_written_on_the_panel():
    acts = ["relu2", "tanh"]
    cfg = config(x="activation", values=acts)
    cfg["experiment"]["protocols"] = ["blind"]
    recs = [rec("tensor", "relu2", {"recovery_error": 0.1}, seed=s) for s in range(2)]
    for s in range(2):
        r = rec("tensor", "tanh", {}, seed=10 + s, status="failed")
        r["error"] = ("Activation 'tanh' has no usable Hermite moment for j3 (order >= 3): m_2..m_4 = "
                      "[0 0 0] at σ = 1")
        recs.append(r)
    fig = plot_experiment(cfg, recs)
    ax = fig.get_axes()[0]
    texts = [t.get_text() for t in ax.texts]
    assert any("init not applicable" in t and "order >= 3" in t for t in texts), texts
    assert "2 of 4 runs failed" in ax.get_legend_handles_labels()[1][0]
    plt.close(fig)


def test_single_protocol_metrics_are_laid_out_two_per_row():
    cfg = config(metrics=("recovery_error", "pct_true_negative", "recovery_error"))
    cfg["experiment"]["protocols"] = ["blind"]
    fig = plot_experiment(cfg, [r for r in records() if r["protocol"] == "blind"])
    assert len(fig.get_axes()) == 4  # three metrics and the success probability, two per row
    plt.close(fig)


def _boxes_apart(fig):
    """Every panel's box (with its title, labels, ticks and legend) inside the figure, none overlapping."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    if fig._suptitle is not None:
        boxes.append(fig._suptitle.get_window_extent(renderer))
    boxes += [legend.get_window_extent(renderer) for legend in fig.legends]
    for b in boxes:
        assert page.x0 - 1 <= b.x0 and b.x1 <= page.x1 + 1 and page.y0 - 1 <= b.y0 and b.y1 <= page.y1 + 1, (b, page)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_fixed_layout_keeps_every_panel_inside_and_apart():
    # long legend entries (failure notes), wrapped titles, a removed slot and a two-line figure title
    many = [f"method {i} with a rather long descriptive label" for i in range(9)]
    cfg = config(metrics=("recovery_error", "pct_true_negative", "test_mse"))
    cfg["experiment"]["protocols"] = ["blind"]
    cfg["experiment"]["title"] = "A long figure title " * 8
    cfg["methods"] = [{"label": m} for m in many]
    recs = [rec(m, x, {"recovery_error": 10.0 ** -(i + 10 * x) if s else INF, "pct_true_negative": 50.0 + x,
                       "test_mse": 1e-3 * (i + 1)}, seed=s, status="ok" if (s or i % 2) else "failed")
            for i, m in enumerate(many) for x in (0.0, 0.1, 0.2) for s in range(3)]
    fig = plot_experiment(cfg, recs)
    assert len(fig.axes) == 4  # three metrics and the success probability, two per row
    notes = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "panel-note"]
    assert len(notes) == 1 and "[" in notes[0]  # a failure note under the panel
    key = [t.get_text() for t in fig.legends[0].get_texts()]
    assert key[:-1] == many and not any(ax.get_legend() for ax in fig.axes)  # one key: every method once
    assert "runs failed or infinite" in key[-1]  # and the marks of failed runs, explained once
    _boxes_apart(fig)
    plt.close(fig)
    fig = plot_experiment(config(metrics=("recovery_error", "pct_true_negative"), figure=8), records())
    _boxes_apart(fig)
    plt.close(fig)


def test_phase_transition_and_contour_figures_keep_panels_apart():
    from sparsenet.experiments.plot_contours import plot_success_contours
    from sparsenet.experiments.plots import plot_phase_transition

    xs, ys = [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600], [2, 4, 8]
    cfg = {"experiment": {"name": "pt", "title": "Phase transition " * 4, "x": "n", "values": xs, "y": "k",
                          "y_values": ys, "trials": 4, "protocols": ["blind", "report"]},
           "methods": [{"label": "tensor"}, {"label": "random"}]}
    recs = [{"protocol": p, "method": m, "status": "ok", "params": {"n": x, "k": y},
             "metrics": {"recovery_error": 1e-6 if (x / 400 > y * (1 + (m == "random")) or s < j % 3) else 0.5}}
            for p in ("blind", "report") for m in ("tensor", "random") for j, x in enumerate(xs) for y in ys
            for s in range(4)]
    fig = plot_phase_transition(cfg, recs)
    _boxes_apart(fig)
    plt.close(fig)
    fig = plot_success_contours(cfg, recs, protocol="report")
    _boxes_apart(fig)
    plt.close(fig)


@pytest.mark.parametrize("metrics", [("recovery_error",), ("test_mse", "pct_true_negative")])
def test_own_ticks_and_ticks_in_view_draw_matplotlibs_pixels(monkeypatch, metrics):
    """The ticks drawn as artists of their own (_own_ticks) and matplotlib's Tick objects only in view
    (_InView) draw the image of matplotlib's own ticks, to the pixel, from fewer tick objects."""
    from sparsenet.experiments import plots

    recs = [rec(m, x, {"recovery_error": v * (1 + x), "test_mse": 0.3 + v + x, "pct_true_negative": 90 * v},
                seed=s, protocol=p)
            for m in ("tensor", "random") for x in (0.0, 0.1, 0.2) for s, v in enumerate((1e-9, 0.5, 2e-6))
            for p in ("blind", "report")]
    out = []
    for mode in ("own", "in view", "matplotlib"):
        if mode != "own":  # matplotlib's Tick objects
            monkeypatch.setattr(plots, "_own_ticks", lambda ax: None)
        fig = plot_experiment(config(metrics=metrics), recs)
        own = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() in ("xtick", "ytick")]
        assert bool(own) == (mode == "own")
        if mode == "matplotlib":  # its own locators: a tick for every location, in view or not
            for ax in fig.axes:
                for axis in (ax.xaxis, ax.yaxis):
                    for which in ("major", "minor"):
                        loc = getattr(axis, f"get_{which}_locator")()
                        assert isinstance(loc, plots._InView)
                        getattr(axis, f"set_{which}_locator")(loc.base)
        fig.set_dpi(60)
        fig.canvas.draw()
        out.append((np.asarray(fig.canvas.buffer_rgba()).copy(),
                    sum(len(a.majorTicks) + len(a.minorTicks) for ax in fig.axes for a in (ax.xaxis, ax.yaxis)),
                    [t.get_text() for ax in fig.axes for t in (*_tick_texts(ax, "x"), *_tick_texts(ax, "y"))]))
    (own, n_own, labels_own), (view, n_view, labels_view), (stock, n_stock, _) = out
    np.testing.assert_array_equal(own, stock)
    np.testing.assert_array_equal(view, stock)
    assert labels_own == labels_view and labels_own  # the same labels, major then minor per axis
    assert n_own < n_view < n_stock  # from fewer tick objects (own: the axes' first ticks only)


def test_axis_labels_placed_once_clear_their_tick_labels():
    """Axis labels at fixed offsets: beyond every tick label (none overlapping), at about the label pad."""
    recs = [rec(m, x, {"recovery_error": v * (1 + x), "pct_true_negative": 100 * x}, seed=s, protocol=p)
            for m in ("tensor", "random") for x in (0.0, 0.1, 0.2) for s, v in enumerate((1e-9, 0.5, 2e-6))
            for p in ("blind", "report")]
    fig = plot_experiment(config(metrics=("recovery_error", "pct_true_negative")), recs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pt = fig.dpi / 72
    checked = 0
    for ax in fig.axes:
        if ax.get_xlabel():
            label = ax.xaxis.label.get_window_extent(renderer)
            ticks = [t.get_window_extent(renderer) for t in _tick_texts(ax, "x")]
            gap = min(b.y0 for b in ticks) - label.y1
            assert 0.5 * pt < gap < 8 * pt, gap / pt
            checked += 1
        if ax.get_ylabel():
            label = ax.yaxis.label.get_window_extent(renderer)
            ticks = [t.get_window_extent(renderer) for t in _tick_texts(ax, "y")]
            gap = min(b.x0 for b in ticks) - label.x1
            assert 0.5 * pt < gap < 8 * pt, gap / pt
            checked += 1
    assert checked == 2 + 3  # x labels under the lowest row (two columns), y labels left of each row
    plt.close(fig)
