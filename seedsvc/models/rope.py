"""Rotary position embedding with interleaved pairs, as the V2 DiT uses it.

The table has one row per position ``p`` and one ``(cos, sin)`` pair per
frequency ``theta_i = base^(-2i / head_dim)``; it is computed in float32 and
rounded to bfloat16 (the dtype upstream stores it in, so checkpoints carry a
bf16 ``freqs_cis`` buffer). Rotation is done in float32: dims ``2i`` and
``2i + 1`` of a head form one complex number.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_table(num_positions: int, head_dim: int, base: float = 10000.0) -> Tensor:
    """``(num_positions, head_dim // 2, 2)`` bfloat16 table of ``(cos, sin)``."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(num_positions, dtype=torch.float32), inv)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1).to(torch.bfloat16)


def apply_rope(x: Tensor, table: Tensor) -> Tensor:
    """Rotate ``x`` (B, T, heads, head_dim) by ``table`` rows (T, head_dim // 2, 2)."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    rot = table.view(1, pairs.size(1), 1, pairs.size(3), 2)
    out = torch.stack(
        [
            pairs[..., 0] * rot[..., 0] - pairs[..., 1] * rot[..., 1],
            pairs[..., 1] * rot[..., 0] + pairs[..., 0] * rot[..., 1],
        ],
        dim=-1,
    )
    return out.flatten(3).type_as(x)
