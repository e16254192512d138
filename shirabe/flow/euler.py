"""Fixed-step Euler integration of a velocity field from t = t_start to t_end.

The time grid is ``linspace(t_start, t_end, num_step + 1)`` warped by the shift
``t' = s·t / (1 + (s - 1)·t)``. ``s < 1`` puts more steps near t = 0 (for
``s = 0.5`` and 16 steps: 0, 0.0323, 0.0667, ..., 0.8824, 1), ``s = 1`` keeps the
grid uniform. The end points 0 and 1 are fixed by the warp.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def shifted_time_steps(
    num_step: int,
    t_shift: float = 1.0,
    t_start: float = 0.0,
    t_end: float = 1.0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The ``num_step + 1`` time points of the solver, float32, shape ``(num_step + 1,)``."""
    if num_step < 1:
        raise ValueError(f"num_step must be >= 1, got {num_step}")
    if t_shift <= 0:
        raise ValueError(f"t_shift must be > 0, got {t_shift}")
    t = torch.linspace(t_start, t_end, num_step + 1).to(device)
    return t_shift * t / (1 + (t_shift - 1) * t)


def euler_solve(
    velocity: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    time_steps: Tensor,
) -> Tensor:
    """Integrate ``dx/dt = velocity(t, x)`` over ``time_steps`` with Euler steps.

    ``velocity`` receives the current time as a 0-dim tensor. Each step is
    ``x <- x + velocity(t_k, x) · (t_{k+1} - t_k)``.
    """
    for k in range(len(time_steps) - 1):
        t_cur, t_next = time_steps[k], time_steps[k + 1]
        x = x + velocity(t_cur, x) * (t_next - t_cur)
    return x
