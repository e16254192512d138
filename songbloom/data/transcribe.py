"""Lyrics for songs that have none: Whisper on fixed-length chunks, one line of text per chunk.

Each audio file (``.wav``, ``.flac``, ``.mp3``) of a folder is mixed to mono,
cut into consecutive ``chunk_sec`` chunks (at most Whisper's 30 s window; the
last may be shorter) and every chunk transcribed greedily by
:class:`shirabe.eval.asr.WhisperASR` in Japanese. ``<id>.txt`` gets one line
per chunk, in order: the chunk's text with line breaks turned into spaces, or
an empty line for a chunk that is silent (not sent to Whisper, which invents
text on silence) or where Whisper heard nothing. The folder is then ready for
``prepare_song_corpus.py`` (plain lines: one ``[verse]``, a ``.`` per line).

A file whose ``<id>.txt`` exists is skipped, so an interrupted run resumes;
files are written atomically. Audio that cannot be read is logged and listed
in ``rejects.tsv`` in the output folder; the other files are still done.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from shirabe.audio import load_audio
from shirabe.audio.io import is_silent
from shirabe.cli import InputError
from shirabe.data.rejects import Rejects, reason_of

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3")
WHISPER_WINDOW = 30.0
ASR_SAMPLE_RATE = 16000


def chunks(wav: np.ndarray, sr: int, chunk_sec: float) -> list[np.ndarray]:
    """Consecutive ``chunk_sec`` pieces of ``wav`` (the last one shorter)."""
    size = max(1, int(round(chunk_sec * sr)))
    return [wav[i: i + size] for i in range(0, len(wav), size)]


def transcribe_chunks(asr, wav: np.ndarray, sr: int, chunk_sec: float) -> list[str]:
    """One line per chunk (module docstring)."""
    lines = []
    for piece in chunks(wav, sr, chunk_sec):
        text = "" if is_silent(piece) else asr.transcribe(piece, sr)
        lines.append(" ".join(text.split()))
    return lines


def audio_files(audio_dir: Path) -> list[Path]:
    return sorted(p for p in audio_dir.iterdir()
                  if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp.{os.getpid()}.{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def transcribe_folder(asr, audio_dir: str | Path, output_dir: str | Path, chunk_sec: float = WHISPER_WINDOW) -> dict:
    """Write ``<id>.txt`` for every audio file of ``audio_dir`` that has none yet; returns counts."""
    audio_dir, output_dir = Path(audio_dir), Path(output_dir)
    if not 0 < chunk_sec <= WHISPER_WINDOW:
        raise InputError(f"--chunk-sec must be in (0, {WHISPER_WINDOW:g}] (Whisper's window), got {chunk_sec}")
    if not audio_dir.is_dir():
        raise InputError(f"{audio_dir}: no such audio directory")
    files = audio_files(audio_dir)
    if not files:
        raise InputError(f"{audio_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    output_dir.mkdir(parents=True, exist_ok=True)
    done = skipped = 0
    rejects = Rejects()
    seen = set()
    for path in files:
        out = output_dir / f"{path.stem}.txt"
        if path.stem in seen:
            rejects.add(path.stem, str(path), f"duplicate id: another audio file is also named {path.stem}")
            continue
        seen.add(path.stem)
        if out.is_file():
            skipped += 1
            continue
        try:
            wav, sr = load_audio(path, sr=ASR_SAMPLE_RATE)
        except InputError as e:
            logger.warning("%s", e)
            rejects.add(path.stem, str(path), f"unreadable audio: {reason_of(e, path)}")
            continue
        lines = transcribe_chunks(asr, wav, sr, chunk_sec)
        _write_text(out, "".join(line + "\n" for line in lines))
        done += 1
        logger.info("%s: %d chunks -> %s", path.name, len(lines), out)
    rejects.write(output_dir / "rejects.tsv")
    logger.info("transcribed %d files, %d already done, left out %s -> %s", done, skipped, rejects.summary(),
                output_dir)
    return {"files": len(files), "transcribed": done, "skipped": skipped, "rejects": len(rejects)}
