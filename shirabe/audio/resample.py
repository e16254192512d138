"""Sample-rate conversion (soxr, high quality), shape-preserving."""

from __future__ import annotations

import numpy as np
import soxr


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``wav`` along its first axis (samples, or samples x channels).

    Returns float32. A no-op (copy-free) when the rates are equal.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if int(orig_sr) == int(target_sr):
        return wav
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    return soxr.resample(wav, int(orig_sr), int(target_sr), quality="HQ").astype(np.float32)
