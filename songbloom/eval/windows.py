"""Long songs cut into phrase-like windows, for recognizers trained on short clips of sung phrases.

:func:`phrase_windows` first cuts at rests: a frame is quiet when its level is below
``floor_db`` dBFS or more than ``range_db`` below the song's loud frames (the 95th
percentile of the frame levels, as the vocal activity detector of
:mod:`songbloom.eval.structure` reads loudness); a run of quiet frames of at least
``min_rest`` seconds is a rest. Between rests lie the sung stretches; each becomes a
window padded by ``pad`` seconds of the rests around it (the training clips' padding),
and stretches without a loud frame (silence) are left out. A stretch longer than
``max_seconds`` (a mix whose accompaniment never rests) is cut further by
:func:`quiet_windows`: while more than ``max_seconds`` remain, the next cut goes to the
quietest point (the level averaged over ``smooth`` seconds) between ``min_seconds`` and
``max_seconds`` after the previous cut.

The phone recognizer and the ASR transcribe each window and the transcripts are joined in
order before they are compared with the whole lyrics: no alignment of lyrics to windows is
needed.
"""

from __future__ import annotations

import numpy as np

from songbloom.eval.structure import (
    DEFAULT_FLOOR_DB,
    DEFAULT_RANGE_DB,
    HOP_SECONDS,
    RATE,
    WINDOW_SECONDS,
    frame_levels_db,
    frames,
)

DEFAULT_MIN_REST = 0.2
DEFAULT_PAD = 0.15


def quiet_windows(levels_db: np.ndarray, start: float, end: float, max_seconds: float, min_seconds: float,
                  hop: float = HOP_SECONDS, smooth: float = 0.2) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of consecutive windows covering ``[start, end]`` (module docstring);
    ``levels_db`` are the whole song's frame levels (frame ``j`` centred at ``j * hop + 0.02`` s)."""
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds} and {max_seconds}")
    levels = np.asarray(levels_db, dtype=np.float64)
    k = max(1, int(round(smooth / hop)))
    smoothed = np.convolve(levels, np.ones(k) / k, mode="same") if len(levels) else levels
    times = np.arange(len(levels)) * hop + WINDOW_SECONDS / 2
    out, at = [], start
    while end - at > max_seconds:
        inside = np.flatnonzero((times >= at + min_seconds) & (times <= at + max_seconds))
        if len(inside) == 0:
            cut = at + max_seconds
        else:
            best = inside[smoothed[inside] == smoothed[inside].min()][-1]
            cut = float(times[best])
        out.append((at, cut))
        at = cut
    out.append((at, end))
    return out


def phrase_windows(levels_db: np.ndarray, total: float, max_seconds: float, min_seconds: float | None = None,
                   range_db: float = DEFAULT_RANGE_DB, floor_db: float = DEFAULT_FLOOR_DB,
                   min_rest: float = DEFAULT_MIN_REST, pad: float = DEFAULT_PAD,
                   hop: float = HOP_SECONDS) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the windows of a song of ``total`` seconds (module docstring);
    ``min_seconds`` of the fallback defaults to half of ``max_seconds``."""
    levels = np.asarray(levels_db, dtype=np.float64)
    if len(levels) == 0:
        return []
    loud = levels >= max(floor_db, float(np.percentile(levels, 95)) - range_db)
    if not loud.any():
        return []
    # runs of loud frames, joined across quiet gaps shorter than min_rest
    idx = np.flatnonzero(loud)
    gaps = np.flatnonzero(np.diff(idx) * hop >= min_rest + hop - 1e-9)
    firsts = np.concatenate([[idx[0]], idx[gaps + 1]])
    lasts = np.concatenate([idx[gaps], [idx[-1]]])
    out = []
    for i, (a, b) in enumerate(zip(firsts, lasts)):
        start = max(0.0, a * hop - pad)
        end = min(total, b * hop + WINDOW_SECONDS + pad)
        if i > 0:  # never past the middle of the rest before
            start = max(start, (lasts[i - 1] * hop + WINDOW_SECONDS + a * hop) / 2)
        if i + 1 < len(firsts):
            end = min(end, (b * hop + WINDOW_SECONDS + firsts[i + 1] * hop) / 2)
        out += quiet_windows(levels, start, end, max_seconds, min_seconds or max_seconds / 2, hop)
    return out


def split_audio(wav: np.ndarray, sr: int, max_seconds: float) -> list[np.ndarray]:
    """Mono ``wav`` cut into :func:`phrase_windows`; ``max_seconds`` of 0 keeps it whole.
    A silent signal gives no window."""
    wav = np.asarray(wav, dtype=np.float32)
    if max_seconds <= 0:
        return [wav]
    from shirabe.audio.resample import resample

    mono = resample(wav, int(sr), RATE).astype(np.float64)
    levels = frame_levels_db(frames(mono, int(round(HOP_SECONDS * RATE)), int(round(WINDOW_SECONDS * RATE))))
    spans = phrase_windows(levels, len(wav) / sr, max_seconds)
    return [wav[int(round(a * sr)):int(round(b * sr))] for a, b in spans]
