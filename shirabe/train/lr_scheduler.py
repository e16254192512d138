"""Learning-rate schedules stepped by batch and by epoch (icefall's interface).

``Eden`` decays smoothly with both the batch count ``b`` and the epoch (or
hours of audio seen) ``e``::

    lr = base_lr * ((b² + B²) / B²) ** -0.25 * ((e² + E²) / E²) ** -0.25 * warmup(b)

with ``warmup(b)`` rising linearly from ``warmup_start`` to 1 over
``warmup_batches``. ``FixedLRScheduler`` keeps ``base_lr`` (used for fine-tuning
and distillation).
"""

from __future__ import annotations

import torch


class LRScheduler:
    """Base: call :meth:`step_batch` after every optimizer step and :meth:`step_epoch` per epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.base_lrs = [group["base_lr"] for group in optimizer.param_groups]
        self.epoch = 0.0
        self.batch = 0
        self._apply()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _apply(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr

    def step_batch(self, batch: int | None = None) -> None:
        self.batch = self.batch + 1 if batch is None else batch
        self._apply()

    def step_epoch(self, epoch: float | None = None) -> None:
        self.epoch = self.epoch + 1 if epoch is None else epoch
        self._apply()

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = list(state["base_lrs"])
        self.epoch, self.batch = state["epoch"], state["batch"]
        self._apply()


class Eden(LRScheduler):
    """See the module docstring; ``lr_epochs`` may be hours of audio when epochs are hours."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr_batches: float = 7500,
        lr_epochs: float = 10,
        warmup_batches: float = 500.0,
        warmup_start: float = 0.5,
    ):
        self.lr_batches, self.lr_epochs = lr_batches, lr_epochs
        self.warmup_batches, self.warmup_start = warmup_batches, warmup_start
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        b, e = self.batch, self.epoch
        factor = ((b**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25 * (
            (e**2 + self.lr_epochs**2) / self.lr_epochs**2
        ) ** -0.25
        if self.warmup_batches > 0 and b < self.warmup_batches:
            factor *= self.warmup_start + (1.0 - self.warmup_start) * b / self.warmup_batches
        return [lr * factor for lr in self.base_lrs]


class FixedLRScheduler(LRScheduler):
    """The learning rate stays at ``base_lr``."""

    def get_lr(self) -> list[float]:
        return list(self.base_lrs)
