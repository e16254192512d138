"""Guidance rules of the ACE-Step v1 sampler.

Window: guidance acts only on steps ``i`` with ``start <= i < end`` where
``start = int(n·(1 − gi)/2)`` and ``end = int(n·(gi/2 + 0.5))`` (``n`` steps, ``gi`` the guidance
interval; gi = 0.5 → the middle half). Outside the window the conditional prediction is used
alone and the unconditional forward is skipped.

Decay (``decay > 0``): inside the window the scale falls linearly,
``g_i = g − (g − g_min)·decay·(i − start)/(end − start − 1)``, so with decay 1 the first guided step
uses ``g`` and the last one ``g_min`` (a one-step window keeps ``g``).

APG (adaptive projected guidance): ``diff = cond − uncond``; a momentum buffer keeps
``running = diff + momentum·running`` (momentum −0.75) and ``diff`` becomes ``running``; ``diff`` is
scaled so that its L2 norm over the last two dims is at most ``norm_threshold`` (2.5); the
component of ``diff`` parallel to ``cond`` (normalised over the same dims, in float64) is removed
(eta 0 keeps none of it); the result is ``cond + (g − 1)·diff⊥``.

CFG: ``uncond + g·(cond − uncond)``. CFG-zero*: ``α·uncond + g·(cond − α·uncond)`` with
``α = <cond, uncond>/(|uncond|² + 1e-8)`` per item, and zero output on the steps ``i <= zero_steps``.
Double condition (text and lyric scales both > 1):
``(1 − g_text)·uncond + (g_text − g_lyric)·text_only + g_lyric·cond``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

APG_DIMS = (-1, -2)
APG_MOMENTUM = -0.75
APG_NORM_THRESHOLD = 2.5


def guidance_window(num_steps: int, guidance_interval: float) -> tuple[int, int]:
    """``(start, end)``: the guided steps are ``start <= i < end``."""
    start = int(num_steps * ((1 - guidance_interval) / 2))
    end = int(num_steps * (guidance_interval / 2 + 0.5))
    return start, end


def guidance_scale_at(step: int, start: int, end: int, guidance_scale: float, min_guidance_scale: float,
                      decay: float) -> float:
    """The scale of a guided ``step`` (linear decay toward ``min_guidance_scale``, see the module docstring)."""
    if decay <= 0 or end - start - 1 <= 0:
        return guidance_scale
    progress = (step - start) / (end - start - 1)
    return guidance_scale - (guidance_scale - min_guidance_scale) * progress * decay


class MomentumBuffer:
    """``running = value + momentum·running`` (starts at 0)."""

    def __init__(self, momentum: float = APG_MOMENTUM):
        self.momentum = momentum
        self.running: torch.Tensor | float = 0.0

    def update(self, value: torch.Tensor) -> torch.Tensor:
        self.running = value + self.momentum * self.running
        return self.running


def project(v: torch.Tensor, onto: torch.Tensor, dims=APG_DIMS) -> tuple[torch.Tensor, torch.Tensor]:
    """(parallel, orthogonal) parts of ``v`` relative to ``onto`` over ``dims``, computed in float64."""
    dtype, device = v.dtype, v.device
    if device.type == "mps":  # no float64 there
        v, onto = v.cpu(), onto.cpu()
    v64, unit = v.double(), F.normalize(onto.double(), dim=list(dims))
    parallel = (v64 * unit).sum(dim=list(dims), keepdim=True) * unit
    return parallel.to(device, dtype), (v64 - parallel).to(device, dtype)


def apg(cond: torch.Tensor, uncond: torch.Tensor, guidance_scale: float, buffer: MomentumBuffer | None = None,
        eta: float = 0.0, norm_threshold: float = APG_NORM_THRESHOLD, dims=APG_DIMS) -> torch.Tensor:
    diff = cond - uncond
    if buffer is not None:
        diff = buffer.update(diff)
    if norm_threshold > 0:
        norm = diff.norm(p=2, dim=list(dims), keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(norm), norm_threshold / norm)
    parallel, orthogonal = project(diff, cond, dims)
    return cond + (guidance_scale - 1) * (orthogonal + eta * parallel)


def cfg(cond: torch.Tensor, uncond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    return uncond + guidance_scale * (cond - uncond)


def cfg_zero_star(cond: torch.Tensor, uncond: torch.Tensor, guidance_scale: float, step: int,
                  zero_steps: int = 1, use_zero_init: bool = True) -> torch.Tensor:
    if use_zero_init and step <= zero_steps:
        return cond * 0.0
    b = cond.shape[0]
    c, u = cond.reshape(b, -1), uncond.reshape(b, -1)
    alpha = ((c * u).sum(dim=1, keepdim=True) / ((u * u).sum(dim=1, keepdim=True) + 1e-8))
    alpha = alpha.reshape(b, *([1] * (cond.dim() - 1)))
    return uncond * alpha + guidance_scale * (cond - uncond * alpha)


def double_condition(cond: torch.Tensor, uncond: torch.Tensor, text_only: torch.Tensor, guidance_scale_text: float,
                     guidance_scale_lyric: float) -> torch.Tensor:
    return ((1 - guidance_scale_text) * uncond + (guidance_scale_text - guidance_scale_lyric) * text_only
            + guidance_scale_lyric * cond)
