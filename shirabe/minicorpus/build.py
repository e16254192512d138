"""Build the mini corpus part by part, resumably.

Each part lives in ``<output_dir>/<part>/``. When a part starts, the settings
that shape it are written to ``<part>/.settings.json``; when it finishes, its
summary goes to ``<part>/.done``. A re-run with the same settings skips finished
parts and resumes unfinished ones (builders skip files already written); a
re-run with other settings is refused rather than mixing two corpora.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from shirabe.cli import InputError
from shirabe.minicorpus.config import PARTS, CorpusConfig
from shirabe.minicorpus.voices import set_kokoro_cache, set_kokoro_threads

logger = logging.getLogger(__name__)

# kokoro's output depends slightly on its thread count: fix it so that a seed
# gives the same corpus on machines with different numbers of cores.
KOKORO_THREADS = 2

# The settings each part depends on (a part is rebuilt only if these change).
PART_SETTINGS = {
    "speech": ("seed", "num_speakers", "sentences_per_speaker"),
    "songs": ("seed", "num_songs"),
    "accompaniment": ("seed", "num_songs"),
}


def _builder(part: str) -> Callable[[Path, CorpusConfig, bool], dict]:
    if part == "speech":
        from shirabe.minicorpus.speech import build_speech

        return build_speech
    if part == "songs":
        from shirabe.minicorpus.songs import build_songs

        return build_songs
    if part == "accompaniment":
        from shirabe.minicorpus.accompaniment import build_accompaniment

        return build_accompaniment
    raise InputError(f"unknown corpus part '{part}' (choose from {', '.join(PARTS)})")


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def parse_parts(spec: str | Iterable[str]) -> list[str]:
    """``"speech,songs"`` -> ``["speech", "songs"]``, validated, in canonical order."""
    names = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown or not names:
        raise InputError(
            f"--parts: unknown part(s) {', '.join(unknown) or '(none given)'}; choose from {','.join(PARTS)}"
        )
    return [p for p in PARTS if p in names]


def build_corpus(
    output_dir: str | Path, parts: Iterable[str], cfg: CorpusConfig, progress: bool = True
) -> dict[str, dict]:
    """Build (or finish) the requested parts; returns each part's summary."""
    output_dir = Path(output_dir).resolve()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output-dir {output_dir}: cannot create ({e.strerror})") from e
    set_kokoro_cache(output_dir / ".cache" / "kokoro")
    set_kokoro_threads(KOKORO_THREADS)

    summaries = {}
    for part in parse_parts(list(parts)):
        part_dir = output_dir / part
        settings = {k: getattr(cfg, k) for k in PART_SETTINGS[part]}
        settings_file, done_file = part_dir / ".settings.json", part_dir / ".done"
        if settings_file.is_file():
            previous = json.loads(settings_file.read_text(encoding="utf-8"))
            if previous != settings:
                raise InputError(
                    f"{part_dir} was made with {previous}, not {settings}; "
                    "remove it or choose another --output-dir"
                )
        if done_file.is_file():
            summaries[part] = json.loads(done_file.read_text(encoding="utf-8"))
            logger.info("%s: already complete in %s, skipping", part, part_dir)
            continue
        part_dir.mkdir(parents=True, exist_ok=True)
        _write_json(settings_file, settings)
        logger.info("%s: building in %s with %s", part, part_dir, settings)
        start = time.monotonic()
        summary = _builder(part)(part_dir, cfg, progress)
        summary = dict(summary, seconds_to_build=round(time.monotonic() - start, 1))
        _write_json(done_file, summary)
        logger.info("%s: done in %.1f s: %s", part, summary["seconds_to_build"], summary)
        summaries[part] = summary
    return summaries
