"""Spectral and F0 metrics of a synthesis against a ground-truth recording of the same text.

The two recordings differ in timing, so they are aligned first: mel-cepstra
(:func:`shirabe.eval.mcd.mel_cepstrum`, ``frame_period`` ms frames) are paired
by DTW on their coefficients ``c1..cD`` (as in :func:`shirabe.eval.mcd.mcd_dtw`),
and the same path pairs the F0 frames, which are extracted at the same frame
rate (:func:`shirabe.pitch.extract_f0`, Harvest by default). Over the path:

- ``mcd``: mean mel-cepstral distortion (dB) — equal to ``mcd_dtw(ref, hyp, sr)``;
- ``f0_rmse_cents``: log-F0 RMSE, ``1200·log2(hyp / ref)`` over frames voiced in both;
- ``log_f0_corr``: Pearson correlation of log-F0 over frames voiced in both;
- ``vuv_error``: share of path frames whose voicing decisions disagree;
- ``aligned_frames``: the path length.
"""

from __future__ import annotations

import numpy as np

from shirabe.audio.resample import resample
from shirabe.eval.dtw import dtw_path, euclidean_distances
from shirabe.eval.f0 import f0_corr, f0_rmse, vuv_error
from shirabe.eval.mcd import (
    DEFAULT_FRAME_PERIOD,
    DEFAULT_ORDER,
    all_pass_alpha,
    frame_mcd,
    mel_cepstrum,
)


def _mono(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=1) if x.ndim == 2 else x


def compare_to_reference(
    ref_wav,
    hyp_wav,
    sr: int,
    hyp_sr: int | None = None,
    f0_method: str = "harvest",
    frame_period: float = DEFAULT_FRAME_PERIOD,
    order: int = DEFAULT_ORDER,
) -> dict[str, float]:
    """DTW-aligned MCD and F0 metrics of ``hyp_wav`` against ``ref_wav`` (module docstring).

    ``hyp_wav`` is resampled to ``sr`` when ``hyp_sr`` differs.
    """
    from shirabe.pitch import extract_f0

    ref, hyp = _mono(ref_wav), _mono(hyp_wav)
    if hyp_sr is not None and int(hyp_sr) != int(sr):
        hyp = resample(hyp, int(hyp_sr), int(sr))
    alpha = all_pass_alpha(int(sr))
    ref_mc = mel_cepstrum(ref, sr, order, alpha, frame_period)
    hyp_mc = mel_cepstrum(hyp, sr, order, alpha, frame_period)
    i, j, _ = dtw_path(euclidean_distances(ref_mc[:, 1:], hyp_mc[:, 1:]))
    fps = 1000.0 / frame_period
    ref_f0 = extract_f0(ref, sr, method=f0_method, frame_rate=fps)
    hyp_f0 = extract_f0(hyp, sr, method=f0_method, frame_rate=fps)
    ref_path = ref_f0[np.minimum(i, len(ref_f0) - 1)]
    hyp_path = hyp_f0[np.minimum(j, len(hyp_f0) - 1)]
    return {
        "mcd": float(np.mean(frame_mcd(ref_mc[i], hyp_mc[j]))),
        "f0_rmse_cents": f0_rmse(ref_path, hyp_path, unit="cents"),
        "log_f0_corr": f0_corr(ref_path, hyp_path, log=True),
        "vuv_error": vuv_error(ref_path, hyp_path),
        "aligned_frames": float(len(i)),
    }
