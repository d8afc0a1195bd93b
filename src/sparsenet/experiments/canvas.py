"""The canvas every figure is drawn on: matplotlib's Agg, each distinct text rasterized once.

Matplotlib 3.11 lays a text out with libraqm and then draws it glyph by glyph from Python (a
FreeType load and render, a transform and an image copy per glyph, at the glyph's subpixel
position): about 60 % of the drawing time of the report's figures, although a report draws only
~180 distinct strings ~1,700 times. Here a text is rasterized as matplotlib did up to 3.10 — every
glyph of the string into one bitmap by FreeType in one call, placed at the nearest whole pixel — and
that bitmap, with the string's extent, is kept for the next text with the same string, font and size.
The same figure gives the same pixels, with or without the cache; text sits within half a pixel of
where matplotlib 3.11 puts it.

A turned text's bitmap is turned as a whole by Agg (within a pixel of matplotlib's turned glyphs).

Mathtext and TeX strings, a text with OpenType features or a language of its own (matplotlib 3.11's
``Text.set_fontfeatures`` / ``set_language``), and a matplotlib without this FreeType interface go
to the stock renderer.
"""

from __future__ import annotations

import math

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager
from matplotlib.figure import Figure

__all__ = ["new_figure", "FastTextCanvas"]

_CACHE_SIZE = 4096  # distinct (string, font, size, dpi) kept; a report has ~200
_cache: dict = {}


class _Rasterized:
    """A string laid out and rasterized (antialiased) by FreeType: its extent and descent, its
    bitmaps and their offset from the text's origin (pixels)."""

    __slots__ = ("width", "height", "descent", "offset", "images", "_s", "_flags")

    def __init__(self, font, s, flags):
        font.set_text(s, 0.0, flags=flags)
        w, h = font.get_width_height()  # width and height of the unrotated string (1/64 px)
        self.width, self.height, self.descent = w / 64.0, h / 64.0, font.get_descent() / 64.0
        font.draw_glyphs_to_bitmap(antialiased=True)  # nearly every measured text is drawn
        xo, yo = font.get_bitmap_offset()
        self.offset = (xo / 64.0, yo / 64.0)
        self.images = {True: font.get_image()}
        self._s, self._flags = s, flags

    def image(self, renderer, prop, antialiased: bool):
        """The string's bitmap, antialiased or not."""
        if antialiased not in self.images:  # the font object is shared: lay the string out again
            font = renderer._prepare_font(prop)
            font.set_text(self._s, 0.0, flags=self._flags)
            font.draw_glyphs_to_bitmap(antialiased=antialiased)
            self.images[antialiased] = font.get_image()
        return self.images[antialiased]


def _text_entry(renderer, s, prop) -> _Rasterized:
    """The :class:`_Rasterized` ``s`` in font ``prop`` at the renderer's dpi, from the cache."""
    flags = get_hinting_flag()
    key = (s, tuple(prop.get_family()), prop.get_slant(), prop.get_variant(), prop.get_weight(),
           prop.get_stretch(), prop.get_size(), prop.get_file(), renderer.dpi, flags,
           # the font files the family resolves to (rcParams' font lists may change between figures)
           tuple(fontManager._find_fonts_by_props(prop)), mpl.rcParams["text.kerning_factor"],
           mpl.rcParams["font.enable_last_resort"])
    entry = _cache.get(key)
    if entry is None:
        entry = _Rasterized(renderer._prepare_font(prop), s, flags)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = entry
    return entry


class _Renderer(RendererAgg):
    """Agg with :func:`_text_entry`'s cached text metrics and bitmaps (see the module docstring)."""

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        entry = _text_entry(self, s, prop)
        return entry.width, entry.height, entry.descent

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or _shaped(mtext):
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        entry = _text_entry(self, s, prop)
        image = entry.image(self, prop, bool(gc.get_antialiased()))
        # Agg turns the bitmap about its bottom-left corner, which lies at (offset x, offset y +
        # descent + 1 px) from the text's origin in the text's own frame (x along the baseline, y
        # down): that vector turned with the text, the corner placed at the nearest whole pixel
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        u, v = entry.offset[0], entry.offset[1] + entry.descent + 1.0
        self._renderer.draw_text_image(image, round(x + u * cos + v * sin), round(y - u * sin + v * cos),
                                       angle, gc)


def _shaped(mtext) -> bool:
    """Whether the :class:`~matplotlib.text.Text` ``mtext`` has OpenType features or a language of
    its own (matplotlib >= 3.11), which the stock renderer's layout applies."""
    if mtext is None:
        return False
    features = getattr(mtext, "get_fontfeatures", None)
    language = getattr(mtext, "get_language", None)
    return bool((features and features()) or (language and language()))


def _supported() -> bool:
    """Whether this matplotlib's FreeType interface has what :class:`_Renderer` calls."""
    from matplotlib.ft2font import FT2Font

    return all(hasattr(FT2Font, name) for name in
               ("set_text", "get_width_height", "get_descent", "draw_glyphs_to_bitmap",
                "get_bitmap_offset", "get_image")) and hasattr(RendererAgg, "_prepare_font")


class FastTextCanvas(FigureCanvasAgg):
    """:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` drawing with :class:`_Renderer`."""

    _renderer_class = _Renderer if _supported() else RendererAgg

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = self._renderer_class(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


def new_figure(**kwargs) -> Figure:
    """A :class:`~matplotlib.figure.Figure` on a :class:`FastTextCanvas`, outside pyplot's figure
    registry (nothing to close; it is freed with its last reference)."""
    fig = Figure(**kwargs)
    FastTextCanvas(fig)
    return fig
