"""Load and save audio as float32 numpy arrays in wav, flac or mp3.

Arrays are ``(samples,)`` for mono or ``(samples, channels)`` for multichannel,
in [-1, 1]. Writes are atomic (a temporary file renamed into place), so a crash
never leaves a truncated file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from shirabe.audio.resample import resample
from shirabe.cli import InputError

SILENCE_PEAK = 1e-4  # -80 dBFS: audio whose peak stays below holds nothing audible


def is_silent(wav: np.ndarray) -> bool:
    """True for audio with no samples or a peak below :data:`SILENCE_PEAK`."""
    return wav.size == 0 or float(np.max(np.abs(wav))) < SILENCE_PEAK


# extension -> (libsndfile format, default subtype)
AUDIO_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def _format_of(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext not in AUDIO_FORMATS:
        raise InputError(f"{path}: unsupported audio format '.{ext}' (use one of: {', '.join(AUDIO_FORMATS)})")
    return ext


def load_audio(
    path: str | Path,
    sr: int | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Read ``path``; downmix to mono if ``mono``; resample to ``sr`` if given.

    Returns ``(wav, sample_rate)``. A missing, empty (0 bytes) or unreadable file
    raises :class:`InputError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty audio file (0 bytes)")
    try:
        wav, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise InputError(f"{path}: cannot read audio ({e})") from e
    wav = wav.mean(axis=1) if mono else (wav[:, 0] if wav.shape[1] == 1 else wav)
    if sr is not None and sr != file_sr:
        wav = resample(wav, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(wav, dtype=np.float32), int(file_sr)


def save_audio(
    path: str | Path,
    wav: np.ndarray,
    sr: int,
    subtype: str | None = None,
) -> Path:
    """Write ``wav`` (float, [-1, 1]) to ``path``; the format follows the extension.

    Samples outside [-1, 1] are clipped. Parent directories are created.
    """
    path = Path(path)
    ext = _format_of(path)
    fmt, default_subtype = AUDIO_FORMATS[ext]
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    if wav.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {wav.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".{ext}", dir=path.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)  # mkstemp makes 0600; an audio file gets the usual mode
    os.close(fd)
    try:
        sf.write(tmp, wav, int(sr), format=fmt, subtype=subtype or default_subtype)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
