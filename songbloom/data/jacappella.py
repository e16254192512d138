"""The songs of a jaCappella tree (or one laid out like it), as :class:`~songbloom.data.corpus.SongSource`.

Layout::

    <root>/meta.csv                                   one row per song and voice part
    <root>/<subset>/<title>/lead_vocal.wav, mixture.wav, soprano.wav, ...
    <root>/<subset>/<title>/<title>.musicxml          lyrics as written
    <root>/<subset>/<title>/<title>_SVS.musicxml      lyrics as pronounced (kana)
    <root>/<subset>/<title>/<title>_romaji.musicxml   (not read)

With ``meta.csv`` (columns ``title_in_en``, ``subset``; ``title_in_ja``,
``voice_part`` and ``singer_id`` are used when present) the songs are its
rows, found at ``<root>/<subset>/<title_in_en>`` or, when the subset folder is
spelled differently, at the one folder named ``<title_in_en>`` anywhere below
the root. Song folders that ``meta.csv`` does not list are added (and logged).
Without ``meta.csv``, every folder holding a score or a ``lead_vocal``/
``mixture`` wav is a song, its subset the path between the root and it.

The score read is ``<title>_SVS`` (``--musicxml-type svs``) or ``<title>``
(``plain``), as ``.musicxml``, ``.mxl`` or ``.xml``; when a folder has none of
that kind, the one score of the other kind is read and the song's notes say so.
A song's id is its folder name (characters other than letters, digits,
``. _ -`` replaced by ``_``); its speaker, for ``lead_vocal`` audio, is the lead
singer's ``singer_id``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from shirabe.cli import InputError
from shirabe.data.rejects import reason_of
from songbloom.data.corpus import SongSource, safe_id

logger = logging.getLogger(__name__)

AUDIO_TYPES = ("lead_vocal", "mixture")
MUSICXML_TYPES = ("svs", "plain")
SCORE_SUFFIXES = (".musicxml", ".mxl", ".xml")
AUDIO_SUFFIXES = (".wav", ".flac")


def _kind(path: Path) -> str | None:
    """``svs``, ``romaji`` or ``plain`` for a score file name, None for other files."""
    if path.suffix.lower() not in SCORE_SUFFIXES:
        return None
    stem = path.stem.lower()
    return "svs" if stem.endswith("_svs") else "romaji" if stem.endswith("_romaji") else "plain"


def find_score(song_dir: Path, title: str, kind: str) -> tuple[Path, str | None]:
    """(score path, note) of ``kind``; the expected path (missing) when the folder has no usable score."""
    stem = f"{title}_SVS" if kind == "svs" else title
    for suffix in SCORE_SUFFIXES:
        if (song_dir / f"{stem}{suffix}").is_file():
            return song_dir / f"{stem}{suffix}", None
    scores = sorted(p for p in song_dir.iterdir() if p.is_file() and _kind(p)) if song_dir.is_dir() else []
    same = [p for p in scores if _kind(p) == kind]
    if len(same) == 1:
        return same[0], None
    other = [p for p in scores if _kind(p) == ("plain" if kind == "svs" else "svs")]
    if not same and len(other) == 1:
        return other[0], f"no {kind} score; read {other[0].name}"
    return song_dir / f"{stem}.musicxml", None


def _audio(song_dir: Path, audio_type: str) -> Path:
    for suffix in AUDIO_SUFFIXES:
        if (song_dir / f"{audio_type}{suffix}").is_file():
            return song_dir / f"{audio_type}{suffix}"
    return song_dir / f"{audio_type}.wav"


def walk_song_dirs(root: Path) -> list[Path]:
    """Folders below ``root`` holding a score or a lead_vocal/mixture audio file (hidden folders skipped)."""
    found = set()
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel) or not p.is_file():
            continue
        if _kind(p) or (p.stem in AUDIO_TYPES and p.suffix.lower() in AUDIO_SUFFIXES):
            found.add(p.parent)
    return sorted(found)


def read_meta(path: Path) -> list[dict[str, str]] | None:
    """Rows of ``meta.csv``; None (logged) when it lacks the ``title_in_en``/``subset`` columns."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read meta.csv ({reason_of(e)})") from None
    if not {"title_in_en", "subset"} <= columns:
        logger.warning("%s: no title_in_en/subset columns; finding the songs by walking the folders", path)
        return None
    return rows


def list_songs(root: str | Path, audio_type: str = "lead_vocal", musicxml_type: str = "svs") -> list[SongSource]:
    """The songs of the tree at ``root`` (module docstring), in meta.csv order, then by folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such corpus directory")
    if audio_type not in AUDIO_TYPES:
        raise InputError(f"audio type must be one of {', '.join(AUDIO_TYPES)}, got {audio_type!r}")
    if musicxml_type not in MUSICXML_TYPES:
        raise InputError(f"MusicXML type must be one of {', '.join(MUSICXML_TYPES)}, got {musicxml_type!r}")
    walked = walk_song_dirs(root)
    meta = read_meta(root / "meta.csv") if (root / "meta.csv").is_file() else None
    songs: list[tuple[Path | None, str, str, dict]] = []  # (folder, title, subset, info)
    listed: set[Path] = set()
    if meta is not None:
        by_song: dict[tuple[str, str], dict] = {}
        for row in meta:
            title, subset = (row.get("title_in_en") or "").strip(), (row.get("subset") or "").strip()
            if not title:
                continue
            info = by_song.setdefault((subset, title), {"title_ja": (row.get("title_in_ja") or "").strip()})
            if (row.get("voice_part") or "").strip() == "lead_vocal":
                info["lead_singer"] = (row.get("singer_id") or "").strip() or None
        for (subset, title), info in by_song.items():
            folder = root / subset / title
            if not folder.is_dir():
                named = [d for d in walked if d.name == title]
                folder = named[0] if len(named) == 1 else None
            if folder is not None:
                listed.add(folder)
            songs.append((folder, title, subset, info))
        extra = [d for d in walked if d not in listed]
        if extra:
            logger.warning("%d song folders are not in meta.csv; preparing them too: %s", len(extra),
                           ", ".join(str(d.relative_to(root)) for d in extra[:5]) + (" ..." if len(extra) > 5 else ""))
    else:
        extra = walked
    for d in extra:
        songs.append((d, d.name, "/".join(d.relative_to(root).parts[:-1]), {}))
    if not songs:
        raise InputError(f"{root}: no songs (no meta.csv rows and no folder with a score or "
                         f"{'/'.join(AUDIO_TYPES)} audio)")
    sources = []
    for folder, title, subset, info in songs:
        sid = safe_id(title)
        if folder is None:
            sources.append(SongSource(sid, str(root / subset / title), subset=subset,
                                      problem=f"missing song directory: {subset}/{title} (listed in meta.csv)"))
            continue
        score, note = find_score(folder, folder.name, musicxml_type)
        sources.append(SongSource(
            sid, str(folder), audio=_audio(folder, audio_type), score=score, subset=subset,
            speaker=info.get("lead_singer") if audio_type == "lead_vocal" else None,
            title=info.get("title_ja") or None, notes=[note] if note else [],
        ))
    return sources
