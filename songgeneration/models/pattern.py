"""The delay pattern: K parallel code streams <-> one pattern sequence of K rows.

Codes ``[B, K, T]`` become ``[B, K, S]`` with ``S = T + max(delays) + 1``: column 0 is the start
step (all ``special``), and ``seq[:, q, s] = codes[:, q, s - 1 - delays[q]]`` where that frame
exists, else ``special``. The model's output at column ``s`` predicts column ``s + 1``, so the
logits of frame ``t`` of stream ``q`` sit at column ``t + delays[q]``.
"""

from __future__ import annotations

import torch


class DelayPattern:
    def __init__(self, delays: list[int], special: int):
        self.delays = list(delays)
        self.special = special
        self.max_delay = max(self.delays)

    def length(self, frames: int) -> int:
        return frames + self.max_delay + 1

    def valid(self, column: int, frames: int) -> list[bool]:
        """Which streams hold a real frame at pattern ``column`` of a ``frames``-frame sequence."""
        return [0 <= column - 1 - d < frames for d in self.delays]

    def build(self, codes: torch.Tensor) -> torch.Tensor:
        b, k, t = codes.shape
        seq = codes.new_full((b, k, self.length(t)), self.special)
        for q, d in enumerate(self.delays):
            seq[:, q, 1 + d:1 + d + t] = codes[:, q]
        return seq

    def revert(self, seq: torch.Tensor, frames: int) -> torch.Tensor:
        """Pattern sequence ``[B, K, S']`` -> codes ``[B, K, frames]``; columns past ``S'`` read as special."""
        b, k, s = seq.shape
        out = seq.new_full((b, k, frames), self.special)
        for q, d in enumerate(self.delays):
            avail = max(0, min(frames, s - 1 - d))
            out[:, q, :avail] = seq[:, q, 1 + d:1 + d + avail]
        return out

    def revert_logits(self, logits: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Model output ``[B, K, S, card]`` -> ``([B, K, frames, card], mask [B, K, frames])``."""
        out = torch.stack([logits[:, q, d:d + frames] for q, d in enumerate(self.delays)], dim=1)
        mask = torch.ones(out.shape[:3], dtype=torch.bool, device=logits.device)
        return out, mask
