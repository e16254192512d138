"""Learning-rate schedules stepped by batch and by epoch (icefall's interface).

``Eden`` decays smoothly with both the batch count ``b`` and the epoch (or
hours of audio seen) ``e``::

    lr = base_lr * ((b² + B²) / B²) ** -0.25 * ((e² + E²) / E²) ** -0.25 * warmup(b)

with ``warmup(b)`` rising linearly from ``warmup_start`` to 1 over
``warmup_batches``. ``FixedLRScheduler`` keeps ``base_lr`` (used for fine-tuning
and distillation).

Step-based schedules, the usual choices for transformer LMs and DiTs (``W`` warm-up
batches, ``T`` total batches, ``s`` = ``warmup_start``, ``m`` = ``min_ratio``)::

    warmup(b)          = s + (1 - s) * b / W                     for b < W, else 1
    WarmupConstant:  lr = base_lr * warmup(b)
    WarmupCosine:    lr = base_lr * warmup(b)                                  for b < W
                     lr = base_lr * (m + (1 - m) * (1 + cos(pi * (b - W) / (T - W))) / 2)   for W <= b <= T
                     lr = base_lr * m                                           for b > T

Every schedule sets each parameter group's rate from its own ``base_lr`` (the
group's ``lr`` when the scheduler was made), so per-group rates
(:func:`shirabe.train.optim.parameter_groups_by_prefix`) keep their ratios. The
training loop calls ``step_batch(b)`` with the number of the optimizer update
about to be made (1 for the first), so update ``b`` runs at ``lr(b)``.
"""

from __future__ import annotations

import math

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


def warmup_factor(batch: float, warmup_batches: float, warmup_start: float) -> float:
    """``warmup_start`` rising linearly to 1 over ``warmup_batches`` (1 after them)."""
    if warmup_batches > 0 and batch < warmup_batches:
        return warmup_start + (1.0 - warmup_start) * batch / warmup_batches
    return 1.0


class WarmupConstant(LRScheduler):
    """Linear warm-up, then ``base_lr`` (see the module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_batches: float = 0.0, warmup_start: float = 0.0):
        if warmup_batches < 0 or not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"need warmup_batches >= 0 and 0 <= warmup_start <= 1, got {warmup_batches}, "
                             f"{warmup_start}")
        self.warmup_batches, self.warmup_start = warmup_batches, warmup_start
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = warmup_factor(self.batch, self.warmup_batches, self.warmup_start)
        return [lr * factor for lr in self.base_lrs]


class WarmupCosine(LRScheduler):
    """Linear warm-up, then a half cosine from ``base_lr`` down to ``base_lr * min_ratio``
    at ``total_batches`` (see the module docstring)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_batches: float,
        warmup_batches: float = 0.0,
        warmup_start: float = 0.0,
        min_ratio: float = 0.0,
    ):
        if not 0 <= warmup_batches < total_batches:
            raise ValueError(f"need 0 <= warmup_batches < total_batches, got {warmup_batches} and {total_batches}")
        if not 0.0 <= warmup_start <= 1.0 or not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"warmup_start and min_ratio must lie in [0, 1], got {warmup_start}, {min_ratio}")
        self.total_batches, self.warmup_batches = total_batches, warmup_batches
        self.warmup_start, self.min_ratio = warmup_start, min_ratio
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        b = self.batch
        if b < self.warmup_batches:
            factor = warmup_factor(b, self.warmup_batches, self.warmup_start)
        else:
            progress = min(1.0, (b - self.warmup_batches) / (self.total_batches - self.warmup_batches))
            factor = self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return [lr * factor for lr in self.base_lrs]
