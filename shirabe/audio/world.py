"""WORLD vocoder helpers: new voices, re-pitched speech and singing.

``analyze`` splits a waveform into F0, spectral envelope and aperiodicity;
``synthesize`` puts them back together. Voices are made distinct by moving the
spectral envelope along the frequency axis (``warp_formants``: a ratio above 1
raises formants, as for a shorter vocal tract) and by scaling F0; ``repitch``
moves a recording to another register with its timbre and timing kept.
"""

from __future__ import annotations

import numpy as np
import pyworld

FRAME_PERIOD_MS = 5.0


def analyze(
    wav: np.ndarray,
    sr: int,
    frame_period: float = FRAME_PERIOD_MS,
    f0_floor: float = 60.0,
    f0_ceil: float = 900.0,
    f0_method: str = "harvest",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(f0, sp, ap)`` of a mono waveform (harvest + CheapTrick + D4C).

    ``f0_method="dio"`` uses DIO + StoneMask, several times faster than harvest
    on long recordings and a little less eager to call frames voiced.
    """
    x = np.ascontiguousarray(wav, dtype=np.float64)
    if f0_method == "harvest":
        f0, t = pyworld.harvest(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    elif f0_method == "dio":
        f0, t = pyworld.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
        f0 = pyworld.stonemask(x, f0, t, sr)
    else:
        raise ValueError(f"unknown F0 method '{f0_method}' (harvest or dio)")
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    return f0, sp, ap


def synthesize(
    f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, sr: int, frame_period: float = FRAME_PERIOD_MS
) -> np.ndarray:
    """Inverse of :func:`analyze`; returns float32 samples."""
    y = pyworld.synthesize(
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(sp, dtype=np.float64),
        np.ascontiguousarray(ap, dtype=np.float64),
        sr,
        frame_period,
    )
    return y.astype(np.float32)


def warp_formants(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Move a spectral envelope (frames x bins) along frequency by ``ratio``.

    Output bin ``k`` takes the envelope at ``k / ratio`` (linear interpolation),
    so ``ratio > 1`` moves formants up. Bins past the top are held at the last value.
    """
    if ratio <= 0:
        raise ValueError(f"formant ratio must be positive, got {ratio}")
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / ratio, 0, sp.shape[1] - 1)
    out = np.empty_like(sp)
    for i, frame in enumerate(sp):
        out[i] = np.interp(src, bins, frame)
    return out


def semitones_to_ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


def transform_voice(
    wav: np.ndarray,
    sr: int,
    formant_ratio: float = 1.0,
    pitch_semitones: float = 0.0,
    f0_floor: float = 60.0,
    f0_ceil: float = 900.0,
    f0_method: str = "harvest",
) -> np.ndarray:
    """Re-synthesize ``wav`` with warped formants and F0 scaled by ``pitch_semitones``.

    ``f0_floor``/``f0_ceil`` bound the F0 search; a range fitted to the voice
    is faster and avoids octave errors.
    """
    f0, sp, ap = analyze(wav, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, f0_method=f0_method)
    if formant_ratio != 1.0:
        sp = warp_formants(sp, formant_ratio)
    return synthesize(f0 * semitones_to_ratio(pitch_semitones), sp, ap, sr)


def repitch(wav: np.ndarray, sr: int, semitones: float, f0: np.ndarray | None = None,
            f0_rate: float = 100.0) -> np.ndarray:
    """``wav`` sung ``semitones`` higher with the same spectral envelope (timbre) and timing.

    ``f0`` is the F0 track (Hz, 0 = unvoiced) at ``f0_rate`` frames/s when known (it
    then also drives the envelope analysis, which is faster and free of tracking
    errors); otherwise harvest tracks it. The output has ``len(wav)`` samples.
    """
    x = np.ascontiguousarray(wav, dtype=np.float64)
    if f0 is None:
        f0, sp, ap = analyze(x, sr)
        period = FRAME_PERIOD_MS
    else:
        f0 = np.ascontiguousarray(f0, dtype=np.float64)
        t = np.arange(f0.size, dtype=np.float64) / f0_rate
        sp = pyworld.cheaptrick(x, f0, t, sr)
        ap = pyworld.d4c(x, f0, t, sr)
        period = 1000.0 / f0_rate
    y = synthesize(f0 * semitones_to_ratio(semitones), sp, ap, sr, period)
    return np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
