"""ACE-Step v1 flow-matching schedules as pure functions (shift 3, 1000 training steps).

- :func:`training_table`: σ' = shift·σ / (1 + (shift−1)·σ) over σ = t/1000, t = 1000 … 1 (or
  ``1000·sigma_max`` … 1), and timesteps = 1000·σ' — the values fed to the model in training.
- :func:`logit_normal_index` / :func:`training_draw`: the trainer's timestep draw
  (index = clamp(floor(sigmoid(u)·1000), 0, 999), σ looked up in the table).
- :func:`inference_schedule`: ``n`` timesteps spaced linearly between the table's first and last
  timestep and shifted a second time, plus sigmas with a trailing 0.
- :func:`euler_step`: one Euler step with the "omega" rescaling of the update around its mean.
- :func:`audio2audio_start`: the mixing σ, step count, schedule and start latent for a reference
  strength (the first model call is at a higher σ than the mix: the schedule is shifted again).

Arithmetic follows the released sampler's precisions: tables in float32, the inference spacing
in float64 before the float32 cast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000
SHIFT = 3.0


def shift_sigma(sigma, shift: float = SHIFT):
    """σ' = shift·σ / (1 + (shift − 1)·σ) (works on floats, numpy arrays and tensors)."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def training_table(num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT,
                   sigma_max: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigmas, timesteps), both float32 [num_train_timesteps], descending."""
    top = num_train_timesteps if sigma_max is None else num_train_timesteps * sigma_max
    t = np.linspace(1, top, num_train_timesteps, dtype=np.float32)[::-1].copy()
    sigmas = torch.from_numpy(t).to(torch.float32) / num_train_timesteps
    sigmas = shift_sigma(sigmas, shift)
    return sigmas, sigmas * num_train_timesteps


def logit_normal_index(u: torch.Tensor, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """Table index for N(0, 1) draws ``u``: clamp(floor(sigmoid(u)·T), 0, T−1), int64."""
    return (torch.sigmoid(u) * num_train_timesteps).long().clamp(0, num_train_timesteps - 1)


def sigma_for_timesteps(timesteps: torch.Tensor, table_sigmas: torch.Tensor,
                        table_timesteps: torch.Tensor) -> torch.Tensor:
    """σ of each timestep by exact match in the training table."""
    out = []
    for t in timesteps.reshape(-1):
        hits = (table_timesteps == t).nonzero()
        if len(hits) == 0:
            raise ValueError(f"timestep {float(t)} is not in the training table")
        out.append(table_sigmas[hits[0, 0]])
    return torch.stack(out)


def training_draw(u: torch.Tensor, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
                  shift: float = SHIFT) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(index, timestep, σ) for logit-normal draws ``u`` (before the sigmoid)."""
    sigmas, timesteps = training_table(num_train_timesteps, shift)
    index = logit_normal_index(u, num_train_timesteps)
    chosen = timesteps[index]
    return index, chosen, sigma_for_timesteps(chosen, sigmas, timesteps)


def inference_schedule(num_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT,
                       sigma_max: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps [n], sigmas [n+1] with a trailing 0), float32."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    table, _ = training_table(num_train_timesteps, shift, sigma_max)
    top, bottom = float(table[0]) * num_train_timesteps, float(table[-1]) * num_train_timesteps
    sigmas = np.linspace(top, bottom, num_steps) / num_train_timesteps
    sigmas = torch.from_numpy(shift_sigma(sigmas, shift)).to(torch.float32)
    timesteps = sigmas * num_train_timesteps
    return timesteps, torch.cat([sigmas, torch.zeros(1)])


def step_index(timestep: float | torch.Tensor, timesteps: torch.Tensor) -> int:
    """Position of ``timestep`` in ``timesteps`` (the second hit when it occurs twice)."""
    hits = (timesteps == torch.as_tensor(timestep, dtype=timesteps.dtype)).nonzero()
    if len(hits) == 0:
        raise ValueError(f"timestep {float(timestep)} is not in the schedule")
    return int(hits[1 if len(hits) > 1 else 0, 0])


def omega_rescale(omega: float) -> float:
    """ω' = 0.9 + 0.2 / (1 + exp(−0.1·ω)) (ω = 10 → 1.0462)."""
    return 0.9 + 0.2 / (1 + math.exp(-0.1 * omega))


def euler_step(sample: torch.Tensor, model_output: torch.Tensor, sigma: float | torch.Tensor,
               sigma_next: float | torch.Tensor, omega: float = 0.0) -> torch.Tensor:
    """x + dx with dx = (σ_next − σ)·v rescaled around its (whole-tensor) mean by ω'."""
    x = sample.to(torch.float32)
    dx = (torch.as_tensor(sigma_next, dtype=torch.float32) - torch.as_tensor(sigma, dtype=torch.float32)) \
        * model_output
    mean = dx.mean()
    dx = (dx - mean) * omega_rescale(omega) + mean
    return (x + dx).to(model_output.dtype)


@dataclass(frozen=True)
class Audio2AudioStart:
    mix_sigma: float
    num_steps: int
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    latents: torch.Tensor


def audio2audio_start(ref_latents: torch.Tensor, noise: torch.Tensor, strength: float, infer_steps: int,
                      num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT) -> Audio2AudioStart:
    """Start point for denoising from reference latents at ``strength`` (0 = pure noise, 1 = the reference)."""
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"strength must lie in [0, 1), got {strength}")
    sigma_max = 1 - strength
    table, _ = training_table(num_train_timesteps, shift, sigma_max)
    mix = float(table[0])
    num_steps = int(sigma_max * infer_steps)
    if num_steps < 1:
        raise ValueError(f"strength {strength} with {infer_steps} steps leaves no denoising step")
    timesteps, sigmas = inference_schedule(num_steps, num_train_timesteps, shift, sigma_max)
    latents = ref_latents * (1 - mix) + noise * mix
    return Audio2AudioStart(mix, num_steps, timesteps, sigmas, latents)
