"""Songs of a custom folder or JSONL, as :class:`~songbloom.data.corpus.SongSource`.

**Folder**: ``<id>.wav``, ``<id>.flac`` or ``<id>.mp3`` in ``audio_dir`` (not
searched recursively), each with ``<id>.txt`` lyrics (UTF-8) in ``lyrics_dir``
(default: the same folder). The lyrics are SongBloom format (structure tags,
``.`` and ``,``) or plain Japanese, one sung line per line (read as one
``[verse]``, a ``.`` after each line; what ``transcribe_lyrics.py`` writes).

**JSONL**: one object per line with ``idx`` (or ``id``), ``audio`` (or
``wav``), ``lyrics`` and optionally ``prompt_wav`` (a 10 s style prompt to use
instead of one cut from the song); relative paths are relative to the JSONL's
folder. A line that is not such an object is rejected with its line number.

Ids become file names: characters other than letters, digits and ``. _ -``
are replaced by ``_``.
"""

from __future__ import annotations

import json
from pathlib import Path

from shirabe.cli import InputError
from songbloom.data.corpus import SongSource, safe_id

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3")


def _read_lyrics(path: Path) -> tuple[str | None, str | None]:
    """(text, problem)."""
    try:
        return path.read_text(encoding="utf-8-sig"), None
    except UnicodeDecodeError as e:
        return None, f"unreadable lyrics file: not UTF-8 ({e.reason} at byte {e.start})"
    except OSError as e:
        return None, f"unreadable lyrics file: {e.strerror or e}"


def list_folder(audio_dir: str | Path, lyrics_dir: str | Path | None = None) -> list[SongSource]:
    """The songs of a folder (module docstring), sorted by id."""
    audio_dir = Path(audio_dir)
    lyrics_dir = Path(lyrics_dir) if lyrics_dir is not None else audio_dir
    for d, what in ((audio_dir, "audio"), (lyrics_dir, "lyrics")):
        if not d.is_dir():
            raise InputError(f"{d}: no such {what} directory")
    audio: dict[str, list[Path]] = {}
    for p in sorted(audio_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."):
            audio.setdefault(p.stem, []).append(p)
    texts = {p.stem: p for p in sorted(lyrics_dir.glob("*.txt")) if p.is_file() and not p.name.startswith(".")}
    if not audio and not texts:
        raise InputError(f"{audio_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)}) and no .txt lyrics")
    sources = []
    for stem in sorted(set(audio) | set(texts)):
        sid = safe_id(stem)
        files = audio.get(stem, [])
        txt = texts.get(stem)
        src = SongSource(sid, str(files[0] if files else txt), audio=files[0] if files else audio_dir / f"{stem}.wav",
                         lyrics_path=txt)
        if len(files) > 1:
            src.notes.append(f"also {', '.join(p.name for p in files[1:])}; read {files[0].name}")
        if files and txt is None:
            src.problem = f"missing lyrics file: {stem}.txt in {lyrics_dir}"
        elif txt is not None:
            src.lyrics, problem = _read_lyrics(txt)
            if problem:
                src.problem, src.path = problem, str(txt)
        sources.append(src)
    return sources


def _path(value, base: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def list_jsonl(path: str | Path) -> list[SongSource]:
    """The songs of a JSONL file (module docstring), in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such JSONL file")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    base = path.parent
    sources = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            sources.append(SongSource(f"line{no}", where, problem=f"bad JSONL line: line {no}: {e.msg}"))
            continue
        if not isinstance(obj, dict):
            sources.append(SongSource(f"line{no}", where, problem=f"bad JSONL line: line {no}: not an object"))
            continue
        raw_id = obj.get("idx", obj.get("id"))
        sid = safe_id(str(raw_id)) if raw_id not in (None, "") else f"line{no}"
        audio = obj.get("audio", obj.get("wav"))
        lyrics = obj.get("lyrics")
        src = SongSource(sid, where, audio=_path(audio, base) if audio else None, lyrics=lyrics
                         if isinstance(lyrics, str) else None)
        if obj.get("prompt_wav"):
            src.prompt_wav = _path(obj["prompt_wav"], base)
        missing = [name for name, ok in (("idx", raw_id not in (None, "")), ("audio", bool(audio)),
                                         ("lyrics", isinstance(lyrics, str))) if not ok]
        if missing:
            src.problem = f"bad JSONL line: line {no}: missing field {', '.join(missing)}"
        sources.append(src)
    if not sources:
        raise InputError(f"{path}: no songs (the file holds no JSON lines)")
    return sources
