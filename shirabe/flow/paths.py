"""The linear (rectified-flow) probability path used by the flow-matching models.

``x_t = t·x1 + (1 - t)·x0`` from noise ``x0`` (t = 0) to data ``x1`` (t = 1);
the regression target for the velocity is the constant ``x1 - x0``.
"""

from __future__ import annotations

from torch import Tensor


def linear_path(x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """Point at time ``t`` (broadcastable, e.g. ``(B, 1, 1)``) on the straight path."""
    return t * x1 + (1 - t) * x0


def linear_velocity_target(x0: Tensor, x1: Tensor) -> Tensor:
    """Velocity of the straight path: ``x1 - x0``."""
    return x1 - x0
