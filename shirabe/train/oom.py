"""Out-of-memory scan before training: run the heaviest batches first.

lhotse's ``find_pessimistic_batches`` picks, from one pass over the sampler,
the batches that are extreme by some criterion (longest cut, most cuts, most
total duration, ...). :func:`scan_pessimistic_batches_for_oom` runs a forward
and backward pass on each, so a ``--max-duration`` that does not fit fails in
the first minute instead of hours into an epoch. Gradients are discarded; the
model's weights are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from lhotse.dataset import find_pessimistic_batches
from torch import nn

logger = logging.getLogger(__name__)


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def scan_pessimistic_batches_for_oom(
    model: nn.Module,
    sampler,
    dataset: Callable,
    loss_fn: Callable[[nn.Module, object], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    autocast: Callable = None,
    max_duration: float | None = None,
) -> None:
    """Forward + backward on each pessimistic batch; on OOM log advice and re-raise.

    ``dataset(cuts)`` turns a sampled CutSet into a batch and
    ``loss_fn(model, batch)`` returns the scalar loss. The scan iterates the
    sampler through one epoch, so call it before training starts and never
    after restoring a sampler state mid-epoch (the next ``iter()`` of a fresh
    sampler starts the epoch over, in the same order).
    """
    logger.info("scanning the heaviest batches for out-of-memory errors (--scan-oom)")
    batches, crit_values = find_pessimistic_batches(sampler)
    model.train()
    for criterion, cuts in batches.items():
        batch = dataset(cuts)
        try:
            with autocast() if autocast is not None else torch.enable_grad():
                loss = loss_fn(model, batch)
            loss.backward()
            optimizer.zero_grad(set_to_none=True)
        except Exception as e:
            if _is_oom(e):
                logger.error(
                    "out of memory on the batch with the largest %s (%s = %s, %d cuts)%s; "
                    "lower --max-duration or set --quadratic-duration",
                    criterion,
                    criterion,
                    crit_values[criterion],
                    len(cuts),
                    f" at --max-duration {max_duration}" if max_duration else "",
                )
                if torch.cuda.is_available():
                    logger.error("%s", torch.cuda.memory_summary(abbreviated=True))
            raise
        logger.info("OOM scan: %s %s (%d cuts) fits", criterion, crit_values[criterion], len(cuts))
    if torch.cuda.is_available():
        logger.info("OOM scan: peak CUDA memory %.0f MiB", torch.cuda.max_memory_allocated() / 2**20)
