"""Exponential moving average of a model's weights (the second distillation stage's teacher)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for every floating-point parameter and buffer.

    The two modules must have the same state_dict keys (``model`` may be DDP-wrapped).
    """
    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    src = model.state_dict()
    for name, value in ema.state_dict().items():
        if value.is_floating_point():
            value.mul_(decay).add_(src[name].to(value.dtype), alpha=1.0 - decay)
        else:
            value.copy_(src[name])
