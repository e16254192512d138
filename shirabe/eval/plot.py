"""A labelled scatter plot as PNG (matplotlib, no display needed), Japanese text included."""

from __future__ import annotations

import math
from pathlib import Path

from shirabe.eval.fonts import matplotlib_font_rc


def scatter_png(points: list[tuple[str, float, float]], out: str | Path, xlabel: str, ylabel: str,
                title: str = "", note: str = "") -> Path:
    """Write ``points`` (label, x, y) as a scatter plot with each point labelled; NaN points are skipped.

    ``note`` is printed small under the axes (e.g. which direction is better). Text may be
    Japanese: its glyphs come from a Japanese font (:mod:`shirabe.eval.fonts`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(matplotlib_font_rc()):
        _scatter(plt, points, out, xlabel, ylabel, title, note)
    return out


def _scatter(plt, points, out: Path, xlabel: str, ylabel: str, title: str, note: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    shown = [(lbl, x, y) for lbl, x, y in points if x is not None and y is not None
             and math.isfinite(x) and math.isfinite(y)]
    for k, (label, x, y) in enumerate(shown):
        ax.scatter([x], [y], s=60, color=f"C{k % 10}", zorder=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(shown) >= 1:  # a little room for the labels
        xs, ys = [p[1] for p in shown], [p[2] for p in shown]
        dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 0.1
        ax.set_xlim(min(xs) - 0.15 * dx, max(xs) + 0.3 * dx)
        ax.set_ylim(min(ys) - 0.15 * dy, max(ys) + 0.2 * dy)
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, color="0.35")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(out)
