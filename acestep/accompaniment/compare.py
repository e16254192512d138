"""A blind listening page for comparing accompaniment systems, and the rating axes it asks about.

:func:`collect` pairs the outputs of several systems (one folder each) by sample key;
:func:`blind_order` shuffles the samples and, per sample, the systems under the labels A, B, C, ...
(seeded); :func:`write_page` writes ``index.html`` with the audio copied next to it under
anonymous names (``audio/<n>_<label>.<ext>``), so neither the page nor the file names show
which system made what.

The page plays the vocal and each labelled system (alone, or together with the vocal), asks for the
five ratings of :data:`AXES` (1–5) and a comment per system, hides the system names until
"Reveal", and "Export" downloads an evaluation sheet (and shows it in ``<pre id="sheet-json">``):

.. code-block:: json

    {"format": "acestep-accompaniment-ratings", "version": 1, "rater": "...", "page_seed": 0,
     "created": "2026-...Z", "revealed_before_export": false, "axes": ["audio_quality", ...],
     "mapping": {"song001": {"A": "image2image_0.5", "B": "controlnet"}},
     "ratings": [{"sample_id": "song001", "label": "A", "model": "image2image_0.5",
                  "scores": {"audio_quality": 4, "vocal_alignment": 5, "prompt_adherence": 3,
                             "musicality": 4, "vocal_leakage": 4},
                  "comments": "...", "overall": 4.0}],
     "incomplete": ["song002/B"]}

Each entry of ``ratings`` is one sheet item in the plan's format (``overall`` = the mean of the five
scores); only fully rated systems are listed, partly rated ones are named in ``incomplete``.
``mapping`` un-blinds the labels for :mod:`acestep.accompaniment.ratings`.
"""

from __future__ import annotations

import base64
import html
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from shirabe.cli import InputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
KNOWN_SUFFIXES = ("_vocal", "_inst", "_mix", "_accompaniment")
SHEET_FORMAT = "acestep-accompaniment-ratings"
SHEET_VERSION = 1

# (field, name, what 1 / 3 / 5 mean): the plan's five rating axes.
AXES = (
    ("audio_quality", "音質 Audio quality", "noisy, broken", "acceptable", "clear, professional"),
    ("vocal_alignment", "ボーカル一致 Fit to the vocal", "unrelated", "partly in sync", "fully in sync"),
    ("prompt_adherence", "プロンプト反映 Prompt adherence", "ignored", "partly reflected", "fully matches"),
    ("musicality", "音楽性 Musicality", "dissonant, rhythm breaks down", "listenable", "natural, moving"),
    ("vocal_leakage", "ボーカル漏れ Vocal leakage (5 = none)", "much vocal audible", "a little vocal",
     "no vocal at all"),
)
AXIS_NAMES = tuple(a[0] for a in AXES)


def sample_key(path: Path, suffix: str = "") -> str | None:
    """The sample key of an audio file: its stem without ``suffix`` (when given: files without it are
    not samples, None) or without one of :data:`KNOWN_SUFFIXES`."""
    stem = path.stem
    if suffix:
        return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None
    for known in KNOWN_SUFFIXES:
        if stem.endswith(known) and len(stem) > len(known):
            return stem[: -len(known)]
    return stem


def find_audio(folder: Path, suffix: str = "", what: str = "folder") -> dict[str, Path]:
    """``{key: audio file}`` of ``folder`` (not recursive); two files for one key is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        key = sample_key(path, suffix)
        if key is None:
            continue
        if key in found:
            raise InputError(f"{folder}: two files for sample {key!r} ({found[key].name}, {path.name}); "
                             "choose one kind with a suffix option")
        found[key] = path
    if not found:
        raise InputError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})"
                         + (f" ending in {suffix!r}" if suffix else ""))
    return found


@dataclass
class Sample:
    """One sample of the page: its key, the vocal (or None) and the systems' files by label."""

    key: str
    vocal: Path | None
    labelled: list[tuple[str, str, Path]] = field(default_factory=list)  # (label, system, file)


def labels(n: int) -> list[str]:
    out = []
    for i in range(n):
        name, k = "", i
        while True:
            name = chr(ord("A") + k % 26) + name
            k = k // 26 - 1
            if k < 0:
                break
        out.append(name)
    return out


def collect(systems: dict[str, dict[str, Path]]) -> tuple[list[str], list[str]]:
    """The keys every system has (sorted) and the keys some but not all systems have."""
    key_sets = [set(files) for files in systems.values()]
    common = set.intersection(*key_sets)
    partial = set.union(*key_sets) - common
    return sorted(common), sorted(partial)


def blind_order(systems: dict[str, dict[str, Path]], vocals: dict[str, Path] | None, keys: list[str],
                seed: int) -> list[Sample]:
    """Samples in a seeded random order, each with the systems shuffled under labels A, B, ..."""
    rng = random.Random(seed)
    order = list(keys)
    rng.shuffle(order)
    names = sorted(systems)
    out = []
    for key in order:
        shuffled = list(names)
        rng.shuffle(shuffled)
        out.append(Sample(key, (vocals or {}).get(key),
                          [(label, name, systems[name][key]) for label, name in zip(labels(len(names)), shuffled)]))
    return out


def write_page(output_dir: Path, samples: list[Sample], seed: int, title: str = "Accompaniment listening test"
               ) -> Path:
    """``output_dir/index.html`` + ``output_dir/audio/``; returns the page's path."""
    output_dir = Path(output_dir)
    audio_dir = output_dir / "audio"
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    mapping = {}
    sections = []
    for n, sample in enumerate(samples, start=1):
        mapping[sample.key] = {label: name for label, name, _ in sample.labelled}
        vocal_src = None
        if sample.vocal is not None:
            vocal_src = f"audio/{n:03d}_vocal{sample.vocal.suffix.lower()}"
            shutil.copyfile(sample.vocal, output_dir / vocal_src)
        systems_html = []
        for label, _, path in sample.labelled:
            src = f"audio/{n:03d}_{label}{path.suffix.lower()}"
            shutil.copyfile(path, output_dir / src)
            systems_html.append(_system_html(sample.key, label, src, vocal_src is not None))
        vocal_html = (f'<div class="vocal">Vocal <audio controls preload="auto" class="vocal-player" '
                      f'src="{html.escape(vocal_src)}"></audio></div>' if vocal_src else
                      '<div class="vocal missing">(no vocal file for this sample)</div>')
        sections.append(f'<section class="sample" data-sample="{html.escape(sample.key)}">\n'
                        f'<h2>{n}. {html.escape(sample.key)}</h2>\n{vocal_html}\n' + "\n".join(systems_html)
                        + "\n</section>")
    blind_key = base64.b64encode(json.dumps(mapping, ensure_ascii=False).encode("utf-8")).decode("ascii")
    legend = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(one)}</td><td>{html.escape(three)}</td>"
                     f"<td>{html.escape(five)}</td></tr>" for _, name, one, three, five in AXES)
    page = PAGE.format(
        title=html.escape(title), legend=legend, sections="\n".join(sections), blind_key=blind_key,
        seed=int(seed), axes=json.dumps(list(AXIS_NAMES)), sheet_format=SHEET_FORMAT, sheet_version=SHEET_VERSION,
        n_samples=len(samples))
    index = output_dir / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)
    return index


def _system_html(key: str, label: str, src: str, with_vocal: bool) -> str:
    rows = []
    for axis, name, *_ in AXES:
        group = html.escape(f"{key}|{label}|{axis}")
        cells = "".join(f'<label><input type="radio" name="{group}" value="{v}" data-axis="{axis}">{v}</label>'
                        for v in range(1, 6))
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{cells}</td></tr>")
    together = ('<button type="button" class="with-vocal">play with vocal</button>' if with_vocal else "")
    return (f'<div class="system" data-label="{label}">\n'
            f'<h3>System {label} <span class="revealed"></span></h3>\n'
            f'<audio controls preload="auto" class="system-player" src="{html.escape(src)}"></audio> {together}\n'
            f'<table class="form">{"".join(rows)}</table>\n'
            f'<textarea class="comments" rows="2" cols="60" placeholder="comments"></textarea>\n</div>')


PAGE = """<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}
section.sample {{ border-top: 2px solid #888; margin-top: 2em; }}
div.system {{ margin: 1em 0 1.5em 1em; padding: 0.5em; background: #f6f6f6; }}
table.form th {{ text-align: left; font-weight: normal; padding-right: 1em; }}
table.form label {{ margin-right: 0.8em; }}
table.legend td, table.legend th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
span.revealed {{ color: #a00; }}
pre#sheet-json {{ background: #eee; white-space: pre-wrap; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{n_samples} samples. Each system is shown under a letter; the letters are shuffled for every sample.
Rate every system on the five axes (1 = worst, 5 = best), then export the sheet.</p>
<table class="legend"><tr><th>axis</th><th>1</th><th>3</th><th>5</th></tr>{legend}</table>
<p>Rater: <input id="rater" type="text" size="20"></p>
{sections}
<hr>
<p><button type="button" id="export">Export evaluation sheet (JSON)</button>
<button type="button" id="reveal">Reveal system names</button>
<span id="status"></span></p>
<pre id="sheet-json"></pre>
<script type="application/octet-stream" id="blind-key">{blind_key}</script>
<script>
(() => {{
  const AXES = {axes};
  const SEED = {seed};
  let revealed = false;
  const mapping = () => JSON.parse(new TextDecoder().decode(
    Uint8Array.from(atob(document.getElementById("blind-key").textContent.trim()), c => c.charCodeAt(0))));
  document.getElementById("reveal").addEventListener("click", () => {{
    const map = mapping();
    revealed = true;
    document.querySelectorAll("section.sample").forEach(sec => {{
      sec.querySelectorAll("div.system").forEach(div => {{
        div.querySelector("span.revealed").textContent = "= " + map[sec.dataset.sample][div.dataset.label];
      }});
    }});
  }});
  document.querySelectorAll("button.with-vocal").forEach(btn => btn.addEventListener("click", () => {{
    const vocal = btn.closest("section").querySelector("audio.vocal-player");
    const mine = btn.parentElement.querySelector("audio.system-player");
    document.querySelectorAll("audio").forEach(a => a.pause());
    vocal.currentTime = 0; mine.currentTime = 0;
    vocal.play(); mine.play();
  }}));
  const sheet = () => {{
    const map = mapping();
    const ratings = [], incomplete = [];
    document.querySelectorAll("section.sample").forEach(sec => {{
      const key = sec.dataset.sample;
      sec.querySelectorAll("div.system").forEach(div => {{
        const label = div.dataset.label;
        const scores = {{}};
        AXES.forEach(axis => {{
          const checked = div.querySelector(`input[data-axis="${{axis}}"]:checked`);
          if (checked) scores[axis] = parseInt(checked.value, 10);
        }});
        const n = Object.keys(scores).length;
        const comments = div.querySelector("textarea.comments").value;
        if (n === AXES.length) {{
          const overall = AXES.reduce((s, a) => s + scores[a], 0) / AXES.length;
          ratings.push({{sample_id: key, label: label, model: map[key][label], scores: scores,
                         comments: comments, overall: Math.round(overall * 100) / 100}});
        }} else if (n > 0 || comments) {{
          incomplete.push(`${{key}}/${{label}}`);
        }}
      }});
    }});
    return {{format: "{sheet_format}", version: {sheet_version}, rater: document.getElementById("rater").value,
             page_seed: SEED, created: new Date().toISOString(), revealed_before_export: revealed,
             axes: AXES, mapping: map, ratings: ratings, incomplete: incomplete}};
  }};
  document.getElementById("export").addEventListener("click", () => {{
    const data = sheet();
    const text = JSON.stringify(data, null, 2);
    document.getElementById("sheet-json").textContent = text;
    document.getElementById("status").textContent =
      `${{data.ratings.length}} rated, ${{data.incomplete.length}} incomplete`;
    try {{
      const url = URL.createObjectURL(new Blob([text], {{type: "application/json"}}));
      const a = document.createElement("a");
      const who = (data.rater || "anonymous").replace(/[^A-Za-z0-9_-]+/g, "_");
      a.href = url; a.download = `ratings_${{who}}.json`;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    }} catch (e) {{
      document.getElementById("status").textContent += " (download failed: copy the JSON below)";
    }}
  }});
}})();
</script>
</body>
</html>
"""
