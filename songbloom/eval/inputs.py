"""The inputs of an evaluation: songs to score, their generated samples, references, dev metrics.

* The songs JSONL is SongBloom's inference input (``songs_{split}.jsonl`` of the corpus
  preparation): one object per line with the strings ``idx``, ``lyrics`` and ``prompt_wav``
  (a relative path is taken relative to the JSONL's folder). A line that is not such an
  object, or repeats an ``idx``, is a one-line :class:`~shirabe.cli.InputError` naming
  ``file:line`` and the field.
* Generated samples are ``<generated-dir>/<idx>_s<k>.wav`` (``k`` = 0, 1, ...).
* Reference (ground-truth) recordings come from a lhotse manifest (the preparation's
  ``songs_recordings_{split}.jsonl.gz``, or a CutSet) or a folder of ``<idx>.wav``/``.flac``.
* Dev metrics are a JSON object of numbers from the training side (``sketch_accuracy``,
  ``flow_loss``, ...), shown as they are.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from shirabe.cli import InputError

FIELDS = ("idx", "lyrics", "prompt_wav")
REFERENCE_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class SongItem:
    idx: str
    lyrics: str
    prompt_wav: Path
    where: str  # "file:line"


def read_songs_jsonl(path: str | Path) -> list[SongItem]:
    """The songs of a SongBloom inference JSONL (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such songs JSONL")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    items: list[SongItem] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object with {', '.join(FIELDS)}, got {type(obj).__name__}")
        for name in FIELDS:
            if name not in obj:
                raise InputError(f"{where}: missing field '{name}'")
            if not isinstance(obj[name], str) or not obj[name].strip():
                raise InputError(f"{where}: field '{name}' must be a non-empty string, got {obj[name]!r}")
        idx = obj["idx"].strip()
        if idx in seen:
            raise InputError(f"{where}: idx {idx!r} already used at {seen[idx]}")
        seen[idx] = where
        prompt = Path(obj["prompt_wav"])
        items.append(SongItem(idx, obj["lyrics"], prompt if prompt.is_absolute() else path.parent / prompt, where))
    if not items:
        raise InputError(f"{path}: no songs")
    return items


def find_samples(generated_dir: Path, idx: str, expected: int = 0) -> tuple[dict[int, Path], list[int]]:
    """``({k: path}, missing k)`` of ``<idx>_s<k>.wav`` in ``generated_dir``; with ``expected`` > 0, the
    samples 0..expected-1 are looked for and the absent ones listed (others found are kept too)."""
    pattern = re.compile(re.escape(idx) + r"_s(\d+)\.wav$")
    found = {}
    if generated_dir.is_dir():
        for p in generated_dir.iterdir():
            m = pattern.match(p.name)
            if m and p.is_file():
                found[int(m.group(1))] = p
    missing = [k for k in range(expected) if k not in found]
    return dict(sorted(found.items())), missing


def sample_path(generated_dir: Path, idx: str, k: int) -> Path:
    return generated_dir / f"{idx}_s{k}.wav"


def references_from_dir(directory: Path, ids: list[str]) -> dict[str, Path]:
    """``{idx: file}`` for the songs with an ``<idx>.wav`` or ``<idx>.flac`` in ``directory``."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such reference directory")
    out = {}
    for idx in ids:
        for suffix in REFERENCE_SUFFIXES:
            if (directory / f"{idx}{suffix}").is_file():
                out[idx] = directory / f"{idx}{suffix}"
                break
    return out


def references_from_manifest(path: Path, ids: list[str]) -> dict[str, Path]:
    """``{idx: file}`` of the songs whose recording the manifest holds (a recording of one audio file, or
    a cut covering all of one); other kinds of source are an InputError naming the entry."""
    from songbloom.manifests import load_song_cuts

    wanted = set(ids)
    out = {}
    for cut in load_song_cuts(path):
        rec = getattr(cut, "recording", None)
        key = cut.id if cut.id in wanted else getattr(rec, "id", None)
        if key not in wanted or rec is None:
            continue
        sources = rec.sources
        if len(sources) != 1 or sources[0].type != "file":
            raise InputError(f"{path}: recording {rec.id!r}: expected one audio file as its source, got "
                             f"{len(sources)} source(s) of type {', '.join(s.type for s in sources)}")
        if abs(cut.start) > 1e-3 or abs(cut.duration - rec.duration) > 1e-2:
            raise InputError(f"{path}: cut {cut.id!r} covers {cut.start:.2f}-{cut.end:.2f} s of its "
                             f"{rec.duration:.2f} s recording; expected whole songs")
        file = Path(sources[0].source)
        if not file.is_absolute() and not file.is_file():
            file = path.parent / file
        out[key] = file
    return out


def read_dev_metrics(path: str | Path) -> dict[str, float | int]:
    """A JSON object of numbers (module docstring); anything else is an InputError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such dev metrics file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object of numbers, got {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{path}: key '{key}': expected a finite number, got {value!r}")
        out[str(key)] = value if isinstance(value, int) else float(value)  # counts stay integers
    return out
