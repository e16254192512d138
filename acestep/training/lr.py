"""The released trainer's learning-rate schedule: linear warm-up, then linear decay to 0.

For optimizer update ``b`` (1 for the first) of ``T``, with ``W`` warm-up updates::

    lr(b) = base_lr · b / W                      for b < W
    lr(b) = base_lr · (T − b) / (T − W)          for W ≤ b ≤ T   (0 after T)
"""

from __future__ import annotations

import torch

from shirabe.train.lr_scheduler import LRScheduler


def warmup_linear_factor(batch: int, warmup: int, total: int) -> float:
    if warmup > 0 and batch < warmup:
        return batch / warmup
    if total <= warmup:
        return 1.0
    return max(0.0, (total - batch) / (total - warmup))


class WarmupLinear(LRScheduler):
    def __init__(self, optimizer: torch.optim.Optimizer, total_batches: int, warmup_batches: int = 10):
        if warmup_batches < 0 or total_batches < 1:
            raise ValueError(f"need warmup_batches >= 0 and total_batches >= 1, got {warmup_batches}, "
                             f"{total_batches}")
        self.total_batches, self.warmup_batches = int(total_batches), int(warmup_batches)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = warmup_linear_factor(self.batch, self.warmup_batches, self.total_batches)
        return [lr * factor for lr in self.base_lrs]
