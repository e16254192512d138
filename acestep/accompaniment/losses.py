"""The structure loss: the vocal/accompaniment energy correlation of the prediction should match the target's.

Frame energy e[t] = Σ over channels and mel bins of latent², L2-normalised over the valid frames;
corr(a, b) = Σ_t e_a[t]·e_b[t]. The loss is the mean over the batch of
(corr(vocal, prediction) − corr(vocal, target))². It is off by default (weight 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def frame_energy(latents: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    energy = latents.float().pow(2).sum(dim=(1, 2))
    if mask is not None:
        energy = energy * mask.to(energy.dtype)
    return F.normalize(energy, dim=1, eps=1e-8)


def structure_loss(prediction: torch.Tensor, target: torch.Tensor, vocal: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    ev = frame_energy(vocal, mask)
    pred_corr = (ev * frame_energy(prediction, mask)).sum(dim=1)
    target_corr = (ev * frame_energy(target, mask)).sum(dim=1)
    return (pred_corr - target_corr).pow(2).mean()
