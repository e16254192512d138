"""A LLaMA decoder stack over input embeddings, with a preallocated KV cache (SongBloom's AR
backbone; SongGeneration's two decoders build on its layers).

Parameter names follow Hugging Face's ``LlamaModel`` without ``embed_tokens`` (the models feed
embeddings): ``layers.N.self_attn.{q,k,v,o}_proj``, ``layers.N.mlp.{gate,up,down}_proj``,
``layers.N.{input,post_attention}_layernorm`` and ``norm``, so released checkpoints load as they
are. The maths is that model's: pre-norm RMSNorm (fp32 statistics, eps 1e-6), rotary position
embedding over the whole head (rotate-half, base ``rope_theta``), causal softmax attention with
scale 1/sqrt(head_dim), SwiGLU MLP, no biases. Positions count from 0 at the first input row.

:class:`KVCache` holds keys and values of all layers in buffers that grow by doubling, so
feeding one position at a time costs no re-copy of the past per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(positions: torch.Tensor, dim: int, base: float,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (len, dim) of the rotary angles, computed in fp32 and cast to ``dtype``."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64, device=positions.device).float() / dim))
    freqs = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class KVCache:
    """Keys and values of every layer for a batch, in buffers grown by doubling."""

    def __init__(self, num_layers: int, capacity: int = 0):
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.capacity = capacity  # positions to allocate at the first append (grown when exceeded)
        self.length = 0  # positions stored (all layers agree once a forward finished)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, H, n, hd) new keys/values after the past; return all of them."""
        start, n = self.length, k.shape[2]
        buf_k, buf_v = self.keys[layer], self.values[layer]
        if buf_k is None or buf_k.shape[2] < start + n or buf_k.dtype != k.dtype:
            capacity = max(start + n, 2 * (buf_k.shape[2] if buf_k is not None else 0), self.capacity, 64)
            new_k = k.new_empty(k.shape[0], k.shape[1], capacity, k.shape[3])
            new_v = v.new_empty(v.shape[0], v.shape[1], capacity, v.shape[3])
            if buf_k is not None and start:
                new_k[:, :, :start] = buf_k[:, :, :start]
                new_v[:, :, :start] = buf_v[:, :, :start]
            buf_k, buf_v = self.keys[layer], self.values[layer] = new_k, new_v
        buf_k[:, :, start:start + n] = k
        buf_v[:, :, start:start + n] = v
        return buf_k[:, :, :start + n], buf_v[:, :, :start + n]


class LlamaAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, rope_theta: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.rope_theta = rope_theta
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        past = cache.length if cache is not None else 0
        if cache is not None:
            k, v = cache.append(layer, k, v)
        if n == 1:
            out = F.scaled_dot_product_attention(q, k, v)
        elif past == 0:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            total = past + n
            allowed = torch.ones(n, total, dtype=torch.bool, device=x.device).tril(diagonal=past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class LlamaMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, hidden: int, rope_theta: float, eps: float):
        super().__init__()
        self.self_attn = LlamaAttention(dim, num_heads, rope_theta)
        self.mlp = LlamaMLP(dim, hidden)
        self.input_layernorm = RMSNorm(dim, eps)
        self.post_attention_layernorm = RMSNorm(dim, eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaBackbone(nn.Module):
    """``LlamaModel`` minus the token embedding: (B, T, dim) embeddings -> last hidden state."""

    def __init__(self, dim: int, num_heads: int, num_layers: int, hidden: int, rope_theta: float,
                 eps: float = 1e-6):
        super().__init__()
        self.head_dim = dim // num_heads
        self.rope_theta = rope_theta
        self.layers = nn.ModuleList(
            LlamaDecoderLayer(dim, num_heads, hidden, rope_theta, eps) for _ in range(num_layers))
        self.norm = RMSNorm(dim, eps)
        self.gradient_checkpointing = False

    def new_cache(self, capacity: int = 0) -> KVCache:
        """An empty cache; ``capacity`` positions are allocated up front (it grows past them)."""
        return KVCache(len(self.layers), capacity)

    def forward(self, inputs_embeds: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Positions continue after ``cache.length`` when a cache is given (which is then extended)."""
        x = inputs_embeds
        past = cache.length if cache is not None else 0
        positions = torch.arange(past, past + x.shape[1], device=x.device)
        cos, sin = rope_cos_sin(positions, self.head_dim, self.rope_theta, x.dtype)
        use_ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and cache is None
        for i, layer in enumerate(self.layers):
            if use_ckpt:
                x = checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin, cache, i)
        if cache is not None:
            cache.length = past + inputs_embeds.shape[1]
        return self.norm(x)
