"""Cross-attention from the DiT's hidden sequence to frame-level F0 features.

Placed after each DiT block. Queries are the frame tokens of the hidden sequence
(the time and style tokens are left alone); keys and values are the F0 features
of the same frames. Both get the RoPE rotation of their frame's position in the
sequence (frame ``i`` is position ``i + 2``), and a band mask lets frame ``i`` see
only F0 frames ``i - band .. i + band``, so pitch lines up frame by frame.
Padded F0 frames (``>= x_len``) are masked; a query always sees its own frame,
so no row is empty.

The output goes through a per-channel gate ``tanh(g)`` with ``g`` initialised to
zero: a freshly built module adds exactly 0 and the estimator behaves bit for
bit like V2. ``keep`` (B,) switches the F0 off per item (the unconditioned
guidance branch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedsvc.models.rope import apply_rope


class F0CrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, context_dim: int | None = None, band: int = 4):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.head_dim, self.band = num_heads, dim // num_heads, band
        context_dim = context_dim or dim
        self.norm_weight = nn.Parameter(torch.ones(dim))
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wkv = nn.Linear(context_dim, 2 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Parameter(torch.zeros(dim))

    def band_mask(self, key_valid: Tensor) -> Tensor:
        """(B, 1, T, T) bool: key j visible to query i iff |i - j| <= band and key j is valid (or j == i)."""
        t = key_valid.shape[1]
        idx = torch.arange(t, device=key_valid.device)
        diff = idx[:, None] - idx[None, :]
        band = diff.abs() <= self.band
        visible = band[None] & key_valid[:, None, :]
        return (visible | (diff == 0)[None])[:, None]

    def forward(self, h: Tensor, context: Tensor, freqs: Tensor, key_valid: Tensor, keep: Tensor) -> Tensor:
        """``h`` (B, 2 + T, H), ``context`` (B, T, C), ``freqs`` (2 + T, hd/2, 2) → updated ``h``."""
        prefix, frames = h[:, :2], h[:, 2:]
        b, t, d = frames.shape
        ff = frames.float()
        normed = (ff * torch.rsqrt(torch.mean(ff * ff, dim=-1, keepdim=True) + 1e-5)).type_as(frames)
        q = self.wq(normed * self.norm_weight).view(b, t, self.num_heads, self.head_dim)
        k, v = self.wkv(context).chunk(2, dim=-1)
        k = k.reshape(b, t, self.num_heads, self.head_dim)
        v = v.reshape(b, t, self.num_heads, self.head_dim)
        frame_freqs = freqs[2 : 2 + t]
        q, k = apply_rope(q, frame_freqs), apply_rope(k, frame_freqs)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=self.band_mask(key_valid)
        )
        y = self.wo(y.transpose(1, 2).reshape(b, t, d))
        y = y * torch.tanh(self.gate) * keep.to(y.dtype)[:, None, None]
        return torch.cat([prefix, frames + y], dim=1)
