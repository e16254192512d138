"""Loudness of vocal / accompaniment audio: ITU-R BS.1770 integrated loudness (pyloudnorm),
normalisation to a target (−14 LUFS by default) and the loudness-matched mix.

Audio is numpy float ``(samples,)`` or ``(samples, channels)``, as :mod:`shirabe.audio.io` reads it.
A signal shorter than the standard 400 ms gating block is measured as one block of its own length.
Silent audio (below the −70 LUFS absolute gate, or no samples) measures ``-inf`` and is never scaled.

Mixing rule (:func:`mix_matched`): the accompaniment is scaled so that its integrated loudness is
the vocal's plus ``offset_lu`` (−3 LU by default: the vocal stays on top), the two are summed, and
when the sum's sample peak exceeds ``peak`` (0.98, −0.18 dBFS) the whole mix is scaled down to that
peak (a single gain, no compression), so it is written without clipping.
"""

from __future__ import annotations

import math

import numpy as np

TARGET_LUFS = -14.0
MIX_OFFSET_LU = -3.0
MIX_PEAK = 0.98
BLOCK_SECONDS = 0.4


def integrated_loudness(wav: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (``-inf`` for silence)."""
    import pyloudnorm

    wav = np.asarray(wav, dtype=np.float64)
    if wav.shape[0] == 0 or not np.any(wav):
        return -math.inf
    block = min(BLOCK_SECONDS, wav.shape[0] / sr)
    meter = pyloudnorm.Meter(int(sr), block_size=block)
    with np.errstate(divide="ignore"):
        value = float(meter.integrated_loudness(wav))
    return value if math.isfinite(value) else -math.inf


def gain_to(wav: np.ndarray, sr: int, target_lufs: float) -> float:
    """The linear gain that brings ``wav`` to ``target_lufs`` (1.0 for silence)."""
    level = integrated_loudness(wav, sr)
    if not math.isfinite(level):
        return 1.0
    return float(10.0 ** ((target_lufs - level) / 20.0))


def normalize_loudness(wav: np.ndarray, sr: int, target_lufs: float = TARGET_LUFS) -> tuple[np.ndarray, float]:
    """``(wav scaled to target_lufs, gain)``; silence comes back unchanged with gain 1.

    No limiting: a quiet, peaky signal can exceed ±1 after the gain (save_audio clips it)."""
    gain = gain_to(wav, sr, target_lufs)
    return (np.asarray(wav, dtype=np.float32) * np.float32(gain)).astype(np.float32), gain


def mix_matched(vocal: np.ndarray, accompaniment: np.ndarray, sr: int, offset_lu: float = MIX_OFFSET_LU,
                peak: float = MIX_PEAK) -> tuple[np.ndarray, float, float]:
    """``(mix, accompaniment gain, mix gain)`` by the rule of the module docstring; the two signals
    must have the same shape."""
    vocal = np.asarray(vocal, dtype=np.float64)
    accompaniment = np.asarray(accompaniment, dtype=np.float64)
    if vocal.shape != accompaniment.shape:
        raise ValueError(f"vocal {vocal.shape} and accompaniment {accompaniment.shape} differ in shape")
    level = integrated_loudness(vocal, sr)
    acc_gain = gain_to(accompaniment, sr, level + offset_lu) if math.isfinite(level) else 1.0
    mix, mix_gain = peak_limit(vocal + acc_gain * accompaniment, peak)
    return mix, acc_gain, mix_gain


def remove_dc(wav: np.ndarray) -> np.ndarray:
    """``wav`` minus its per-channel mean. A decoder's constant offset is inaudible but counts in the sample
    peak and, amplified by a loudness gain, would swamp the mix."""
    wav = np.asarray(wav, dtype=np.float32)
    return (wav - wav.mean(axis=0, keepdims=True)).astype(np.float32) if wav.size else wav


def peak_limit(wav: np.ndarray, peak: float = MIX_PEAK) -> tuple[np.ndarray, float]:
    """``(wav, 1.0)`` when its sample peak is at most ``peak``, else ``wav`` scaled down to that peak."""
    wav = np.asarray(wav)
    top = float(np.max(np.abs(wav))) if wav.size else 0.0
    gain = peak / top if top > peak else 1.0
    return (wav * gain).astype(np.float32), gain
