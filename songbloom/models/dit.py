"""The per-patch diffusion transformer (the stable-audio ``ContinuousTransformer`` layout).

Parameter names match the released checkpoints: ``layers.N.pre_norm.{gamma,beta}``,
``layers.N.self_attn.{to_qkv,to_out}``, ``layers.N.ff_norm.{gamma,beta}``,
``layers.N.ff.ff.0.{up_proj,gate_proj}`` and ``layers.N.ff.ff.2`` (``beta`` is a persistent zero
buffer). Each layer is pre-norm::

    x = x + to_out(attention(LN(x)))
    x = x + ff.ff.2(up_proj(LN(x)) * silu(gate_proj(LN(x))))

with ``LN`` = layer_norm (eps 1e-5, weight ``gamma``, bias ``beta``), the fused ``to_qkv`` split
into q, k, v, non-causal attention without mask, no biases, and rotary position embedding
(rotate-half, positions 0..n-1, computed in fp32) on the first ``rotary_dims`` dims of each
head of q and k only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from shirabe.nn.llama import rotate_half


def rotary_freqs(n: int, dims: int, base: float, device: torch.device) -> torch.Tensor:
    """(n, dims) rotary angles in fp32: position x inv_freq, the halves repeated."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dims, 2, device=device).float() / dims))
    freqs = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat((freqs, freqs), dim=-1)


def apply_partial_rotary(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``freqs.shape[-1]`` dims of ``t`` (.., n, hd) in fp32; keep the rest."""
    dtype, dims = t.dtype, freqs.shape[-1]
    rot, rest = t[..., :dims].float(), t[..., dims:]
    rot = rot * freqs.cos() + rotate_half(rot) * freqs.sin()
    return torch.cat((rot.to(dtype), rest), dim=-1)


class LayerNorm(nn.Module):
    """layer_norm with a learnt ``gamma`` and a fixed (buffer) ``beta``."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight=self.gamma, bias=self.beta)


class Attention(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                   for t in self.to_qkv(x).chunk(3, dim=-1))
        q, k = apply_partial_rotary(q, freqs), apply_partial_rotary(k, freqs)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class GLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.gate_proj = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(x) * F.silu(self.gate_proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.ff = nn.Sequential(GLU(dim, hidden), nn.Identity(), nn.Linear(hidden, dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class DiTBlock(nn.Module):
    def __init__(self, dim: int, head_dim: int, hidden: int):
        super().__init__()
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, head_dim)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.pre_norm(x), freqs)
        return x + self.ff(self.ff_norm(x))


class DiTTransformer(nn.Module):
    """A stack of :class:`DiTBlock` over (B, n, dim) tokens."""

    def __init__(self, dim: int, depth: int, head_dim: int, hidden: int, rotary_dims: int,
                 rotary_base: float = 20000.0):
        super().__init__()
        if rotary_dims > head_dim:
            raise ValueError(f"the DiT rotates {rotary_dims} dims per head, more than head_dim {head_dim}")
        self.rotary_dims = rotary_dims
        self.rotary_base = rotary_base
        self.layers = nn.ModuleList(DiTBlock(dim, head_dim, hidden) for _ in range(depth))
        self.gradient_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        freqs = rotary_freqs(x.shape[1], self.rotary_dims, self.rotary_base, x.device)
        use_ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            x = checkpoint(layer, x, freqs, use_reentrant=False) if use_ckpt else layer(x, freqs)
        return x
