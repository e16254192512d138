"""Classifier-free guidance."""

from __future__ import annotations

from torch import Tensor


def apply_cfg(v_cond: Tensor, v_uncond: Tensor, guidance_scale: Tensor | float) -> Tensor:
    """Guided velocity ``(1 + w)·v_cond - w·v_uncond``.

    ``w = 0`` returns the conditional velocity; ``w`` may be a float or a tensor
    broadcastable to the velocities.
    """
    return (1 + guidance_scale) * v_cond - guidance_scale * v_uncond
