"""Image2image accompaniment as one consistent flow: from a vocal-built source to the target.

The source of the flow is built from the vocal latents and noise by ``reference_strength`` s:

    x_src = s · vocal + (1 − s) · noise

(s = 0 is ACE-Step's text2music source, pure noise; the mixing is the released audio2audio's
``ref·(1−σ) + noise·σ`` at σ = 1 − s). Training draws σ exactly as the released trainer does
(logit-normal index into the shift-3 table, :mod:`acestep.schedule`) and puts the model on the
straight path between source and target:

    x_t = σ · x_src + (1 − σ) · x0,    velocity target v = x_src − x0,
    x0_hat = x_t − σ · v_pred          (the released x0 preconditioning),

with the released masked MSE between x0_hat and x0. At s = 0 this is the released objective
term for term, so a base model's training carries over. Inference starts where the training path
starts, x(σ=1) = x_src (the inference schedule's first σ is exactly 1), and integrates the
predicted velocity down to σ = 0 with the released Euler step. The released audio2audio instead
mixes at one σ and starts denoising at a higher one (see ``acestep.schedule.audio2audio_start``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from acestep.models.objective import _per_item
from acestep.schedule import euler_step, inference_schedule


def source_latents(vocal: torch.Tensor, noise: torch.Tensor, strength: float) -> torch.Tensor:
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"reference_strength must lie in [0, 1), got {strength}")
    return strength * vocal + (1.0 - strength) * noise


def path_point(x0: torch.Tensor, source: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_t = σ·x_src + (1 − σ)·x0 (σ per batch item)."""
    s = _per_item(sigma, x0)
    return s * source + (1.0 - s) * x0


def velocity_target(x0: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    return source - x0


@torch.no_grad()
def sample(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], vocal: torch.Tensor,
           noise: torch.Tensor, strength: float, num_steps: int, omega: float = 0.0,
           callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Integrate ``velocity(x, timestep[B]) -> v`` from x_src (σ = 1) to σ = 0; returns x0."""
    timesteps, sigmas = inference_schedule(num_steps)
    x = source_latents(vocal, noise, strength)
    for i, t in enumerate(timesteps):
        v = velocity(x, t.expand(x.shape[0]).to(x.device))
        x = euler_step(x, v, sigmas[i], sigmas[i + 1], omega)
        if callback is not None:
            callback(i, x)
    return x
