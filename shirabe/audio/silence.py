"""Silence trimming by frame energy (no pydub needed).

The signal is cut into 10 ms chunks; a chunk is silent when its level is below
``threshold_db`` dBFS (RMS relative to full scale 1.0).

:func:`remove_silence` trims the edges, keeping ``edge_keep`` seconds of
silence before the first and after the last non-silent chunk, shortens every
inner silence longer than ``max_silence`` seconds to ``max_silence`` (unless
``only_edge``), and appends ``trail_silence`` seconds of digital silence.
"""

from __future__ import annotations

import numpy as np

CHUNK_SECONDS = 0.01


def silent_chunks(wav: np.ndarray, sr: int, threshold_db: float = -50.0) -> np.ndarray:
    """Boolean per 10 ms chunk (the last partial chunk included): True = silent."""
    chunk = max(1, int(round(sr * CHUNK_SECONDS)))
    n = int(np.ceil(len(wav) / chunk))
    if n == 0:
        return np.zeros(0, dtype=bool)
    padded = np.zeros(n * chunk, dtype=np.float64)
    padded[: len(wav)] = wav
    energy = np.sqrt(np.mean(padded.reshape(n, chunk) ** 2, axis=1))
    level = 20.0 * np.log10(np.maximum(energy, 1e-10))
    return level < threshold_db


def remove_silence(
    wav: np.ndarray,
    sr: int,
    only_edge: bool = False,
    trail_silence: float = 0.0,
    threshold_db: float = -50.0,
    max_silence: float = 1.0,
    edge_keep: float = 0.1,
) -> np.ndarray:
    """Trim/shorten silences as described in the module docstring (float32 out)."""
    wav = np.asarray(wav, dtype=np.float32)
    chunk = max(1, int(round(sr * CHUNK_SECONDS)))
    silent = silent_chunks(wav, sr, threshold_db)
    voiced = np.flatnonzero(~silent)
    if voiced.size == 0:
        out = wav[:0]
    else:
        keep = int(round(edge_keep * sr))
        start = max(0, voiced[0] * chunk - keep)
        end = min(len(wav), (voiced[-1] + 1) * chunk + keep)
        if only_edge:
            out = wav[start:end]
        else:
            out = _shorten_inner(wav, silent, chunk, start, end, int(round(max_silence * sr)))
    if trail_silence > 0:
        out = np.concatenate([out, np.zeros(int(round(trail_silence * sr)), dtype=np.float32)])
    return out


def _shorten_inner(wav, silent, chunk, start, end, max_len) -> np.ndarray:
    pieces = []
    pos = start
    i = 0
    n = len(silent)
    while i < n:
        if not silent[i]:
            i += 1
            continue
        j = i
        while j < n and silent[j]:
            j += 1
        s, e = i * chunk, min(j * chunk, len(wav))
        if s >= start and e <= end and e - s > max_len:
            half = max_len // 2
            pieces.append(wav[pos : s + half])
            pos = e - (max_len - half)
        i = j
    pieces.append(wav[pos:end])
    return np.concatenate(pieces) if pieces else wav[start:end]
