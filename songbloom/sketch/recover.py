"""Estimating the unreleased sketch codebook from a released SongBloom model.

The released model samples sketch ids and writes the audio they describe; the
codebook it was trained with is not public. If sketch ids are the nearest rows
of a codebook over one MuQ layer, then MuQ features of the model's own audio,
grouped by the id sampled at the same 25 Hz frame, scatter around that row. So:

1. generate songs (or take given ones) with their sampled ids;
2. compute every MuQ layer's features of the audio and align frames with ids
   (:func:`align`: feature frame ``t`` takes id ``floor(t · id_rate / feature_rate)``;
   both are 25 Hz for the released model, and the shorter sequence sets the length);
3. per layer, the centroid of each id's frames over the fitting songs
   (:func:`centroids`) is that id's estimated row;
4. agreement on held-out songs (:func:`agreement`): the share of frames whose
   nearest estimated row is the id the model sampled there (frames of ids the
   fitting songs never produced are left out, and reported as lost coverage);
   the layer with the highest agreement is the one the codebook lived in.

The result is a :class:`~songbloom.sketch.codebook.Codebook` with ``source
"recovered"``; ids never seen stay marked unknown and are never produced when
quantising. Training data quantised with it keeps the meaning the released
model's sketch embedding and classifier rows already have, so fine-tuning
starts from what the model knows; a freshly trained k-means codebook gives ids
whose meaning the model has to learn again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from songbloom.sketch.codebook import Codebook, nearest


@dataclass
class Song:
    """One generated song: ``features`` per MuQ layer, each (T, D), and the sampled ``ids`` (T_ids,)."""

    name: str
    features: dict[int, torch.Tensor]
    ids: torch.Tensor
    id_rate: float = 25.0
    feature_rate: float = 25.0


@dataclass
class LayerResult:
    layer: int
    agreement: float
    coverage: float
    frames: int


@dataclass
class Recovery:
    codebook: Codebook
    layers: list[LayerResult] = field(default_factory=list)

    @property
    def best(self) -> LayerResult:
        return max(self.layers, key=lambda r: r.agreement)


def align(features: torch.Tensor, ids: torch.Tensor, id_rate: float, feature_rate: float):
    """(T, D) features and ids at another rate → frame-aligned (T', D) and (T',)."""
    t = torch.arange(features.shape[0])
    idx = torch.floor(t * (id_rate / feature_rate) + 1e-6).long()
    keep = idx < ids.shape[0]
    return features[keep], ids[idx[keep]]


def centroids(songs: list[Song], layer: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of every id over ``songs`` → (size, D) rows and (size,) frame counts."""
    sums, counts = None, torch.zeros(size, dtype=torch.long)
    for s in songs:
        f, i = align(s.features[layer], s.ids, s.id_rate, s.feature_rate)
        if sums is None:
            sums = torch.zeros(size, f.shape[1], dtype=torch.float64)
        if i.numel() and int(i.max()) >= size:
            raise ValueError(f"{s.name}: sketch id {int(i.max())} is outside a codebook of {size}")
        sums.index_add_(0, i, f.double())
        counts += torch.bincount(i, minlength=size)
    rows = (sums / counts.clamp_min(1)[:, None]).float()
    return rows, counts


def agreement(songs: list[Song], layer: int, rows: torch.Tensor, known: torch.Tensor) -> tuple[float, float, int]:
    """(share of held-out frames re-quantised to their sampled id, share of frames with a known id, frames)."""
    hit = covered = total = 0
    for s in songs:
        f, i = align(s.features[layer], s.ids, s.id_rate, s.feature_rate)
        total += i.numel()
        ok = known[i]
        covered += int(ok.sum())
        if ok.any():
            hit += int((nearest(f[ok].float(), rows, allowed=known) == i[ok]).sum())
    return hit / max(covered, 1), covered / max(total, 1), total


def recover_codebook(fit: list[Song], heldout: list[Song], size: int, layers: list[int] | None = None,
                     min_count: int = 1) -> Recovery:
    """Estimate the codebook in every layer, keep the one that agrees best on ``heldout``."""
    if not fit:
        raise ValueError("no songs to fit the codebook on")
    layers = layers if layers is not None else sorted(fit[0].features)
    best: Recovery | None = None
    results = []
    for layer in layers:
        rows, counts = centroids(fit, layer, size)
        known = counts >= min_count
        agree, cover, frames = agreement(heldout or fit, layer, rows, known)
        results.append(LayerResult(layer, agree, cover, frames))
        if best is None or agree > best.best.agreement:
            best = Recovery(Codebook(rows, layer, "recovered", known, counts), [results[-1]])
    best.layers = results
    return best
