"""Fitting a sketch codebook to MuQ frames: k-means++ start, mini-batch or EMA updates, dead-code restarts.

* **Start** (:func:`kmeans_plus_plus`): k-means++ on a sample of frames
  (Arthur & Vassilvitskii 2007: each next centre drawn with probability
  proportional to the squared distance to the nearest centre so far), so the
  start covers the data instead of clumping.
* **Updates** (:func:`fit_codebook`), one mini-batch at a time:
  ``minibatch``: Sculley's (2010) per-centre learning rate 1/count, which is
  the running mean of every frame a centre has taken; ``ema``: the VQ-VAE
  style exponential moving average of assigned sums and counts (``decay``).
* **Dead codes**: every ``restart_every`` steps a centre whose use over those
  steps fell below ``dead_fraction`` of the mean use (batch size / K frames per batch)
  is moved onto a random frame of the current batch (chosen k-means++-style among the batch's frames), so a
  16384-entry codebook does not end with half its rows unused.
* **Logs**: quantisation MSE, the share of codes used in the recent window and
  the perplexity of the assignment distribution (exp of its entropy; K when
  every code is used equally).

Everything is real-valued torch and runs on CPU, CUDA or MPS.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from songbloom.sketch.codebook import nearest, squared_distances

logger = logging.getLogger(__name__)
UPDATES = ("minibatch", "ema")


@dataclass
class FitStats:
    """What :func:`fit_codebook` measured, for logs and the codebook report."""

    mse: list[float] = field(default_factory=list)
    usage: list[float] = field(default_factory=list)
    perplexity: list[float] = field(default_factory=list)
    restarts: int = 0


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator, chunk: int = 8192) -> torch.Tensor:
    """k centres chosen from the rows of ``x`` by k-means++ seeding."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means++ needs at least {k} frames, got {n}")
    first = int(torch.randint(n, (1,), generator=generator))
    centres = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    centres[0] = x[first]
    best = torch.cat([squared_distances(x[s:s + chunk], centres[:1]).squeeze(1) for s in range(0, n, chunk)])
    for i in range(1, k):
        total = best.sum()
        if float(total) <= 0:  # every frame sits on a centre: take any frame not chosen yet
            j = int(torch.randint(n, (1,), generator=generator))
        else:
            j = int(torch.multinomial((best / total).cpu(), 1, generator=generator))
        centres[i] = x[j]
        d = (x - x[j]).pow(2).sum(1)
        best = torch.minimum(best, d)
    return centres


def perplexity(counts: torch.Tensor) -> float:
    p = counts.float() / counts.sum().clamp_min(1)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def fit_codebook(
    frames: torch.Tensor,
    k: int,
    steps: int = 1000,
    batch_size: int = 4096,
    update: str = "minibatch",
    decay: float = 0.99,
    init_sample: int = 65536,
    restart_every: int = 50,
    dead_fraction: float = 0.1,
    seed: int = 0,
    log_every: int = 100,
    progress: bool = True,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, FitStats]:
    """Fit ``k`` centres to ``frames`` (N, D); returns (centres, counts over all frames, stats).

    ``init`` (k, D) starts from given centres (e.g. an earlier codebook) instead of k-means++.
    """
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    n = frames.shape[0]
    if n < k:
        raise ValueError(f"{n} frames cannot fit {k} codes: give more audio or a smaller --codebook-size")
    g = torch.Generator().manual_seed(seed)
    x = frames.float()
    if init is not None:
        if tuple(init.shape) != (k, x.shape[1]):
            raise ValueError(f"init must be ({k}, {x.shape[1]}), got {tuple(init.shape)}")
        centres = init.to(x.device, torch.float32).clone()
    else:
        sample = x[torch.randperm(n, generator=g)[:max(k, min(init_sample, n))].to(x.device)]
        centres = kmeans_plus_plus(sample, k, g)
    counts = torch.zeros(k, device=x.device)  # minibatch: frames taken so far
    ema_count = torch.full((k,), batch_size / k, device=x.device)  # recent use per batch
    ema_sum = centres * ema_count[:, None]
    window = torch.zeros(k, device=x.device)  # use since the last log line
    recent = torch.zeros(k, device=x.device)  # use since the last dead-code check
    stats = FitStats()
    bar = tqdm(range(1, steps + 1), desc=f"k-means ({k} codes)", unit="step", disable=not progress)
    for step in bar:
        idx = torch.randint(n, (min(batch_size, n),), generator=g).to(x.device)
        batch = x[idx]
        ids, dist = nearest(batch, centres, return_distance=True)
        onehot_counts = torch.bincount(ids, minlength=k).float()
        sums = torch.zeros_like(centres).index_add_(0, ids, batch)
        if update == "minibatch":
            counts += onehot_counts
            used = onehot_counts > 0
            lr = onehot_counts[used] / counts[used]
            centres[used] += lr[:, None] * (sums[used] / onehot_counts[used, None] - centres[used])
        else:
            ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        ema_count.mul_(decay).add_(onehot_counts, alpha=1 - decay)
        if update == "ema":
            centres = ema_sum / ema_count.clamp_min(1e-5)[:, None]
        window += onehot_counts
        recent += onehot_counts
        if restart_every and step % restart_every == 0:
            dead = recent / restart_every < dead_fraction * batch.shape[0] / k
            recent.zero_()
            n_dead = int(dead.sum())
            if n_dead:
                # k-means++ over the batch: each new centre drawn in proportion to the distance to
                # the nearest centre so far (new ones included), so revived codes spread over what
                # the codebook misses instead of landing in one far cluster together
                dead = dead.nonzero().squeeze(1)
                best = dist.clone()
                chosen = []
                for _ in range(n_dead):
                    w = best.clamp_min(0).cpu()
                    if float(w.sum()) <= 0:
                        break
                    j = int(torch.multinomial(w, 1, generator=g))
                    chosen.append(j)
                    best = torch.minimum(best, (batch - batch[j]).pow(2).sum(1))
                dead = dead[:len(chosen)]
                pick = torch.tensor(chosen, dtype=torch.long, device=x.device)
                centres[dead] = batch[pick]
                ema_count[dead] = batch.shape[0] / k  # a fresh code starts at the mean use
                ema_sum[dead] = centres[dead] * ema_count[dead, None]
                counts[dead] = 0
                stats.restarts += n_dead
        if step % log_every == 0 or step == steps:
            mse = float(dist.mean()) / x.shape[1]
            usage = float((window > 0).float().mean())
            ppl = perplexity(window)
            stats.mse.append(mse)
            stats.usage.append(usage)
            stats.perplexity.append(ppl)
            bar.set_postfix(mse=f"{mse:.4g}", usage=f"{usage:.0%}", ppl=f"{ppl:.0f}")
            logger.info("step %d: mse %.4g per dim, %.1f %% of codes used in the last %d steps, perplexity %.1f"
                        " (of %d), %d restarts so far", step, mse, 100 * usage, log_every, ppl, k, stats.restarts)
            window.zero_()
    final = torch.zeros(k, dtype=torch.long)
    for start in range(0, n, 65536):
        final += torch.bincount(nearest(x[start:start + 65536], centres), minlength=k).cpu()
    if not math.isfinite(float(centres.sum())):
        raise FloatingPointError("the codebook has non-finite entries (features with inf/nan?)")
    return centres.cpu(), final, stats
