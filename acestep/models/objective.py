"""The ACE-Step v1 flow-matching training objective (velocity prediction, masked MSE, REPA term).

x_t = σ·noise + (1−σ)·x0; the network predicts v = noise − x0, so x0_hat = x_t − σ·v. The
denoising loss per item is the mean over all [8, 16, T] elements of ((x0_hat − x0)·m)² times
mean(m) (padding counts as zero error, and padded items are down-weighted by their valid fraction
once more), averaged over the batch; the total adds ``ssl_coeff`` times the mean of the REPA losses.
"""

from __future__ import annotations

import torch


def _per_item(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = _per_item(sigma, x0)
    return s * noise + (1.0 - s) * x0


def x0_from_velocity(v: torch.Tensor, x_t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return v * (-_per_item(sigma, v)) + x_t


def denoising_loss(x0_hat: torch.Tensor, x0: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE: mask [B, T] broadcast over [B, C, H, T]."""
    m = attention_mask[:, None, None, :].to(x0.dtype).expand_as(x0)
    per_item = ((x0_hat * m - x0 * m) ** 2).reshape(x0.shape[0], -1).mean(dim=1) * m.reshape(x0.shape[0], -1).mean(dim=1)
    return per_item.mean()


def total_loss(denoising: torch.Tensor, proj_losses: list[tuple[str, torch.Tensor]],
               ssl_coeff: float = 1.0) -> torch.Tensor:
    if not proj_losses:
        return denoising
    return denoising + ssl_coeff * torch.stack([loss for _, loss in proj_losses]).mean()
