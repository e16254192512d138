"""Japanese fonts for the figures (matplotlib) and the HTML reports.

``tools/install.sh`` installs Debian's ``fonts-ipaexfont-gothic`` (family IPAexGothic, 3.3 MB);
the other families are common alternatives (Noto/Source Han, IPA, Takao, VL, and the macOS and
Windows system fonts), tried in this order.
"""

from __future__ import annotations

import functools

from shirabe.cli import get_logger

logger = get_logger(__name__)

JAPANESE_FONT_FAMILIES = (
    "IPAexGothic",
    "IPAGothic",
    "IPAPGothic",
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "Source Han Sans JP",
    "TakaoGothic",
    "VL Gothic",
    "Hiragino Sans",
    "Yu Gothic",
    "Meiryo",
    "MS Gothic",
)


def css_font_family(families: tuple[str, ...] = JAPANESE_FONT_FAMILIES) -> str:
    """A CSS ``font-family`` value: the Japanese families in order, then ``sans-serif``."""
    return ", ".join([f'"{f}"' for f in families] + ["sans-serif"])


def _installed_families() -> set[str]:
    from matplotlib import font_manager

    return {f.name for f in font_manager.fontManager.ttflist}


def _add_new_system_fonts() -> None:
    """Register system fonts installed after matplotlib wrote its font cache."""
    from matplotlib import font_manager

    known = {f.fname for f in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # unreadable or not a font matplotlib can use
                continue


@functools.cache
def matplotlib_japanese_family(families: tuple[str, ...] = JAPANESE_FONT_FAMILIES) -> str | None:
    """The first of ``families`` that matplotlib can use, or None (with a warning) when none is installed."""
    installed = _installed_families()
    if not installed.intersection(families):
        _add_new_system_fonts()
        installed = _installed_families()
    for family in families:
        if family in installed:
            return family
    logger.warning("no Japanese font found (tried %s); Japanese text in figures will show as empty boxes. "
                   "Install one, e.g. apt-get install fonts-ipaexfont-gothic (tools/install.sh does as root)",
                   ", ".join(families))
    return None


def matplotlib_font_rc(families: tuple[str, ...] = JAPANESE_FONT_FAMILIES) -> dict:
    """rcParams for ``matplotlib.rc_context``: Latin text in the default sans-serif font, Japanese
    glyphs from the first installed Japanese family (matplotlib falls back glyph by glyph)."""
    family = matplotlib_japanese_family(families)
    return {"font.family": ["sans-serif"] + ([family] if family else [])}
