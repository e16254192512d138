"""Samplers of the ZipVoice models: Euler steps over the guided velocity.

``EulerSolver(model).model`` is the guided velocity function the sampler
integrates (``solver.model(t, x, text_condition, speech_condition,
padding_mask, guidance_scale)``):

* ZipVoice (classifier-free guidance, ``w != 0``): the batch is doubled; the
  unconditional half has its text condition zeroed and, for ``t > 0.5``, its
  speech condition zeroed too. For ``t <= 0.5`` the speech condition is kept in
  both halves and ``w`` is doubled. ``v = (1 + w)·v_cond - w·v_uncond``.
* ZipVoiceDistill: ``w`` is an input of the decoder (its guidance-scale
  embedding); one pass, no batch doubling.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shirabe.flow import apply_cfg, euler_solve, shifted_time_steps


def _as_tensor(value, like: Tensor) -> Tensor:
    if torch.is_tensor(value):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.tensor(value, dtype=like.dtype, device=like.device)


class GuidedVelocity:
    """Velocity with classifier-free guidance and the ``t > 0.5`` switch."""

    def __init__(self, model, func_name: str = "forward_fm_decoder"):
        self.model = model
        self.func_name = func_name

    def __call__(
        self,
        t: Tensor,
        x: Tensor,
        text_condition: Tensor,
        speech_condition: Tensor,
        padding_mask: Tensor | None = None,
        guidance_scale=0.0,
        **kwargs,
    ) -> Tensor:
        fn = getattr(self.model, self.func_name)
        t = _as_tensor(t, x)
        w = _as_tensor(guidance_scale, t)
        if bool((w == 0.0).all()):
            return fn(t=t, xt=x, text_condition=text_condition, speech_condition=speech_condition,
                      padding_mask=padding_mask, **kwargs)
        if t.dim() != 0:
            raise ValueError("classifier-free guidance needs a scalar t")
        x2 = torch.cat([x, x], dim=0)
        mask2 = None if padding_mask is None else torch.cat([padding_mask, padding_mask], dim=0)
        text2 = torch.cat([torch.zeros_like(text_condition), text_condition], dim=0)
        if t > 0.5:
            speech2 = torch.cat([torch.zeros_like(speech_condition), speech_condition], dim=0)
        else:
            w = w * 2
            speech2 = torch.cat([speech_condition, speech_condition], dim=0)
        v_uncond, v_cond = fn(t=t, xt=x2, text_condition=text2, speech_condition=speech2,
                              padding_mask=mask2, **kwargs).chunk(2, dim=0)
        return apply_cfg(v_cond, v_uncond, w)


class DistillVelocity(GuidedVelocity):
    """Velocity of the distilled decoder: ``w`` goes to the decoder."""

    def __call__(self, t, x, text_condition, speech_condition, padding_mask=None, guidance_scale=0.0, **kwargs):
        fn = getattr(self.model, self.func_name)
        t = _as_tensor(t, x)
        return fn(t=t, xt=x, text_condition=text_condition, speech_condition=speech_condition,
                  padding_mask=padding_mask, guidance_scale=_as_tensor(guidance_scale, t), **kwargs)


class EulerSolver:
    velocity_class = GuidedVelocity

    def __init__(self, model, func_name: str = "forward_fm_decoder"):
        self.model = self.velocity_class(model, func_name=func_name)

    def sample(
        self,
        x: Tensor,
        text_condition: Tensor,
        speech_condition: Tensor,
        padding_mask: Tensor | None,
        num_step: int = 10,
        guidance_scale=0.0,
        t_start: float = 0.0,
        t_end: float = 1.0,
        t_shift: float = 1.0,
        **kwargs,
    ) -> Tensor:
        """Integrate from ``x`` (noise at ``t_start``) to ``t_end``."""
        steps = shifted_time_steps(num_step, t_shift=t_shift, t_start=float(t_start), t_end=float(t_end),
                                   device=x.device)

        def velocity(t, x_t):
            return self.model(t=t, x=x_t, text_condition=text_condition, speech_condition=speech_condition,
                              padding_mask=padding_mask, guidance_scale=guidance_scale, **kwargs)

        return euler_solve(velocity, x, steps)


class DistillEulerSolver(EulerSolver):
    velocity_class = DistillVelocity
