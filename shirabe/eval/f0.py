"""F0 metrics between a reference and a hypothesis track (Hz per frame, 0 = unvoiced).

Both tracks must share a frame rate (e.g. both from :func:`shirabe.pitch.extract_f0`
with the same settings); if their lengths differ the longer one is cut to the
shorter. For voice conversion the reference is usually the source F0 times
``2^(shift / 12)`` (durations are preserved, so no alignment is needed).

- :func:`f0_rmse`: root mean square error over frames voiced in both, in Hz or
  in cents (``1200·log2(hyp / ref)``, independent of register);
- :func:`f0_corr`: Pearson correlation over frames voiced in both (of Hz, or of
  log-Hz with ``log=True``);
- :func:`vuv_error`: share of all frames whose voicing decisions disagree;
- :func:`raw_pitch_accuracy`: share of jointly voiced frames within 50 cents.

A metric over jointly voiced frames is NaN when there are none.
"""

from __future__ import annotations

import numpy as np
import torch


def _tracks(ref, hyp) -> tuple[np.ndarray, np.ndarray]:
    def as_array(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D F0 track, got shape {x.shape}")
        return x

    ref, hyp = as_array(ref), as_array(hyp)
    n = min(len(ref), len(hyp))
    return ref[:n], hyp[:n]


def jointly_voiced(ref, hyp) -> tuple[np.ndarray, np.ndarray]:
    """The two tracks restricted to frames where both are voiced (> 0)."""
    ref, hyp = _tracks(ref, hyp)
    both = (ref > 0) & (hyp > 0)
    return ref[both], hyp[both]


def f0_rmse(ref_f0, hyp_f0, unit: str = "hz") -> float:
    """RMSE over jointly voiced frames, ``unit`` 'hz' or 'cents'."""
    ref, hyp = jointly_voiced(ref_f0, hyp_f0)
    if unit not in ("hz", "cents"):
        raise ValueError(f"unit must be 'hz' or 'cents', got {unit!r}")
    if ref.size == 0:
        return float("nan")
    diff = 1200.0 * np.log2(hyp / ref) if unit == "cents" else hyp - ref
    return float(np.sqrt(np.mean(diff**2)))


def f0_corr(ref_f0, hyp_f0, log: bool = False) -> float:
    """Pearson correlation over jointly voiced frames (of log-F0 when ``log``)."""
    ref, hyp = jointly_voiced(ref_f0, hyp_f0)
    if log:
        ref, hyp = np.log(ref), np.log(hyp)
    if ref.size < 2:
        return float("nan")
    ref, hyp = ref - ref.mean(), hyp - hyp.mean()
    denom = np.sqrt(np.sum(ref**2) * np.sum(hyp**2))
    return float(np.sum(ref * hyp) / denom) if denom > 0 else float("nan")


def vuv_error(ref_f0, hyp_f0) -> float:
    """Share of frames where one track is voiced and the other is not."""
    ref, hyp = _tracks(ref_f0, hyp_f0)
    if ref.size == 0:
        return float("nan")
    return float(np.mean((ref > 0) != (hyp > 0)))


def raw_pitch_accuracy(ref_f0, hyp_f0, tolerance_cents: float = 50.0) -> float:
    """Share of jointly voiced frames whose error is within ``tolerance_cents``."""
    ref, hyp = jointly_voiced(ref_f0, hyp_f0)
    if ref.size == 0:
        return float("nan")
    return float(np.mean(np.abs(1200.0 * np.log2(hyp / ref)) <= tolerance_cents))
