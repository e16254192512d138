"""The style prompt: the ``prompt_sec`` window of a song with the most sung (energetic) frames.

The song (mixed to mono) is cut into 50 ms frames; a frame is *active* when its
RMS level is within ``range_db`` (30 dB) of the loudest frame and above
``floor_db`` (-60 dBFS). Every window start on the frame grid from the first
active frame on is scored by its number of active frames; ties go to the
window with more energy (to 0.01 dB), then to the earliest. Starting at or after the first
active frame, a prompt never begins in the song's leading silence (only a
song barely longer than the prompt, whose last window starts earlier, has to).
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.05
RANGE_DB = 30.0
FLOOR_DB = -60.0


def frame_levels(wav: np.ndarray, sr: int, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """RMS level (dBFS) of each whole frame of mono ``wav``."""
    hop = max(1, int(round(sr * frame_seconds)))
    n = len(wav) // hop
    frames = np.asarray(wav[: n * hop], dtype=np.float64).reshape(n, hop)
    return 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20))


def prompt_start(wav: np.ndarray, sr: int, prompt_sec: float, frame_seconds: float = FRAME_SECONDS,
                 range_db: float = RANGE_DB, floor_db: float = FLOOR_DB) -> float:
    """Start (seconds) of the prompt window (module docstring); 0.0 when the song is not longer."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    levels = frame_levels(wav, sr, frame_seconds)
    width = int(round(prompt_sec / frame_seconds))
    last = len(levels) - width
    if last <= 0 or not levels.size:
        return 0.0
    active = (levels >= levels.max() - range_db) & (levels >= floor_db)
    if not active.any():
        return 0.0
    first = min(int(np.argmax(active)), last)
    counts = np.concatenate([[0], np.cumsum(active)])
    energy = np.concatenate([[0.0], np.cumsum(10.0 ** (levels / 10.0))])
    starts = np.arange(first, last + 1)
    score = counts[starts + width] - counts[starts]
    # energy compared in dB to 0.01 dB, so windows of equal content tie (and the earliest wins)
    power = np.round(10.0 * np.log10(np.maximum(energy[starts + width] - energy[starts], 1e-20)), 2)
    best = starts[np.lexsort((starts, -power, -score))[0]]
    return round(float(best) * frame_seconds, 6)


def cut_prompt(wav: np.ndarray, sr: int, start: float, prompt_sec: float) -> np.ndarray:
    """``prompt_sec`` seconds of ``wav`` (samples, or samples x channels) from ``start``."""
    a = int(round(start * sr))
    return wav[a: a + int(round(prompt_sec * sr))]
