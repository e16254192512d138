"""F0 quantisation and the frozen V1 F0 embedding.

:func:`f0_to_coarse` reproduces Seed-VC's quantiser exactly, quirks included:
mel-scale ``m(f) = 1127·ln(1 + f/700)`` mapped linearly so that 50 Hz → 1 and
1100 Hz → 255, rounded half-to-even; every value ≤ 0 (unvoiced, and voiced
notes below ~51.3 Hz) becomes bin **1**, and everything from ~1103.1 Hz up
becomes bin **0** (overflow wraps to 0, it is not clamped). The arithmetic is
done in float64, as upstream does with RMVPE's float64 F0. Negative and NaN
inputs are treated as unvoiced.

:class:`PretrainedF0Encoder` looks the bins up in V1's 256×768 F0 embedding
(frozen, loaded from a V1 checkpoint's ``['net']['length_regulator']``) and
projects them to the estimator width with a trained ``Linear(768, out_dim)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load

F0_BINS = 256
F0_MEL_MIN = 1127.0 * math.log(1.0 + 50.0 / 700.0)
F0_MEL_MAX = 1127.0 * math.log(1.0 + 1100.0 / 700.0)
V1_F0_KEYS = ("f0_embedding.weight", "module.f0_embedding.weight")


def f0_to_coarse(f0: Tensor | np.ndarray, f0_bins: int = F0_BINS) -> Tensor:
    """Bin ids (int64, same shape) of F0 values in Hz; see the module docstring."""
    f = torch.as_tensor(f0).to(torch.float64)
    f = torch.nan_to_num(f, nan=0.0).clamp(min=0.0)
    a = (f0_bins - 2) / (F0_MEL_MAX - F0_MEL_MIN)
    b = F0_MEL_MIN * a - 1.0
    mel = 1127.0 * torch.log(1.0 + f / 700.0)
    mel = torch.where(mel > 0, mel * a - b, mel)
    coarse = torch.round(mel).long()
    coarse = torch.where(coarse < 1, torch.ones_like(coarse), coarse)
    return torch.where(coarse >= f0_bins, torch.zeros_like(coarse), coarse)


def f0_to_frames(f0: Tensor, num_frames: int) -> Tensor:
    """Nearest-neighbour resampling of F0 tracks (B, N) or (N,) to ``num_frames``.

    Frame ``j`` takes source frame ``floor(j · N / num_frames)`` (torch's
    ``interpolate(mode='nearest')``, which Seed-VC V1 applies to the F0 embedding).
    """
    squeeze = f0.dim() == 1
    x = f0.reshape(1, -1) if squeeze else f0
    out = F.interpolate(x[:, None, :].to(torch.float64), size=num_frames, mode="nearest")[:, 0]
    out = out.to(f0.dtype)
    return out[0] if squeeze else out


def load_v1_f0_embedding(path: str | Path, trust: bool = False) -> Tensor:
    """The ``[256, 768]`` F0 embedding of a V1 singing checkpoint.

    Read from ``['net']['length_regulator']`` under ``f0_embedding.weight`` or its DDP
    spelling ``module.f0_embedding.weight``; anything else in the file is ignored.
    """
    ckpt = safe_load(path, trust=trust)
    try:
        lr = ckpt["net"]["length_regulator"]
    except (KeyError, TypeError):
        raise InputError(f"{path}: no ['net']['length_regulator'] entry (not a Seed-VC V1 checkpoint)") from None
    for key in V1_F0_KEYS:
        if key in lr:
            weight = lr[key]
            break
    else:
        raise InputError(f"{path}: the length regulator has no f0_embedding.weight (not the F0-conditioned V1 model)")
    if weight.dim() != 2:
        raise InputError(f"{path}: f0_embedding.weight has shape {tuple(weight.shape)}, expected (256, 768)")
    return weight.float()


class PretrainedF0Encoder(nn.Module):
    """F0 (Hz) → coarse bins → frozen V1 embedding → trained projection."""

    def __init__(self, n_bins: int = F0_BINS, embedding_dim: int = 768, out_dim: int = 512):
        super().__init__()
        self.n_bins = n_bins
        self.embedding = nn.Embedding(n_bins, embedding_dim)
        self.embedding.weight.requires_grad_(False)
        self.proj = nn.Linear(embedding_dim, out_dim)

    def load_v1(self, path: str | Path, trust: bool = False) -> None:
        """Copy the V1 checkpoint's F0 embedding in (shape must match)."""
        weight = load_v1_f0_embedding(path, trust=trust)
        if weight.shape != self.embedding.weight.shape:
            raise InputError(
                f"{path}: f0_embedding.weight is {tuple(weight.shape)}, the model expects "
                f"{tuple(self.embedding.weight.shape)}"
            )
        with torch.no_grad():
            self.embedding.weight.copy_(weight)

    def coarse(self, f0: Tensor) -> Tensor:
        return f0_to_coarse(f0, self.n_bins).to(self.embedding.weight.device)

    def forward(self, f0: Tensor) -> Tensor:
        """(B, T) Hz → (B, T, out_dim)."""
        return self.proj(self.embedding(self.coarse(f0)))
