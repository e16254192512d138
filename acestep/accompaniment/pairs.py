"""Vocal / target pairs for accompaniment training: find, check, normalise, trim, split.

A data folder holds, per key, ``{key}_vocal``, ``{key}_inst`` and/or ``{key}_mix`` (wav, flac or
mp3), ``{key}_prompt.txt`` (comma-separated tags) and optionally ``{key}_lyrics.txt`` (absent:
``[instrumental]``). The target is ``_inst`` for ``output_type`` accompaniment and ``_mix`` for mix.
Each pair is read at 48 kHz stereo (mono repeated), optionally loudness-normalised (each file to
the target LUFS on its own), and vocal and target are cut to their common length; then written as
two seed-file folders ``<split>/vocal/{key}.flac`` and ``<split>/target/{key}.flac`` (each with
the key's prompt and lyrics files), which ``acestep.bin.cache_latents --target audio`` caches.
A key with a missing, empty or undecodable file, or no prompt, is skipped and listed with the
reason in ``rejects.txt``; finished keys are kept when the preparation runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shirabe.cli import InputError

SAMPLE_RATE = 48000
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
INSTRUMENTAL = "[instrumental]"
TARGET_PART = {"accompaniment": "inst", "mix": "mix"}


@dataclass(frozen=True)
class Pair:
    key: str
    vocal: Path | None
    target: Path | None
    prompt: Path
    lyrics: Path


def _part(folder: Path, key: str, part: str) -> list[Path]:
    return [p for p in (folder / f"{key}_{part}{ext}" for ext in AUDIO_EXTENSIONS) if p.is_file()]


def find_pairs(folder: str | Path, output_type: str = "accompaniment") -> list[Pair]:
    """Every key that has any vocal/inst/mix file, sorted (files may be missing: :func:`check_pair` says)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such data folder")
    if output_type not in TARGET_PART:
        raise InputError(f"output type must be one of {', '.join(TARGET_PART)}, got {output_type!r}")
    keys = set()
    for p in folder.iterdir():
        if p.suffix.lower() in AUDIO_EXTENSIONS:
            for part in ("vocal", "inst", "mix"):
                if p.stem.endswith(f"_{part}"):
                    keys.add(p.stem[: -len(part) - 1])
    pairs = []
    for key in sorted(keys):
        vocal, target = _part(folder, key, "vocal"), _part(folder, key, TARGET_PART[output_type])
        pairs.append(Pair(key, vocal[0] if len(vocal) == 1 else None, target[0] if len(target) == 1 else None,
                          folder / f"{key}_prompt.txt", folder / f"{key}_lyrics.txt"))
    return pairs


def check_pair(pair: Pair, folder: Path, output_type: str) -> None:
    """InputError naming what is missing."""
    for what, path, part in (("vocal", pair.vocal, "vocal"), ("target", pair.target, TARGET_PART[output_type])):
        if path is None:
            found = _part(folder, pair.key, part)
            reason = "several files: " + ", ".join(p.name for p in found) if found else "no file"
            raise InputError(f"{folder / (pair.key + '_' + part)}.*: {what}: {reason}")
    if not pair.prompt.is_file():
        raise InputError(f"{pair.prompt}: no prompt file")
    if not pair.prompt.read_text(encoding="utf-8").strip():
        raise InputError(f"{pair.prompt}: empty prompt file")


def read_stereo(path: Path) -> np.ndarray:
    """[samples, 2] float32 at 48 kHz (InputError for an unreadable file)."""
    from shirabe.audio import load_audio

    wav, _ = load_audio(path, sr=SAMPLE_RATE, mono=False)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = np.stack([wav, wav], axis=1)
    if wav.shape[0] == 0:
        raise InputError(f"{path}: no samples")
    return np.clip(wav[:, :2], -1.0, 1.0)


def prepare_pair(pair: Pair, loudness: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(vocal, target) at 48 kHz stereo, normalised when ``loudness`` is set, cut to a common length."""
    from acestep.accompaniment.loudness import normalize_loudness

    vocal, target = read_stereo(pair.vocal), read_stereo(pair.target)
    if loudness is not None:
        vocal, _ = normalize_loudness(vocal, SAMPLE_RATE, loudness)
        target, _ = normalize_loudness(target, SAMPLE_RATE, loudness)
    n = min(len(vocal), len(target))
    return vocal[:n], target[:n]


def lyrics_of(pair: Pair) -> str:
    if pair.lyrics.is_file():
        text = pair.lyrics.read_text(encoding="utf-8")
        if text.strip():
            return text
    return INSTRUMENTAL
