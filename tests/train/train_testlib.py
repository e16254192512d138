"""Small models and training data for the tests of shirabe.train: a step sampler, an epoch sampler
over a fixed list of batches, lhotse dummy cuts, and a frame-weighted regression loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shirabe.train.metrics import MetricsTracker


class Regressor(nn.Module):
    """``proj`` then ``out``: a two-layer linear map of (B, T, 4) inputs."""

    def __init__(self, dim: int = 4, seed: int = 0, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 1)
        self.to(dtype)

    def forward(self, x):
        return self.out(torch.tanh(self.proj(x)))


def masked_loss(model, batch: dict, is_training: bool):
    """Mean squared error over the valid frames (``mask``); ``frames`` is their count."""
    pred = model(batch["x"]).squeeze(-1)
    mask = batch["mask"].to(pred.dtype)
    frames = mask.sum()
    loss = ((pred - batch["y"]) ** 2 * mask).sum() / frames
    return loss, MetricsTracker(loss=float(loss.detach()) * float(frames), frames=float(frames),
                                utterances=int(batch["x"].shape[0]))


def make_batch(seed: int, rows: int = 2, max_frames: int = 6, dtype=torch.float32) -> dict:
    """A batch of ``rows`` sequences of 1..max_frames valid frames (the rest padding)."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, max_frames + 1, (rows,), generator=g)
    t = int(lens.max())
    mask = (torch.arange(t)[None, :] < lens[:, None]).to(dtype)
    x = torch.randn(rows, t, 4, generator=g, dtype=dtype) * mask[..., None]
    y = torch.randn(rows, t, generator=g, dtype=dtype) * mask
    return {"x": x, "y": y, "mask": mask}


def concat_batches(batches: list[dict]) -> dict:
    """One batch holding all rows of ``batches`` (padded to the longest)."""
    t = max(b["x"].shape[1] for b in batches)

    def pad(v):
        return torch.nn.functional.pad(v, (0, 0, 0, t - v.shape[1]) if v.dim() == 3 else (0, t - v.shape[1]))

    return {k: torch.cat([pad(b[k]) for b in batches]) for k in batches[0]}


class RandomBatches:
    """A step sampler: ``batch()`` draws batches of random size from its own numpy generator."""

    def __init__(self, seed: int = 0, dtype=torch.float32):
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.drawn = 0

    def batch(self) -> dict:
        self.drawn += 1
        return make_batch(int(self.rng.integers(1 << 30)), rows=int(self.rng.integers(1, 4)), dtype=self.dtype)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.drawn = state["drawn"]


class ListSampler:
    """An epoch sampler over indices ``0..n-1`` in order (the same every epoch), checkpointable."""

    def __init__(self, n: int):
        self.n, self.pos, self.epoch = n, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        while self.pos < self.n:
            self.pos += 1
            yield self.pos - 1
        self.pos = 0

    def __len__(self):
        return self.n

    def state_dict(self) -> dict:
        return {"pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.epoch = state["pos"], state["epoch"]


def list_loader(batches: list[dict]) -> torch.utils.data.DataLoader:
    """An epoch-based DataLoader yielding ``batches`` in order, one epoch each pass."""
    return torch.utils.data.DataLoader(batches, sampler=ListSampler(len(batches)), batch_size=None)
