"""Small pure metrics of generated songs: style similarity, the Fréchet distance, duration.

* :func:`style_similarity`: the cosine between the time means of two feature sequences
  (MuQ frames of the style prompt and of the output): 1 for the same direction, 0 for
  orthogonal mean embeddings.
* :func:`gaussian_stats` and :func:`frechet_distance`: the Fréchet (2-Wasserstein) distance
  between Gaussians fitted to two sets of frames,
  ``FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)``. The trace of the
  matrix square root is taken from the eigenvalues of the symmetric positive semi-definite
  ``S1^1/2 S2 S1^1/2`` (which has the eigenvalues of ``S1 S2``), so no complex parts arise and
  rank-deficient covariances (fewer frames than dimensions) are handled; eigenvalues below
  zero from rounding are set to zero.
* The plug-in estimator is biased upwards for finite samples. The mean term alone gains
  ``tr(S1)/n1 + tr(S2)/n2`` in expectation (:func:`frechet_mean_bias`, for independent
  frames); the covariance term adds a bias of the same ``1/n`` order. Frames of one song
  are correlated in time, so the effective sample size is smaller than the frame count
  and the bias larger. Compare distances only at equal frame counts and feature layers.
* :func:`duration_adherence`: the output's length against the generation budget.
"""

from __future__ import annotations

import numpy as np


def _frames(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{what}: expected a (frames, dims) array with at least one frame, got shape {x.shape}")
    return x


def cosine(a, b) -> float:
    """Cosine of two vectors; NaN when either is zero."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"vectors of different sizes: {a.shape[0]} and {b.shape[0]}")
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return float(np.dot(a, b) / (na * nb))


def style_similarity(prompt_frames, output_frames) -> float:
    """Cosine between the mean-pooled ``(frames, dims)`` features of the prompt and of the output."""
    return cosine(_frames(prompt_frames, "prompt features").mean(axis=0),
                  _frames(output_frames, "output features").mean(axis=0))


def gaussian_stats(frames) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, covariance)`` of ``(frames, dims)`` features (covariance with ``n - 1``); needs two frames."""
    x = _frames(frames, "features")
    if x.shape[0] < 2:
        raise ValueError("a covariance needs at least two frames")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(cov1, cov2) -> float:
    """``tr((S1^1/2 S2 S1^1/2)^1/2)`` of two positive semi-definite matrices."""
    s1 = _psd_sqrt(np.asarray(cov1, dtype=np.float64))
    m = s1 @ np.asarray(cov2, dtype=np.float64) @ s1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """The Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (module docstring); never below 0."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, dtype=np.float64)), np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: means {mu1.shape} and {mu2.shape}, covariances {cov1.shape} and "
                         f"{cov2.shape}")
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2))
    return max(fd, 0.0)


def frechet_mean_bias(cov1, n1: int, cov2, n2: int) -> float:
    """Expected excess of the squared mean difference of ``n1`` and ``n2`` independent frames:
    ``tr(S1)/n1 + tr(S2)/n2`` (a lower bound of the estimator's bias; module docstring)."""
    return float(np.trace(np.atleast_2d(cov1)) / n1 + np.trace(np.atleast_2d(cov2)) / n2)


def frechet_of_frames(frames1, frames2) -> dict:
    """``{"fd", "mean_bias", "frames_1", "frames_2"}`` of two ``(frames, dims)`` feature sets."""
    mu1, cov1 = gaussian_stats(frames1)
    mu2, cov2 = gaussian_stats(frames2)
    n1, n2 = len(frames1), len(frames2)
    return {"fd": frechet_distance(mu1, cov1, mu2, cov2), "mean_bias": frechet_mean_bias(cov1, n1, cov2, n2),
            "frames_1": n1, "frames_2": n2}


def duration_adherence(duration: float, budget: float | None, reference: float | None = None,
                       tolerance: float = 0.05) -> dict:
    """``{"duration", "budget_use", "over_budget", "duration_ratio_gt"}``: the share of the budget the
    output fills, whether it runs over it by more than ``tolerance`` seconds, and its length
    over the ground truth's (None where the budget or the reference is not known)."""
    if duration < 0:
        raise ValueError(f"duration must not be negative, got {duration}")
    out = {"duration": float(duration), "budget_use": None, "over_budget": None, "duration_ratio_gt": None}
    if budget is not None:
        if budget <= 0:
            raise ValueError(f"budget must be positive, got {budget}")
        out["budget_use"] = duration / budget
        out["over_budget"] = bool(duration > budget + tolerance)
    if reference:
        out["duration_ratio_gt"] = duration / reference
    return out
