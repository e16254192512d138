"""The sketch codebook: MuQ frames → sketch ids by the nearest row, and its file.

A codebook file is a ``torch.save`` dict of tensors and plain values, written
atomically and read with ``weights_only=True``::

    codebook  (K, D) float32     one row per sketch id
    known     (K,) bool          rows that hold a centre (a recovered codebook
                                 may not have seen every id; those rows are never chosen)
    counts    (K,) int64         frames behind each row
    muq_layer int                which MuQ hidden state the rows live in
    source    str                "kmeans" (trained here) or "recovered" (estimated from a released model)

Distances are squared Euclidean, computed in chunks so that 16384 × 1024 rows
against a song's frames never need more than ``chunk`` × K floats at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from shirabe.cli import InputError
from shirabe.train.checkpoint import atomic_save, safe_load

SOURCES = ("kmeans", "recovered")


@dataclass
class Codebook:
    codebook: torch.Tensor
    muq_layer: int
    source: str = "kmeans"
    known: torch.Tensor | None = None
    counts: torch.Tensor | None = None

    def __post_init__(self):
        k = self.codebook.shape[0]
        if self.known is None:
            self.known = torch.ones(k, dtype=torch.bool)
        if self.counts is None:
            self.counts = torch.zeros(k, dtype=torch.long)

    @property
    def size(self) -> int:
        return self.codebook.shape[0]

    @property
    def dim(self) -> int:
        return self.codebook.shape[1]

    def quantize(self, features: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(T, D) features → (T,) ids of the nearest known rows."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"expected (T, {self.dim}) features, got {tuple(features.shape)}")
        rows = self.codebook.to(features.device, torch.float32)
        known = self.known.to(features.device)
        return nearest(features.float(), rows, chunk=chunk, allowed=None if bool(known.all()) else known)

    def save(self, path: str | Path) -> Path:
        return atomic_save({"codebook": self.codebook.float().cpu().contiguous(), "known": self.known.cpu(),
                            "counts": self.counts.cpu(), "muq_layer": int(self.muq_layer), "source": self.source},
                           path)

    @classmethod
    def load(cls, path: str | Path) -> Codebook:
        obj = safe_load(path)
        if not isinstance(obj, dict) or not isinstance(obj.get("codebook"), torch.Tensor):
            raise InputError(f"{path}: not a sketch codebook file (no 'codebook' tensor)")
        cb = obj["codebook"]
        if cb.ndim != 2:
            raise InputError(f"{path}: field 'codebook' must be (K, D), got {tuple(cb.shape)}")
        if obj.get("source", "kmeans") not in SOURCES:
            raise InputError(f"{path}: field 'source' must be one of {SOURCES}, got {obj.get('source')!r}")
        for name in ("known", "counts"):
            if name in obj and tuple(obj[name].shape) != (cb.shape[0],):
                raise InputError(f"{path}: field {name!r} must have {cb.shape[0]} entries")
        if not isinstance(obj.get("muq_layer"), int):
            raise InputError(f"{path}: field 'muq_layer' must be an integer")
        return cls(cb.float(), obj["muq_layer"], obj.get("source", "kmeans"), obj.get("known"), obj.get("counts"))


def squared_distances(x: torch.Tensor, rows: torch.Tensor, rows_sq: torch.Tensor | None = None) -> torch.Tensor:
    """(N, D) × (K, D) → (N, K) squared Euclidean distances (clamped at 0)."""
    if rows_sq is None:
        rows_sq = rows.pow(2).sum(1)
    d = x.pow(2).sum(1, keepdim=True) - 2.0 * (x @ rows.T) + rows_sq
    return d.clamp_min_(0)


def nearest(x: torch.Tensor, rows: torch.Tensor, chunk: int = 4096, allowed: torch.Tensor | None = None,
            return_distance: bool = False):
    """Index of the nearest row for every frame of ``x``, in chunks of ``chunk`` frames."""
    rows_sq = rows.pow(2).sum(1)
    if allowed is not None:
        rows_sq = rows_sq.masked_fill(~allowed, float("inf"))
    ids, dists = [], []
    for start in range(0, x.shape[0], chunk):
        d = squared_distances(x[start:start + chunk], rows, rows_sq)
        best = d.min(1)
        ids.append(best.indices)
        dists.append(best.values)
    if not ids:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return (empty, torch.zeros(0, device=x.device)) if return_distance else empty
    out = torch.cat(ids)
    return (out, torch.cat(dists)) if return_distance else out
