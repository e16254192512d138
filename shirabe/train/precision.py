"""Training precision: float32, bf16 autocast, or fp16 autocast with a GradScaler.

``--dtype`` (:data:`PRECISIONS`):

* ``float32``: no autocast.
* ``bf16``: ``torch.autocast(dtype=torch.bfloat16)`` on CUDA and on the CPU. bf16
  has float32's exponent range, so no loss scaling is needed and none is done.
* ``fp16``: ``torch.autocast(dtype=torch.float16)`` plus a GradScaler, on CUDA
  only. Elsewhere fp16 is ignored (a warning says so) and training runs in
  float32: CPU fp16 kernels are slow or missing, and the scaler exists for CUDA.

The weights, the optimizer state and the gradients stay float32 in every mode;
autocast only runs the forward's matrix products in the lower precision.

The fp16 scale follows the schedule of the Zipformer recipes: when it has
fallen low it is doubled every 100 batches while below 1024 and every 400
batches while below 4096, so one bad batch does not leave it small for long; a
scale below 1e-5 means every step overflows and training stops.
"""

from __future__ import annotations

import contextlib
import logging

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

GROW_FAST_BELOW = 1024.0
GROW_SLOW_BELOW = 4096.0
WARN_BELOW = 0.01
ABORT_BELOW = 1.0e-5


def resolve_precision(dtype: str, device: torch.device | str) -> str:
    """The precision a run on ``device`` gets for ``dtype`` (fp16 off CUDA, bf16 on MPS: float32)."""
    if dtype not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {dtype!r}")
    kind = torch.device(device).type
    if dtype == "fp16" and kind != "cuda":
        logger.warning("fp16 needs CUDA: on %s training runs in float32 (bf16 works on the CPU too)", kind)
        return "float32"
    if dtype == "bf16" and kind not in ("cuda", "cpu"):
        logger.warning("bf16 autocast is not supported on %s: training runs in float32", kind)
        return "float32"
    return dtype


class MixedPrecision:
    """``autocast()`` context, ``scaler`` and the periodic fp16 scale bookkeeping.

    ``dtype`` is one of :data:`PRECISIONS`; ``True``/``False`` mean fp16/float32.
    """

    def __init__(self, dtype: str | bool, device: torch.device | str, init_scale: float = 1.0):
        if isinstance(dtype, bool):
            dtype = "fp16" if dtype else "float32"
        self.device = torch.device(device)
        self.dtype = resolve_precision(dtype, self.device)
        #: fp16 with a GradScaler: steps with inf/NaN gradients are skipped instead of failing
        self.scaling = self.dtype == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.scaling, init_scale=init_scale)

    def autocast(self):
        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.dtype])

    @property
    def scale(self) -> float:
        return float(self.scaler.get_scale()) if self.scaling else 1.0

    def after_batch(self, batch_idx_train: int) -> None:
        """Grow a small scale, warn about a tiny one, stop on a vanishing one (fp16 only)."""
        if not self.scaling or batch_idx_train % 100 != 0:
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
        if self.scaling and state:
            self.scaler.load_state_dict(state)
