"""F0 track utilities: frame-rate conversion, pitch shifts, automatic key matching.

An F0 track is a 1-D array of Hz per frame, 0 meaning unvoiced. Every helper
here leaves unvoiced frames at 0 and accepts numpy arrays or torch tensors
(returning the same kind).
"""

from __future__ import annotations

import numpy as np
import torch

# Seed-VC's mel frame rate (22.05 kHz audio, hop 256), frames per second.
SEEDVC_MEL_FPS = 22050 / 256


def _to_numpy(f0) -> tuple[np.ndarray, object]:
    if isinstance(f0, torch.Tensor):
        return f0.detach().cpu().double().numpy(), f0
    return np.asarray(f0, dtype=np.float64), None


def _like(values: np.ndarray, template):
    if isinstance(template, torch.Tensor):
        return torch.from_numpy(values).to(dtype=template.dtype, device=template.device)
    return values


def resample_f0(
    f0, src_fps: float, dst_fps: float | None = None, n_frames: int | None = None
):
    """Resample an F0 track from ``src_fps`` to ``dst_fps`` frames/s.

    Target frame ``j`` sits at time ``j / dst_fps`` (source frame ``i`` at
    ``i / src_fps``), clamped to the last source frame. Voicing is taken from
    the nearest source frame, so unvoiced gaps keep their length in seconds;
    a voiced target frame interpolates linearly in log-F0 between its two
    neighbouring source frames when both are voiced, else takes the voiced
    neighbour's value. ``n_frames`` fixes the output length (e.g. the mel
    length); otherwise it is ``round(len(f0) * dst_fps / src_fps)``. With only
    ``n_frames``, ``dst_fps`` is taken as ``src_fps * n_frames / len(f0)``.
    """
    values, template = _to_numpy(f0)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D F0 track, got shape {values.shape}")
    n_src = len(values)
    if dst_fps is None and n_frames is None:
        raise ValueError("give dst_fps or n_frames")
    if dst_fps is None:
        dst_fps = src_fps * n_frames / max(n_src, 1)
    if n_frames is None:
        n_frames = int(round(n_src * dst_fps / src_fps))
    if n_src == 0 or n_frames <= 0:
        return _like(np.zeros(max(n_frames, 0)), template)
    pos = np.minimum(np.arange(n_frames) * (src_fps / dst_fps), n_src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_src - 1)
    frac = pos - lo
    nearest = np.where(frac < 0.5, lo, hi)
    voiced = values > 0
    log_f0 = np.log(np.where(voiced, values, 1.0))
    both = voiced[lo] & voiced[hi]
    interp = np.where(frac == 0.0, values[lo], np.exp((1.0 - frac) * log_f0[lo] + frac * log_f0[hi]))
    single = np.where(voiced[lo], values[lo], values[hi])
    out = np.where(both, interp, single)
    out = np.where(voiced[nearest], out, 0.0)
    return _like(out, template)


def shift_semitones(f0, semitones: float):
    """Multiply voiced frames by ``2^(semitones / 12)``; unvoiced frames stay 0."""
    values, template = _to_numpy(f0)
    out = np.where(values > 0, values * 2.0 ** (semitones / 12.0), values)
    return _like(out, template)


def median_log_f0(f0, voiced_min: float = 1.0) -> float:
    """Median of ``ln F0`` over frames with ``F0 > voiced_min``; NaN when none."""
    values, _ = _to_numpy(f0)
    voiced = values[values > voiced_min]
    return float(np.median(np.log(voiced))) if voiced.size else float("nan")


def auto_shift_semitones(source_f0, reference_f0, round_to_semitone: bool = False) -> float:
    """Shift in semitones that moves the source's median log-F0 onto the reference's.

    Voiced means ``F0 > 1`` Hz, as in Seed-VC. ``0.0`` when either track has no
    voiced frame. With ``round_to_semitone`` the shift is rounded to a whole
    semitone (keeps a melody in a key of the chromatic scale).
    """
    diff = median_log_f0(reference_f0) - median_log_f0(source_f0)
    if not np.isfinite(diff):
        return 0.0
    shift = 12.0 * diff / np.log(2.0)
    return float(np.round(shift)) if round_to_semitone else float(shift)


def auto_f0_adjust(source_f0, reference_f0, round_to_semitone: bool = False):
    """Seed-VC's ``auto_f0_adjust``: the source F0 moved to the reference's median pitch.

    On voiced frames (``F0 > 1``) the source log-F0 is shifted by
    ``median(ln F0_ref) - median(ln F0_src)``, which Seed-VC applies unrounded;
    ``round_to_semitone`` rounds that shift to whole semitones first.
    Returns the adjusted track (same kind as ``source_f0``).
    """
    values, template = _to_numpy(source_f0)
    shift = auto_shift_semitones(values, reference_f0, round_to_semitone)
    out = np.where(values > 1.0, values * 2.0 ** (shift / 12.0), values)
    return _like(out, template)
