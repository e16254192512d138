"""Manifests → checked CutSets → samplers and data loaders for training and validation.

Training batches come from lhotse's ``DynamicBucketingSampler`` (through
:func:`shirabe.data.sampling.make_sampler`), limited by padded duration
(``max_duration`` seconds) or, with ``quadratic_duration``, by a cost that
grows with the square of a cut's length. Cuts outside ``[min_len, max_len]``
seconds are left out of training (not of validation). Under DDP each rank's
sampler yields its own share of every epoch, the same number of batches on
every rank. Samplers are checkpointable (``state_dict`` / ``load_state_dict``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from lhotse import CutSet, load_manifest_lazy
from lhotse.dataset.dataloading import make_worker_init_fn

from shirabe.cli import InputError
from shirabe.data.sampling import filter_by_duration, make_sampler
from shirabe.train.params import str2bool
from zipvoice.dataset.dataset import ZipVoiceDataset

logger = logging.getLogger(__name__)

DEV_NUM_WORKERS = 2


@dataclass
class DataOptions:
    max_duration: float = 200.0
    quadratic_duration: float | None = None
    num_buckets: int = 30
    min_len: float = 1.0
    max_len: float = 30.0
    num_workers: int = 8
    drop_last: bool = True
    shuffle: bool = True
    seed: int = 42

    @classmethod
    def from_args(cls, args) -> DataOptions:
        return cls(**{k: getattr(args, k) for k in cls.__dataclass_fields__ if hasattr(args, k)})


def load_cuts(path: str | Path, what: str = "training") -> CutSet:
    """Open a CutSet manifest lazily and check its first cut (features, one supervision)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} manifest")
    if ".jsonl" not in "".join(path.suffixes):
        raise InputError(f"{path}: expected a lhotse CutSet manifest (*.jsonl.gz)")
    try:
        cuts = load_manifest_lazy(path)
        first = next(iter(cuts)) if cuts is not None else None
    except Exception as e:  # noqa: BLE001 - gzip/json/lhotse raise many kinds for a bad file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable CutSet manifest ({reason})") from e
    if first is None:
        raise InputError(f"{path}: the {what} manifest is empty")
    if not isinstance(cuts, CutSet):
        raise InputError(f"{path}: holds {type(cuts).__name__}, expected a CutSet")
    if not first.has_features:
        raise InputError(f"{path}: cut {first.id} has no precomputed features (compute the fbank features first)")
    if len(first.supervisions) != 1:
        raise InputError(f"{path}: cut {first.id} has {len(first.supervisions)} supervisions, expected exactly one")
    return cuts


def total_duration(cuts: CutSet) -> float:
    """Sum of the cut durations (one pass over a lazy manifest)."""
    return float(sum(c.duration for c in cuts))


def fit_num_buckets(cuts: CutSet, num_buckets: int, max_duration: float) -> int:
    """How many duration buckets a small corpus can fill.

    A bucket only yields a batch once it holds ``max_duration`` seconds, and with
    drop_last its remainder is dropped at the end of the epoch, so buckets that
    each hold less than a batch give nothing at all. The count is capped at one
    bucket per two batches' worth of audio (and at the number of cuts); 1 means
    "do not bucket". Only the first ``200 * num_buckets`` cuts are read: a corpus
    larger than that fills every bucket.
    """
    limit = 200 * num_buckets
    durations = [c.duration for c in islice(cuts, limit)]
    fitted = min(num_buckets, len(durations))
    if len(durations) < limit:
        fitted = min(fitted, int(sum(durations) // (2 * max_duration)))
    fitted = max(1, fitted)
    if fitted < num_buckets:
        logger.info("%d cuts (%.0f s): using %d duration bucket(s) instead of %d", len(durations), sum(durations),
                    fitted, num_buckets)
    return fitted


def _loader(dataset, sampler, num_workers: int, rank: int, world_size: int, seed: int):
    # The loader's own generator (for the workers' base seed) keeps it from drawing
    # from the global one, whose state training checkpoints restore.
    return torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=make_worker_init_fn(rank=rank, world_size=world_size, seed=seed) if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )


def make_train_dataloader(
    cuts: CutSet, dataset: ZipVoiceDataset, opts: DataOptions, world_size: int = 1, rank: int = 0
) -> tuple[torch.utils.data.DataLoader, CutSet, dict[str, int]]:
    """Returns the loader, the duration-filtered cuts and the counter of cuts dropped by the filter.

    The counter counts on every pass over the filtered cuts (reset it before a pass to count that one).
    """
    cuts, dropped = filter_by_duration(cuts, opts.min_len, opts.max_len)
    num_buckets = fit_num_buckets(cuts, opts.num_buckets, opts.max_duration)
    if not any(True for _ in islice(cuts, 1)):
        raise InputError(f"no training cut lies within --min-len {opts.min_len} and --max-len {opts.max_len} seconds")
    sampler = make_sampler(
        cuts,
        max_duration=opts.max_duration,
        quadratic_duration=opts.quadratic_duration,
        bucketing=num_buckets > 1,
        num_buckets=num_buckets,
        shuffle=opts.shuffle,
        drop_last=opts.drop_last,
        seed=opts.seed,
        world_size=world_size,
        rank=rank,
    )
    return _loader(dataset, sampler, opts.num_workers, rank, world_size, opts.seed), cuts, dropped


def make_dev_dataloader(
    cuts: CutSet, dataset: ZipVoiceDataset, opts: DataOptions, world_size: int = 1, rank: int = 0
) -> torch.utils.data.DataLoader:
    """Validation loader: every cut once (no duration filter, no shuffling), split over ranks."""
    num_buckets = fit_num_buckets(cuts, opts.num_buckets, opts.max_duration)
    sampler = make_sampler(
        cuts,
        max_duration=opts.max_duration,
        quadratic_duration=opts.quadratic_duration,
        bucketing=num_buckets > 1,
        num_buckets=max(2, num_buckets),
        shuffle=False,
        drop_last=False,
        seed=opts.seed,
        world_size=world_size,
        rank=rank,
    )
    return _loader(dataset, sampler, min(opts.num_workers, DEV_NUM_WORKERS), rank, world_size, opts.seed)


def add_data_arguments(parser) -> None:
    """The data options of the training binaries (manifests, batching, loaders)."""
    g = parser.add_argument_group("data")
    g.add_argument("--train-manifest", type=Path, required=True, help="training CutSet (*.jsonl.gz, features stored)")
    g.add_argument("--dev-manifest", type=Path, default=None, help="validation CutSet (default: none, no validation)")
    g.add_argument("--max-duration", type=float, default=200, help="padded seconds of audio per batch")
    g.add_argument("--quadratic-duration", type=float, default=None,
                   help="a cut of d seconds costs d + d^2/Q toward --max-duration (lhotse; off by default)")
    g.add_argument("--num-buckets", type=int, default=30, help="duration buckets of the sampler")
    g.add_argument("--min-len", type=float, default=1.0, help="leave out training cuts shorter than this (s)")
    g.add_argument("--max-len", type=float, default=30.0, help="leave out training cuts longer than this (s)")
    g.add_argument("--num-workers", type=int, default=8, help="DataLoader worker processes")
    g.add_argument("--drop-last", type=str2bool, default=True, help="drop the last partial batch of an epoch")
    g.add_argument("--shuffle", type=str2bool, default=True, help="shuffle the training cuts every epoch")
