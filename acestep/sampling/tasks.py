"""Start points of the ACE-Step v1 tasks: the latent the loop starts from, its schedule and, for
repaint and extend, the hard mask and the source to keep.

Times in seconds become latent frames as ``int(seconds·44100/512/8)`` (10.77 frames/s).

- text2music: ``z`` = N(0, 1) of shape [B, 8, 16, frames] from the seed, full schedule.
- retake: ``cos(θ)·z + sin(θ)·z'`` with ``θ = variance·π/2`` (``z'`` from the retake seed): variance 0
  gives ``z``, 1 gives ``z'``; full schedule.
- audio2audio: :func:`acestep.schedule.audio2audio_start` on the reference latents (fewer steps, a
  mix of reference and ``z``).
- repaint: frames ``[start, end)`` of the source latents ``x0`` are regenerated. The noise is
  ``z0 = cos(θ)·z + sin(θ)·z'`` inside the range and ``z`` outside; the loop starts at step
  ``n_min = int(steps·(1 − variance))`` from ``(1 − t)·x0 + t·z0`` (``t`` = that step's timestep/1000),
  takes plain Euler steps, and after every step overwrites the frames outside the range with
  ``(1 − t_next)·x0 + t_next·z0`` (``t_next`` = 0 after the last step, so they end equal to ``x0``).
  A range covering the whole source is a retake.
- extend: the source is padded with ``left`` / ``right`` frames (zeros in ``x0``); the padding is the
  regenerated range and ``z0`` there is ``z'`` (``z`` elsewhere), then as repaint. The generated window
  is capped at ``max_frames`` (240 s): with one-sided extension the source frames farthest from the
  new part are left out of the window and put back unchanged afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from acestep.schedule import audio2audio_start, inference_schedule

LATENT_CHANNELS = 8
LATENT_HEIGHT = 16
FRAMES_PER_SECOND = 44100 / 512 / 8
MAX_SECONDS = 240.0


def seconds_to_frames(seconds: float) -> int:
    return int(seconds * 44100 / 512 / 8)


MAX_FRAMES = seconds_to_frames(MAX_SECONDS)  # 2583


def draw_noise(seed: int, frames: int, batch: int = 1) -> torch.Tensor:
    """N(0, 1) latents [batch, 8, 16, frames], float32, from a CPU generator seeded with ``seed``
    (the same numbers on every device)."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(batch, LATENT_CHANNELS, LATENT_HEIGHT, frames, generator=generator, dtype=torch.float32)


def retake_noise(noise: torch.Tensor, other: torch.Tensor, variance: float) -> torch.Tensor:
    theta = torch.tensor(variance * math.pi / 2, dtype=torch.float32)
    return torch.cos(theta) * noise + torch.sin(theta) * other


@dataclass
class StartPoint:
    """What :func:`acestep.sampling.loop.denoise` needs to start."""

    latents: torch.Tensor          # the latent at step ``first_step``
    timesteps: torch.Tensor        # [n] float32
    sigmas: torch.Tensor           # [n + 1] float32, trailing 0
    first_step: int = 0
    mask: torch.Tensor | None = None    # [B, 8, 16, T], 1 = regenerate (repaint / extend)
    source: torch.Tensor | None = None  # x0 for the frames kept
    noise: torch.Tensor | None = None   # z0 used to re-noise the source
    keep_left: torch.Tensor | None = None   # source frames outside the capped window, put back after
    keep_right: torch.Tensor | None = None

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def finish(self, latents: torch.Tensor) -> torch.Tensor:
        """The final latents with any source frames left out of the window put back."""
        parts = [p for p in (self.keep_left, latents, self.keep_right) if p is not None]
        return torch.cat([p.to(latents) for p in parts], dim=-1) if len(parts) > 1 else latents


def text2music_start(noise: torch.Tensor, infer_steps: int) -> StartPoint:
    timesteps, sigmas = inference_schedule(infer_steps)
    return StartPoint(noise, timesteps, sigmas)


def retake_start(noise: torch.Tensor, other: torch.Tensor, variance: float, infer_steps: int) -> StartPoint:
    timesteps, sigmas = inference_schedule(infer_steps)
    return StartPoint(retake_noise(noise, other, variance), timesteps, sigmas)


def audio2audio_task_start(ref_latents: torch.Tensor, noise: torch.Tensor, strength: float,
                           infer_steps: int) -> StartPoint:
    start = audio2audio_start(ref_latents, noise, strength, infer_steps)
    return StartPoint(start.latents, start.timesteps, start.sigmas)


def repaint_first_step(infer_steps: int, variance: float) -> int:
    return int(infer_steps * (1 - variance))


def _masked_start(source: torch.Tensor, z0: torch.Tensor, mask: torch.Tensor, variance: float,
                  infer_steps: int) -> StartPoint:
    timesteps, sigmas = inference_schedule(infer_steps)
    n_min = repaint_first_step(infer_steps, variance)
    if n_min >= infer_steps:
        raise ValueError(f"variance {variance} with {infer_steps} steps leaves no denoising step")
    t = timesteps[n_min] / 1000
    latents = (1 - t) * source + t * z0
    return StartPoint(latents, timesteps, sigmas, n_min, mask, source, z0)


def repaint_start(source: torch.Tensor, noise: torch.Tensor, other: torch.Tensor, start_frame: int,
                  end_frame: int, variance: float, infer_steps: int) -> StartPoint:
    """Regenerate frames ``[start_frame, end_frame)`` of ``source`` (see the module docstring)."""
    frames = source.shape[-1]
    if not 0 <= start_frame < end_frame <= frames:
        raise ValueError(f"repaint range [{start_frame}, {end_frame}) frames is outside the source (0–{frames})")
    if noise.shape != source.shape or other.shape != source.shape:
        raise ValueError("noise and source latents must have the same shape")
    if end_frame - start_frame == frames:
        return retake_start(noise, other, variance, infer_steps)
    mask = torch.zeros_like(source)
    mask[..., start_frame:end_frame] = 1.0
    z0 = torch.where(mask == 1.0, retake_noise(noise, other, variance), noise)
    return _masked_start(source, z0, mask, variance, infer_steps)


def extend_start(source: torch.Tensor, noise: torch.Tensor, other: torch.Tensor, left: int, right: int,
                 variance: float, infer_steps: int, max_frames: int = MAX_FRAMES) -> StartPoint:
    """Pad ``source`` by ``left``/``right`` new frames; ``noise``/``other`` cover the generated window
    (``min(left + T + right, max_frames)`` frames)."""
    if left < 0 or right < 0 or left + right == 0:
        raise ValueError("extend needs a positive number of new frames on at least one side")
    frames = source.shape[-1]
    keep_left = keep_right = None
    if left + frames + right > max_frames:
        if left and right:
            raise ValueError(f"extending both sides gives {left + frames + right} frames, more than {max_frames}")
        inside = max_frames - left - right
        if inside < 1:
            raise ValueError(f"an extension of {left + right} frames leaves no source frame within {max_frames}")
        if left:  # keep the source's start next to the new part
            source, keep_right = source[..., :inside], source[..., inside:]
        else:
            source, keep_left = source[..., frames - inside:], source[..., :frames - inside]
    window = left + source.shape[-1] + right
    if noise.shape[-1] != window or other.shape[-1] != window:
        raise ValueError(f"noise must cover the {window} frames of the generated window")
    x0 = torch.nn.functional.pad(source, (left, right))
    mask = torch.zeros_like(x0)
    mask[..., :left] = 1.0
    if right:
        mask[..., window - right:] = 1.0
    z0 = torch.where(mask == 1.0, other, noise)
    start = _masked_start(x0, z0, mask, variance, infer_steps)
    start.keep_left, start.keep_right = keep_left, keep_right
    return start


def extend_window(source_frames: int, left: int, right: int, max_frames: int = MAX_FRAMES) -> int:
    """Frames of the generated window of an extension."""
    return min(left + source_frames + right, max_frames)
