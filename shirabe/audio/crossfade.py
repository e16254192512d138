"""Joining generated audio chunks with a linear cross-fade."""

from __future__ import annotations

import numpy as np


def cross_fade_concat(chunks: list[np.ndarray], sr: int, fade_seconds: float = 0.1) -> np.ndarray:
    """Concatenate 1-D chunks, overlapping neighbours by ``fade_seconds`` (linear fade).

    The overlap shrinks to the shorter neighbour when a chunk is shorter than
    the fade.
    """
    chunks = [np.asarray(c, dtype=np.float32) for c in chunks if len(c)]
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    out = chunks[0]
    fade = int(round(fade_seconds * sr))
    for nxt in chunks[1:]:
        n = min(fade, len(out), len(nxt))
        if n == 0:
            out = np.concatenate([out, nxt])
            continue
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        mixed = out[-n:] * (1.0 - ramp) + nxt[:n] * ramp
        out = np.concatenate([out[:-n], mixed, nxt[n:]])
    return out
