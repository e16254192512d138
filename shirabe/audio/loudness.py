"""Loudness helpers: RMS measurement and normalisation of prompts/outputs."""

from __future__ import annotations

import numpy as np


def rms(wav: np.ndarray) -> float:
    """Root mean square of all samples (0.0 for an empty array)."""
    wav = np.asarray(wav, dtype=np.float64)
    return float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0


def raise_to_rms(wav: np.ndarray, target_rms: float) -> tuple[np.ndarray, float]:
    """Scale ``wav`` up to ``target_rms`` if it is quieter; never scale down.

    Returns the (possibly) scaled audio and the original RMS, so the caller can
    bring generated audio back to the original level with
    :func:`restore_rms`.
    """
    level = rms(wav)
    if 0.0 < level < target_rms:
        wav = (np.asarray(wav, dtype=np.float32) * (target_rms / level)).astype(np.float32)
    return wav, level


def restore_rms(wav: np.ndarray, original_rms: float, target_rms: float) -> np.ndarray:
    """Undo :func:`raise_to_rms` on audio generated at ``target_rms``."""
    if 0.0 < original_rms < target_rms:
        wav = (np.asarray(wav, dtype=np.float32) * (original_rms / target_rms)).astype(np.float32)
    return wav
