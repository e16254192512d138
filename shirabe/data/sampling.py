"""Batching for TTS training: duration filters and cost-budgeted bucketing.

Batches are limited by *padded* duration (``max_duration`` seconds per batch).
With ``quadratic_duration`` set, a cut of ``d`` seconds costs
``d + d² / quadratic_duration`` instead, so batches of long cuts hold fewer of
them: attention memory grows with the square of the length, and this keeps
peak memory level across buckets (15–40 s suits transformer-style models).
"""

from __future__ import annotations

import logging

from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler

logger = logging.getLogger(__name__)


def filter_by_duration(cuts: CutSet, min_len: float, max_len: float) -> tuple[CutSet, dict[str, int]]:
    """Keep cuts with ``min_len <= duration <= max_len``.

    Returns the (lazy) filtered set and a counter ``{"short": n, "long": m}`` of
    dropped cuts, filled in as the set is iterated, for the training log.
    """
    dropped = {"short": 0, "long": 0}

    def keep(cut) -> bool:
        if cut.duration < min_len:
            dropped["short"] += 1
            return False
        if cut.duration > max_len:
            dropped["long"] += 1
            return False
        return True

    return cuts.filter(keep), dropped


def make_sampler(
    cuts: CutSet,
    max_duration: float,
    quadratic_duration: float | None = None,
    bucketing: bool = True,
    num_buckets: int = 30,
    shuffle: bool = True,
    drop_last: bool = True,
    seed: int = 0,
    world_size: int | None = None,
    rank: int | None = None,
):
    """A checkpointable lhotse sampler (``state_dict``/``load_state_dict`` resume mid-epoch)."""
    if max_duration <= 0:
        raise ValueError(f"max_duration must be positive, got {max_duration}")
    if quadratic_duration is not None and quadratic_duration <= 0:
        quadratic_duration = None
    if bucketing:
        return DynamicBucketingSampler(
            cuts,
            max_duration=max_duration,
            quadratic_duration=quadratic_duration,
            num_buckets=num_buckets,
            shuffle=shuffle,
            drop_last=drop_last,
            buffer_size=num_buckets * 2000,
            seed=seed,
            world_size=world_size,
            rank=rank,
        )
    if quadratic_duration is not None:
        logger.warning("quadratic_duration applies only to the bucketing sampler; ignored")
    return SimpleCutSampler(
        cuts, max_duration=max_duration, shuffle=shuffle, drop_last=drop_last, seed=seed, world_size=world_size, rank=rank
    )
