"""Chunk layout for overlapped VAE encode/decode, in latent frames.

The layout is the one SongBloom's decoder uses (chunk 128, overlap 32 latent frames):

- chunks start at 0, hop, 2·hop, ... (hop = chunk - overlap) while start + chunk <= total,
  plus a final chunk aligned to the end (start = total - chunk) when the last regular one
  does not already end there;
- every chunk is processed on its own; pasting drops ``overlap // 2`` frames at every inner
  edge (the first chunk keeps its start, the last its end) and a later chunk overwrites an
  earlier one where their kept parts still overlap (possible next to the end-aligned chunk).

:func:`chunk_plan` returns the result of that pasting as pieces that partition
``[0, total)``, so the output can be preallocated and each piece written once. Unlike
upstream, ``total <= chunk`` is one piece covering everything (upstream fails below one chunk).

Chunked encode uses the same plan over the output frames: the window for frames
``[start, stop)`` is the audio ``[start·ratio, stop·ratio)`` (the last window runs to the end of
the audio), so window frames sit exactly on the global frame grid, and every kept frame has at
least ``overlap // 2`` frames of real audio on each side. Chunked and unchunked results agree
wherever the network's receptive field fits in that margin.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkPiece:
    """Process frames ``[start, stop)`` and keep output frames ``[keep_start, keep_end)`` (absolute)."""

    start: int
    stop: int
    keep_start: int
    keep_end: int


def chunk_plan(total: int, chunk_size: int, overlap: int) -> list[ChunkPiece]:
    """Pieces that cover ``[0, total)`` exactly once, in order; see the module docstring."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if not 0 <= overlap < chunk_size:
        raise ValueError(f"overlap must be in [0, chunk_size={chunk_size}), got {overlap}")
    if total < 0:
        raise ValueError(f"total must be non-negative, got {total}")
    if total == 0:
        return []
    if total <= chunk_size:
        return [ChunkPiece(0, total, 0, total)]
    hop = chunk_size - overlap
    starts = list(range(0, total - chunk_size + 1, hop))
    if starts[-1] + chunk_size != total:
        starts.append(total - chunk_size)
    crop = overlap // 2
    last = len(starts) - 1
    kept = [(s + (crop if i > 0 else 0), s + chunk_size - (crop if i < last else 0)) for i, s in enumerate(starts)]
    pieces = []
    for i, s in enumerate(starts):
        begin, end = kept[i]
        if i < last:
            end = min(end, kept[i + 1][0])  # the next chunk overwrites what it also keeps
        pieces.append(ChunkPiece(s, s + chunk_size, begin, end))
    return pieces
