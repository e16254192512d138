"""What :class:`shirabe.train.loop.Trainer` needs from the training data.

Two kinds of training data, told apart by :func:`sampler_kind`:

* **epoch-based**: a ``torch.utils.data.DataLoader`` whose ``sampler`` follows
  :class:`EpochSampler` (lhotse's samplers do). An epoch ends when the loader is
  exhausted; the loop calls ``sampler.set_epoch(epoch - 1)`` before each one, so the
  order changes per epoch and is reproducible. Its ``state_dict()`` must say where
  in the epoch it is, so a checkpoint resumes mid-epoch (lhotse's does, and the
  loop corrects it for batches that DataLoader workers prefetched but the loop did
  not consume).
* **step-based**: an object following :class:`StepSampler`, which yields a batch
  whenever asked, forever (``seedsvc.dataset.SegmentSampler`` draws random crops).
  The loop calls ``batch()`` in the training process, once per batch, so its
  ``state_dict()`` is exact at any moment. A step-based run must have
  ``num_iters > 0``; there are no epochs (``epoch-N.pt`` is never written). Under
  DDP each process owns its sampler: seed it per rank so the ranks draw different
  batches.

Both kinds hand the loop whatever ``compute_loss(model, batch, is_training)``
takes: the loop never looks inside a batch.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class EpochSampler(Protocol):
    """The ``sampler`` of an epoch-based DataLoader."""

    def set_epoch(self, epoch: int) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class StepSampler(Protocol):
    """A source of batches without end."""

    def batch(self) -> Any: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def sampler_kind(train_data) -> str:
    """``"step"`` for a :class:`StepSampler`, ``"epoch"`` for a DataLoader with an
    :class:`EpochSampler`; a TypeError naming what is missing otherwise."""
    if isinstance(train_data, StepSampler):
        return "step"
    sampler = getattr(train_data, "sampler", None)
    if sampler is not None and isinstance(sampler, EpochSampler):
        return "epoch"
    what = type(sampler).__name__ if sampler is not None else type(train_data).__name__
    raise TypeError(
        f"training data {what} is neither a step sampler (batch, state_dict, load_state_dict) nor a "
        "DataLoader whose sampler has set_epoch, state_dict and load_state_dict"
    )


def forever(sampler: StepSampler):
    """``sampler.batch()``, again and again."""
    while True:
        yield sampler.batch()
