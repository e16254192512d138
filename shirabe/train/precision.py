"""Mixed precision: fp16 autocast plus a GradScaler and its bookkeeping (CUDA only).

On CPU, fp16 is ignored (a warning says so) and training runs in float32:
CPU fp16 kernels are slow or missing, and the scaler only exists for CUDA.

The scale follows the schedule of the Zipformer recipes: when it has fallen
low it is doubled every 100 batches while below 1024 and every 400 batches
while below 4096, so one bad batch does not leave it small for long; a
scale below 1e-5 means every step overflows and training stops.
"""

from __future__ import annotations

import contextlib
import logging

import torch

logger = logging.getLogger(__name__)

GROW_FAST_BELOW = 1024.0
GROW_SLOW_BELOW = 4096.0
WARN_BELOW = 0.01
ABORT_BELOW = 1.0e-5


class MixedPrecision:
    """``autocast()`` context, ``scaler`` and the periodic scale bookkeeping."""

    def __init__(self, use_fp16: bool, device: torch.device | str, init_scale: float = 1.0):
        device = torch.device(device)
        self.device = device
        self.enabled = bool(use_fp16) and device.type == "cuda"
        if use_fp16 and not self.enabled:
            logger.warning("--use-fp16 is ignored on %s: training runs in float32", device.type)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled, init_scale=init_scale)

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    @property
    def scale(self) -> float:
        return float(self.scaler.get_scale()) if self.enabled else 1.0

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``scale(loss).backward()``, optimizer step (skipped on overflow), scale update."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def after_batch(self, batch_idx_train: int) -> None:
        """Grow a small scale, warn about a tiny one, stop on a vanishing one."""
        if not self.enabled or batch_idx_train % 100 != 0:
            return
        scale = self.scale
        if scale < GROW_FAST_BELOW or (scale < GROW_SLOW_BELOW and batch_idx_train % 400 == 0):
            self.scaler.update(scale * 2.0)
        if scale < WARN_BELOW:
            logger.warning("grad scale is small: %.3g", scale)
        if scale < ABORT_BELOW:
            raise RuntimeError(f"grad scale {scale:.3g} is too small: every step overflows (NaN/inf gradients)")

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.enabled and state:
            self.scaler.load_state_dict(state)
