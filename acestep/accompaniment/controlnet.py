"""A vocal ControlNet for the ACE-Step transformer: vocal latents → per-layer residuals.

:class:`ControlEncoder` embeds the vocal latents [B, 8, 16, T] one token per frame (a 1x1 conv
over the 8·16 latent channels), adds a timestep embedding, runs ``depth`` pre-norm transformer
blocks (softmax self-attention with RoPE, adaLN time modulation, GELU MLP), projects to the
transformer's width and RMS-normalises. For every layer in ``injection_layers`` a zero-initialised
linear map turns that signal into the residual added to the input of that transformer block
(:meth:`acestep.models.ACEStepTransformer.decode`'s ``block_residuals``). A fresh encoder therefore
adds exact zeros: the base model's output is unchanged bit for bit until training moves the
injections. Every module is created in ``__init__`` (so all of it is trained and saved).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acestep.models.transformer import apply_rotary, rotary_tables, timestep_features

ROPE_THETA = 1_000_000.0


class ControlBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"control encoder width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.modulation = nn.Linear(dim, 6 * dim)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, mask: torch.Tensor | None, rotary) -> torch.Tensor:
        b, n, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(temb)[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        bias = None if mask is None else torch.where(mask[:, None, None, :] > 0, 0.0, -torch.inf).to(q.dtype)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + gate1 * self.out(attn.transpose(1, 2).reshape(b, n, d))
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class ControlEncoder(nn.Module):
    def __init__(self, out_dim: int, injection_layers: list[int] | tuple[int, ...], dim: int = 1536,
                 depth: int = 6, heads: int = 12, in_channels: int = 8, patch_height: int = 16):
        super().__init__()
        if not injection_layers:
            raise ValueError("a ControlNet needs at least one injection layer")
        self.injection_layers = tuple(sorted(set(int(i) for i in injection_layers)))
        self.patch_embed = nn.Conv1d(in_channels * patch_height, dim, kernel_size=1)
        self.time_embed = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(ControlBlock(dim, heads) for _ in range(depth))
        self.out_proj = nn.Linear(dim, out_dim)
        self.out_norm = nn.RMSNorm(out_dim, eps=1e-6)
        self.injections = nn.ModuleDict({str(i): nn.Linear(out_dim, out_dim) for i in self.injection_layers})
        self.head_dim = dim // heads
        for layer in self.injections.values():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, vocal_latents: torch.Tensor, timestep: torch.Tensor, mask: torch.Tensor | None = None,
                scale: float = 1.0) -> dict[int, torch.Tensor]:
        """{transformer block index: residual [B, T, out_dim]} for ``vocal_latents`` [B, C, H, T] at ``timestep``
        [B] (0…1000); padded frames (``mask`` [B, T] = 0) get zero residuals."""
        b, c, h, t = vocal_latents.shape
        x = self.patch_embed(vocal_latents.reshape(b, c * h, t)).transpose(1, 2)
        temb = self.time_embed(timestep_features(timestep).to(x.dtype))
        rotary = [r.to(x.dtype) for r in rotary_tables(t, self.head_dim, ROPE_THETA, x.device)]
        for block in self.blocks:
            x = block(x, temb, mask, rotary)
        signal = self.out_norm(self.out_proj(x))
        keep = 1.0 if mask is None else mask[:, :, None].to(signal.dtype)
        return {i: self.injections[str(i)](signal) * keep * scale for i in self.injection_layers}
