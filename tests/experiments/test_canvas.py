"""The figures' canvas (experiments/canvas.py) against matplotlib's own Agg canvas as the oracle."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sparsenet.experiments import canvas  # noqa: E402

TEXTS = [  # (string, rotation, fontsize, horizontal alignment)
    ("Recovery error — blind protocol (only X, y reach the algorithm)", 0, 10, "left"),
    ("relative recovery error ‖Ŵ − W*‖ / ‖W*‖", 90, 9, "center"),
    ("0.0001", 0, 10, "right"),
    ("1✗", 0, 7, "center"),
    ("turned text σ κ", 30, 12, "center"),
]


def _pixels(fig, text, rotation, size, ha, x=0.43, y=0.37, antialiased=True):
    fig.set_size_inches(6, 4)
    fig.set_dpi(120)
    fig.text(x, y, text, rotation=rotation, fontsize=size, ha=ha, va="baseline", color="C3",
             antialiased=antialiased)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


def _stock():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig


def _ink(pixels):
    mask = (pixels < 250).any(axis=-1)
    rows, cols = np.nonzero(mask)
    return np.array([rows.min(), rows.max(), cols.min(), cols.max()]), (255 - pixels).sum()


@pytest.mark.parametrize("text, rotation, size, ha", TEXTS)
def test_text_drawn_where_matplotlib_draws_it(text, rotation, size, ha):
    """Each text's ink: the same box as the stock renderer's within a pixel (the bitmap is placed at
    the nearest whole pixel instead of at subpixel positions), and the same amount within 3 %."""
    box, total = _ink(_pixels(canvas.new_figure(), text, rotation, size, ha))
    box0, total0 = _ink(_pixels(_stock(), text, rotation, size, ha))
    assert np.abs(box - box0).max() <= 1, (box, box0)
    assert abs(total - total0) <= 0.03 * total0, (total, total0)


@pytest.mark.parametrize("text, rotation, size, ha", TEXTS[:3])
def test_text_extent_equals_matplotlib(text, rotation, size, ha):
    """Layout sees exactly the stock renderer's text extents (the same FreeType call, cached)."""
    extents = []
    for fig in (canvas.new_figure(), _stock()):
        fig.set_dpi(120)
        t = fig.text(0.2, 0.3, text, rotation=rotation, fontsize=size, ha=ha)
        extents.append(t.get_window_extent(fig.canvas.get_renderer()).bounds)
    assert extents[0] == extents[1]


def test_cached_text_gives_the_same_pixels():
    """A text drawn from the cache (second draw, other figures in between) equals its first drawing."""
    canvas._cache.clear()
    first = _pixels(canvas.new_figure(), *TEXTS[0][:1], 0, 10, "left")
    assert canvas._cache  # the text was cached
    _pixels(canvas.new_figure(), "something else", 90, 8, "center")
    again = _pixels(canvas.new_figure(), *TEXTS[0][:1], 0, 10, "left")
    np.testing.assert_array_equal(first, again)
    moved = _pixels(canvas.new_figure(), *TEXTS[0][:1], 0, 10, "left", x=0.1, y=0.8)
    assert not np.array_equal(first, moved)  # the cache keeps the bitmap, not its place


def test_text_without_antialiasing():
    """A text drawn without antialiasing (after the same string antialiased, from the cache): two
    colours only, where the stock renderer draws it."""
    text = TEXTS[0][0]
    smooth = _pixels(canvas.new_figure(), text, 0, 10, "left")
    sharp = _pixels(canvas.new_figure(), text, 0, 10, "left", antialiased=False)
    assert len(np.unique(sharp.reshape(-1, 3), axis=0)) == 2 < len(np.unique(smooth.reshape(-1, 3), axis=0))
    box, _ = _ink(sharp)
    box0, _ = _ink(_pixels(_stock(), text, 0, 10, "left", antialiased=False))
    assert np.abs(box - box0).max() <= 1, (box, box0)


def test_font_lists_changed_between_figures():
    """A string cached in one font is not reused when rcParams resolve the same family to another
    font: extents and ink as the stock renderer's in the new font."""
    text = TEXTS[0][0]
    _pixels(canvas.new_figure(), text, 0, 10, "left")  # cached in the default sans-serif font
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Serif"]}):
        extents = []
        for fig in (canvas.new_figure(), _stock()):
            fig.set_dpi(120)
            t = fig.text(0.2, 0.3, text, fontsize=10)
            extents.append(t.get_window_extent(fig.canvas.get_renderer()).bounds)
        assert extents[0] == extents[1]
        box, total = _ink(_pixels(canvas.new_figure(), text, 0, 10, "left"))
        box0, total0 = _ink(_pixels(_stock(), text, 0, 10, "left"))
    assert np.abs(box - box0).max() <= 1, (box, box0)
    assert abs(total - total0) <= 0.03 * total0, (total, total0)


def test_mathtext_goes_to_matplotlib():
    """A mathtext string is drawn by the stock renderer: identical pixels."""
    a = _pixels(canvas.new_figure(), r"$\|W\|_F^2 + \alpha$", 0, 12, "left")
    b = _pixels(_stock(), r"$\|W\|_F^2 + \alpha$", 0, 12, "left")
    np.testing.assert_array_equal(a, b)


def test_new_figure_is_not_registered_with_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = canvas.new_figure()
    assert isinstance(fig.canvas, canvas.FastTextCanvas)
    assert plt.get_fignums() == before


def _centroid(pixels):
    ink = (255 - pixels).sum(axis=-1).astype(float)
    rows, cols = np.indices(ink.shape)
    return np.array([(rows * ink).sum(), (cols * ink).sum()]) / ink.sum()


@pytest.mark.parametrize("rotation", [45, 90, 180, 270])
@pytest.mark.parametrize("text", ["0.001", "relative recovery error\nsecond line"])
def test_turned_text_within_a_pixel_of_matplotlib(text, rotation):
    """A turned text (a y label at 90°, tick labels at 45°) sits where the stock renderer draws it:
    its ink's centroid within a pixel (the bitmap's corner is placed at a whole pixel, the stock
    glyphs at subpixel positions), its box within two (a hinted bitmap turned, where FreeType turns
    each glyph's outline), as much ink within 5 % (Agg interpolates the turned bitmap)."""
    # the bitmap's offset from the text's origin was not turned with the text: 1.4-2.7 px at 90°
    ours = _pixels(canvas.new_figure(), text, rotation, 9, "center")
    stock = _pixels(_stock(), text, rotation, 9, "center")
    assert np.abs(_centroid(ours) - _centroid(stock)).max() <= 1.0, (_centroid(ours), _centroid(stock))
    (box, total), (box0, total0) = _ink(ours), _ink(stock)
    assert np.abs(box - box0).max() <= 2, (box, box0)
    assert abs(total - total0) <= 0.05 * total0, (total, total0)


@pytest.mark.parametrize("props", [{"fontfeatures": ["-kern"]}, {"fontfeatures": ["-liga", "-kern"]},
                                   {"language": "tr"}])
def test_font_features_and_language_drawn_as_matplotlib(props):
    """A text's OpenType features and language (matplotlib 3.11's Text.set_fontfeatures / set_language)
    shape its glyphs as on the stock canvas (the cached bitmap was shaped without them: "-kern" drew
    the string 10 px shorter)."""
    if not hasattr(matplotlib.text.Text, "set_fontfeatures"):
        pytest.skip("matplotlib without per-text font features")
    out = []
    for fig in (canvas.new_figure(), _stock()):
        fig.set_size_inches(6, 4)
        fig.set_dpi(120)
        fig.text(0.2, 0.37, "AVA To office", fontsize=20, color="k", **props)
        fig.canvas.draw()
        out.append(_ink(np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)))
    (box, total), (box0, total0) = out
    assert np.abs(box - box0).max() <= 1, (box, box0)
    assert abs(total - total0) <= 0.01 * total0, (total, total0)
