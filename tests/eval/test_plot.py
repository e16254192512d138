"""Figures with Japanese text: glyphs come from a Japanese font, or a logged warning says why not."""

import logging
import warnings

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from shirabe.eval import fonts, plot
from shirabe.eval.plot import scatter_png

POINTS = [("全体", 5.1, 0.41), ("LoRA 話者", 4.9, 0.62)]


def draw(path):
    """scatter_png with Japanese everywhere; returns the texts of the warnings raised meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scatter_png(POINTS, path, "MCD (dB) 低いほど良い", "話者類似度", title="微調整の比較", note="左上ほど良い")
    assert path.is_file() and path.stat().st_size > 1000
    return [str(w.message) for w in caught]


def test_japanese_labels_are_drawn_from_a_japanese_font(tmp_path):
    family = fonts.matplotlib_japanese_family()
    assert family in fonts.JAPANESE_FONT_FAMILIES, "no Japanese font installed (tools/install.sh installs IPAexGothic)"
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert FT2Font(path).get_char_index(ord("話")) != 0  # the file has the glyph
    messages = draw(tmp_path / "ja.png")
    assert not [m for m in messages if "missing from font" in m], messages


def test_without_a_japanese_font_a_warning_is_logged(tmp_path, monkeypatch, caplog):
    missing = ("NoSuchFamily Shirabe",)
    monkeypatch.setattr(plot, "matplotlib_font_rc", lambda: fonts.matplotlib_font_rc(missing))
    with caplog.at_level(logging.WARNING, logger="shirabe.eval.fonts"):
        messages = draw(tmp_path / "boxes.png")
    assert fonts.matplotlib_font_rc(missing) == {"font.family": ["sans-serif"]}
    assert [r for r in caplog.records if r.name == "shirabe.eval.fonts" and "no Japanese font found" in r.message]
    # the figure is still written, and matplotlib itself reports the glyphs it could not draw
    assert [m for m in messages if "missing from font" in m], messages


def test_css_font_family_quotes_each_name_and_ends_generic():
    assert fonts.css_font_family(("IPAexGothic", "Noto Sans CJK JP")) == '"IPAexGothic", "Noto Sans CJK JP", sans-serif'
