"""A static HTML report: metric tables, figures and audio players, self-contained in one folder.

:func:`write_report` copies every audio file and image it shows into the report
folder (``audio/``, ``img/``, replaced on every call) and links them relatively,
so the folder can be moved, zipped or served as it is. Audio sections are grids: one row per test
item (its id and text), one column per source (prompt, ground truth, each
system), each cell an ``<audio controls>`` player (or a dash when the item has
no such file). Text is set in a Japanese font (:mod:`shirabe.eval.fonts`).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shirabe.eval.fonts import css_font_family

# Japanese families first (item texts, captions): a browser without any of them shows empty boxes.
STYLE = f"""
body {{ font-family: {css_font_family()}; margin: 2em; color: #222; }}""" + """
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td.label, th.label { text-align: left; }
audio { width: 220px; }
.text { font-size: 90%; color: #555; max-width: 18em; text-align: left; }
figure img { max-width: 100%; border: 1px solid #ddd; }
"""


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class AudioRow:
    item_id: str
    text: str
    audio: dict[str, Path | None] = field(default_factory=dict)  # column -> file


@dataclass
class AudioSection:
    title: str
    columns: list[str]
    rows: list[AudioRow]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _copy(src: Path, out_dir: Path, rel: str) -> str:
    dst = out_dir / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return rel


def _table_html(t: Table) -> str:
    head = "".join(f'<th class="label">{html.escape(h)}</th>' if i == 0 else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(t.headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="label">{html.escape(str(c))}</td>' if i == 0 else f"<td>{html.escape(str(c))}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in t.rows
    )
    return f"<table><caption>{html.escape(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(out_dir: str | Path, title: str, intro: str = "", tables: list[Table] = (),
                 images: list[tuple[str, Path]] = (), audio_sections: list[AudioSection] = ()) -> Path:
    """Write ``out_dir/index.html`` (module docstring); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for owned in ("audio", "img"):  # copies of an earlier report
        shutil.rmtree(out_dir / owned, ignore_errors=True)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append("".join(f"<p>{html.escape(p)}</p>" for p in intro.split("\n\n")))
    parts += [_table_html(t) for t in tables]
    for k, (caption, path) in enumerate(images):
        rel = _copy(Path(path), out_dir, f"img/{k:02d}_{_slug(Path(path).name)}")
        parts.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    for s, section in enumerate(audio_sections):
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        head = '<th class="label">item</th>' + "".join(f"<th>{html.escape(c)}</th>" for c in section.columns)
        rows = []
        for row in section.rows:
            cells = [f'<td class="label">{html.escape(row.item_id)}<div class="text" lang="ja">{html.escape(row.text)}</div></td>']
            for c, col in enumerate(section.columns):
                src = row.audio.get(col)
                if src is None or not Path(src).is_file():
                    cells.append("<td>–</td>")
                    continue
                rel = _copy(Path(src), out_dir, f"audio/{s:02d}/{c:02d}_{_slug(col)}/{_slug(row.item_id)}"
                                                 f"{Path(src).suffix}")
                cells.append(f'<td><audio controls preload="metadata" src="{html.escape(rel)}"></audio></td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<table class="audio"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    parts.append("</body></html>\n")
    index = out_dir / "index.html"
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".html", dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    os.replace(tmp, index)
    return index
