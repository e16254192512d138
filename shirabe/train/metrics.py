"""Loss bookkeeping and TensorBoard output.

:class:`MetricsTracker` holds sums weighted by a normaliser (``frames`` by
default): a batch contributes ``{"loss": loss * frames, "frames": frames}``,
and :meth:`MetricsTracker.averages` divides every sum by the normaliser.
Trackers add up (``a + b``), decay (``a * 0.995``, the running average the
training log shows) and sum over DDP ranks (:meth:`MetricsTracker.reduce`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from shirabe.train.dist import sum_over_ranks

logger = logging.getLogger(__name__)


class MetricsTracker(dict):
    """``{name: weighted sum}`` plus the normaliser under ``norm_key``."""

    norm_key = "frames"
    #: plain counts, never divided by the normaliser
    count_keys = ("frames", "utterances")

    def __add__(self, other: dict) -> MetricsTracker:
        out = MetricsTracker(self)
        for k, v in other.items():
            out[k] = out.get(k, 0.0) + v
        return out

    def __mul__(self, alpha: float) -> MetricsTracker:
        return MetricsTracker({k: v * alpha for k, v in self.items()})

    def averages(self) -> dict[str, float]:
        """Every metric divided by the normaliser (counts such as the normaliser are left out)."""
        norm = self.get(self.norm_key, 0.0)
        return {k: (v / norm if norm > 0 else float("nan")) for k, v in self.items() if k not in self.count_keys}

    def reduce(self, device="cpu") -> MetricsTracker:
        """Sums over all DDP ranks (every rank must call this at the same time)."""
        keys = sorted(self)
        return MetricsTracker(zip(keys, sum_over_ranks([float(self[k]) for k in keys], device)))

    def __str__(self) -> str:
        parts = [f"{k} {v:.4g}" for k, v in self.averages().items()]
        parts += [f"{k} {self[k]:.0f}" for k in self.count_keys if k in self]
        return ", ".join(parts)


class TensorBoard:
    """A SummaryWriter under ``log_dir`` on rank 0 when enabled; otherwise every call is a no-op."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, rank: int = 0):
        self.writer = None
        if enabled and rank == 0:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # tensorboard is a dependency, but keep training alive without it
                logger.warning("TensorBoard is not available (%s); no event files are written", e)
                return
            self.writer = SummaryWriter(log_dir=str(log_dir))

    def add_scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
