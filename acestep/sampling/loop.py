"""The ACE-Step v1 denoising loop (Euler with omega, guidance window, APG/CFG, ERG).

:func:`denoise` encodes the condition once (:meth:`ACEStepTransformer.encode`) and, when guidance is
on (scale not 0 or 1), the null condition:

- with ERG for lyrics: the prompt's ERG text states (or zeros), a zero speaker, the real lyric ids
  through the lyric Conformer with its query temperature (:mod:`acestep.sampling.erg`);
- without: zero text states, a zero speaker and zero lyric ids.

Both keep the conditional masks (text and lyric masks unchanged). Each step ``i`` runs the
conditional decode; inside the guidance window it also runs the unconditional decode (with the
DiT query temperature when ``use_erg_diffusion``) and combines the two
(:mod:`acestep.sampling.guidance`). Outside a repaint mask the step is
:func:`acestep.schedule.euler_step` with ``omega``; with a mask it is a plain Euler step followed by
the hard mask (see :mod:`acestep.sampling.tasks`). Latents stay float32; the model runs in its own dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from acestep.sampling import erg
from acestep.sampling.guidance import (
    APG_MOMENTUM,
    MomentumBuffer,
    apg,
    cfg,
    cfg_zero_star,
    double_condition,
    guidance_scale_at,
    guidance_window,
)
from acestep.sampling.tasks import StartPoint
from acestep.schedule import euler_step

CFG_TYPES = ("apg", "cfg", "cfg_star")


@dataclass
class GuidanceSettings:
    guidance_scale: float = 15.0
    cfg_type: str = "apg"
    omega_scale: float = 10.0
    guidance_interval: float = 0.5
    guidance_interval_decay: float = 0.0
    min_guidance_scale: float = 3.0
    use_erg_tag: bool = True
    use_erg_lyric: bool = True
    use_erg_diffusion: bool = True
    guidance_scale_text: float = 0.0
    guidance_scale_lyric: float = 0.0
    apg_momentum: float = APG_MOMENTUM
    erg_tau: float = erg.ERG_TAU
    erg_text_blocks: tuple[int, ...] = (8, 9)
    erg_lyric_layers: tuple[int, ...] = erg.LYRIC_LAYERS
    erg_diffusion_blocks: tuple[int, ...] = erg.DIFFUSION_BLOCKS

    def __post_init__(self):
        if self.cfg_type not in CFG_TYPES:
            raise ValueError(f"cfg_type must be one of {', '.join(CFG_TYPES)}, got {self.cfg_type!r}")

    @property
    def guided(self) -> bool:
        return self.guidance_scale not in (0.0, 1.0)

    @property
    def double_condition(self) -> bool:
        return self.guidance_scale_text > 1.0 and self.guidance_scale_lyric > 1.0


@dataclass
class Conditions:
    """Inputs of :meth:`ACEStepTransformer.encode` for one batch (``text_null``: ERG text states or None)."""

    text: torch.Tensor
    text_mask: torch.Tensor
    lyric_ids: torch.Tensor
    lyric_mask: torch.Tensor
    speaker: torch.Tensor | None = None
    text_null: torch.Tensor | None = None

    def speaker_or_zeros(self, dim: int) -> torch.Tensor:
        if self.speaker is not None:
            return self.speaker
        return torch.zeros(self.text.shape[0], dim, dtype=self.text.dtype, device=self.text.device)


def encode_conditions(model, cond: Conditions, settings: GuidanceSettings):
    """(cond states, cond mask, null states or None, text-only states or None)."""
    speaker = cond.speaker_or_zeros(model.config.speaker_embedding_dim)
    states, mask = model.encode(cond.text, cond.text_mask, speaker, cond.lyric_ids, cond.lyric_mask)
    if not settings.guided:
        return states, mask, None, None
    zero_speaker = torch.zeros_like(speaker)
    if settings.use_erg_lyric:
        text_null = cond.text_null if cond.text_null is not None else torch.zeros_like(cond.text)
        with erg.lyric_query_temperature(model, settings.erg_lyric_layers, settings.erg_tau):
            null, _ = model.encode(text_null, cond.text_mask, zero_speaker, cond.lyric_ids, cond.lyric_mask)
    else:
        null, _ = model.encode(torch.zeros_like(cond.text), cond.text_mask, zero_speaker,
                               torch.zeros_like(cond.lyric_ids), cond.lyric_mask)
    text_only = None
    if settings.double_condition:
        if settings.use_erg_lyric:
            with erg.lyric_query_temperature(model, settings.erg_lyric_layers, settings.erg_tau):
                text_only, _ = model.encode(cond.text, cond.text_mask, zero_speaker, cond.lyric_ids, cond.lyric_mask)
        else:
            text_only, _ = model.encode(cond.text, cond.text_mask, zero_speaker, torch.zeros_like(cond.lyric_ids),
                                        cond.lyric_mask)
    return states, mask, null, text_only


@torch.no_grad()
def denoise(model, start: StartPoint, cond: Conditions, settings: GuidanceSettings,
            progress: bool = True, residuals: Callable[[torch.Tensor, torch.Tensor], dict | None] | None = None
            ) -> torch.Tensor:
    """Run the loop from ``start``; returns float32 latents [B, 8, 16, T] (window only, see
    :meth:`StartPoint.finish`).

    ``residuals(x, timestep)`` (optional, e.g. a ControlNet) gives per-block residuals
    ``{block index: [B, T, inner]}`` (or None) once per step; they reach
    :meth:`ACEStepTransformer.decode` as ``block_residuals`` in the conditional and the
    unconditional pass alike."""
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    states, mask, null, text_only = encode_conditions(model, cond, settings)
    x = start.latents.to(device=device, dtype=torch.float32)
    batch, frames = x.shape[0], x.shape[-1]
    frame_mask = torch.ones(batch, frames, device=device, dtype=dtype)
    timesteps = start.timesteps.to(device)
    sigmas = start.sigmas.to(device)
    n = start.num_steps
    g_start, g_end = guidance_window(n, settings.guidance_interval)
    buffer = MomentumBuffer(settings.apg_momentum)
    if start.mask is not None:
        repaint_mask = start.mask.to(device)
        x0 = start.source.to(device=device, dtype=torch.float32)
        z0 = start.noise.to(device=device, dtype=torch.float32)

    block = None  # this step's residuals (set in the loop)

    def velocity(context, timestep, diffusion_erg=False):
        hooks = (erg.diffusion_query_temperature(model, settings.erg_diffusion_blocks, settings.erg_tau)
                 if diffusion_erg else contextlib.nullcontext())
        with hooks:
            out = model.decode(x.to(dtype), frame_mask, context, mask, timestep, block_residuals=block).sample
        return out.float()

    steps = range(start.first_step, n)
    for i in tqdm(steps, total=len(steps), desc="denoise", disable=not progress):
        t = timesteps[i]
        timestep = t.expand(batch).float()
        block = residuals(x, timestep) if residuals is not None else None
        v = velocity(states, timestep)
        if settings.guided and g_start <= i < g_end:
            scale = guidance_scale_at(i, g_start, g_end, settings.guidance_scale, settings.min_guidance_scale,
                                      settings.guidance_interval_decay)
            uncond = velocity(null, timestep, settings.use_erg_diffusion)
            if text_only is not None:
                v = double_condition(v, uncond, velocity(text_only, timestep), settings.guidance_scale_text,
                                     settings.guidance_scale_lyric)
            elif settings.cfg_type == "apg":
                v = apg(v, uncond, scale, buffer)
            elif settings.cfg_type == "cfg":
                v = cfg(v, uncond, scale)
            else:
                v = cfg_zero_star(v, uncond, scale, i)
        if start.mask is not None:
            sigma = t.float() / 1000
            sigma_next = timesteps[i + 1].float() / 1000 if i + 1 < n else torch.zeros((), device=device)
            x = x + (sigma_next - sigma) * v
            x = torch.where(repaint_mask == 1.0, x, (1 - sigma_next) * x0 + sigma_next * z0)
        else:
            x = euler_step(x, v, sigmas[i], sigmas[i + 1], settings.omega_scale)
    return x
