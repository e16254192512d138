"""The Seed-VC V2 DiT estimator (``cfm.estimator``), with optional F0 cross-attention.

Parameter names follow upstream's checkpoints (``transformer.layers.N.attention.wqkv``,
``attention_norm.{linear,norm}``, ``ffn_norm``, ``transformer.norm``, ``cond_projection``,
``cond_x_merge_linear``, ``style_in``, ``t_embedder.mlp``, ``final_mlp``, the unused
``x_embedder``), so ``{'net': {'cfm': ...}}`` state dicts load directly.

Forward (``x, prompt_x, x_lens, t, style, cond``):

* ``t`` → 256-d sinusoid of ``1000·t`` (cos half first) → MLP → ``c`` (the time token
  and the adaLN conditioning of every block);
* per frame ``[x (80), prompt_x (80), cond_projection(cond)]`` → ``cond_x_merge_linear``;
* sequence ``[time token, style token, frames]`` with RoPE positions ``0..T+1`` and a
  key-padding mask (key ``j`` is seen iff ``j < x_len + 2``);
* blocks: adaLN (shift, scale, gate for attention and FFN from ``Linear(SiLU(c))``),
  RMSNorm, self-attention, SwiGLU FFN; final adaptive norm (scale, shift);
* the two prefix tokens are dropped and ``final_mlp`` maps to mel bins → (B, 80, T).

When the estimator is built with an F0 block (``f0`` config), an
:class:`~seedsvc.models.f0_attention.F0CrossAttention` follows every block and the
extra ``f0`` argument (Hz at mel frames) feeds them through a
:class:`~seedsvc.models.f0.PretrainedF0Encoder`. Without ``f0`` the forward is V2's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedsvc.models.f0 import PretrainedF0Encoder
from seedsvc.models.f0_attention import F0CrossAttention
from seedsvc.models.rope import apply_rope, rope_table


def find_multiple(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - (n % k)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class AdaptiveNorm(nn.Module):
    """RMSNorm plus a ``Linear(SiLU(c))`` producing ``chunks`` modulation vectors."""

    def __init__(self, dim: int, chunks: int):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.linear = nn.Linear(dim, chunks * dim)
        self.chunks = chunks

    def modulation(self, c: Tensor) -> tuple[Tensor, ...]:
        return self.linear(F.silu(c)).chunk(self.chunks, dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.dropout = dropout

    def forward(self, x: Tensor, freqs: Tensor, mask: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.wqkv(x).split([d, d, d], dim=-1)
        q = apply_rope(q.view(b, t, self.num_heads, self.head_dim), freqs)
        k = apply_rope(k.view(b, t, self.num_heads, self.head_dim), freqs)
        v = v.view(b, t, self.num_heads, self.head_dim)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.wo(y.transpose(1, 2).contiguous().view(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(self.dropout(F.silu(self.w1(x)) * self.w3(x)))


class Block(nn.Module):
    """adaLN-Zero style block: modulated RMSNorm → attention / SwiGLU, gated residuals."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.0, attn_dropout: float = 0.0):
        super().__init__()
        self.attention = SelfAttention(dim, num_heads, attn_dropout)
        self.feed_forward = FeedForward(dim, ffn_dim, dropout)
        self.attention_norm = AdaptiveNorm(dim, 6)
        self.ffn_norm = RMSNorm(dim)

    def forward(self, x: Tensor, c: Tensor, freqs: Tensor, mask: Tensor) -> Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = self.attention_norm.modulation(c)
        h = self.attention_norm.norm(x) * (1 + scale_a) + shift_a
        x = x + gate_a * self.attention(h, freqs, mask)
        h = self.ffn_norm(x) * (1 + scale_f) + shift_f
        return x + gate_f * self.feed_forward(h)


class Transformer(nn.Module):
    def __init__(self, dim, depth, num_heads, ffn_dim, block_size, dropout=0.0, attn_dropout=0.0):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, num_heads, ffn_dim, dropout, attn_dropout) for _ in range(depth))
        self.norm = AdaptiveNorm(dim, 2)
        self.register_buffer("freqs_cis", rope_table(block_size, dim // num_heads), persistent=True)

    def final(self, x: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.norm.modulation(c)
        return self.norm.norm(x) * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 256, scale: float = 1000.0, max_period: float = 10000.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.freq_dim, self.scale, self.max_period = freq_dim, scale, max_period

    def sinusoid(self, t: Tensor) -> Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
        args = self.scale * t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(self.sinusoid(t))


class WeightNormLinear(nn.Module):
    """Holds upstream's unused ``x_embedder`` (weight-normed Linear) so its keys load."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1))
        self.weight_v = nn.Parameter(torch.randn(out_dim, in_dim) / math.sqrt(in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        for p in self.parameters():
            p.requires_grad_(False)


class DiT(nn.Module):
    """V2 estimator; see the module docstring. ``f0`` (a dict) adds the F0 path."""

    def __init__(
        self,
        hidden_dim: int = 512,
        depth: int = 13,
        num_heads: int = 8,
        in_channels: int = 80,
        content_dim: int = 512,
        style_encoder_dim: int = 192,
        block_size: int = 8192,
        class_dropout_prob: float = 0.1,
        dropout_rate: float = 0.0,
        attn_dropout_rate: float = 0.0,
        time_as_token: bool = True,
        style_as_token: bool = True,
        uvit_skip_connection: bool = False,
        f0: dict | None = None,
        **_ignored,
    ):
        super().__init__()
        if not (time_as_token and style_as_token) or uvit_skip_connection:
            raise ValueError("only V2's layout is supported: time_as_token, style_as_token, no U-ViT skips")
        self.hidden_dim, self.in_channels, self.block_size = hidden_dim, in_channels, block_size
        self.class_dropout_prob = class_dropout_prob
        ffn_dim = find_multiple(int(2 * 4 * hidden_dim / 3), 256)
        self.transformer = Transformer(
            hidden_dim, depth, num_heads, ffn_dim, block_size, dropout_rate, attn_dropout_rate
        )
        self.x_embedder = WeightNormLinear(in_channels, hidden_dim)
        self.cond_projection = nn.Linear(content_dim, hidden_dim)
        self.t_embedder = TimestepEmbedder(hidden_dim)
        self.final_mlp = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, in_channels)
        )
        self.cond_x_merge_linear = nn.Linear(hidden_dim + 2 * in_channels, hidden_dim)
        self.style_in = nn.Linear(style_encoder_dim, hidden_dim)
        self.f0_config = dict(f0) if f0 is not None else None
        if self.f0_config is not None:
            cfg = self.f0_config
            self.f0_encoder = PretrainedF0Encoder(
                n_bins=cfg.get("n_f0_bins", 256), embedding_dim=cfg.get("embedding_dim", 768), out_dim=hidden_dim
            )
            self.f0_cross_attention = nn.ModuleList(
                F0CrossAttention(
                    hidden_dim,
                    cfg.get("num_heads", num_heads),
                    context_dim=hidden_dim,
                    band=cfg.get("band", 4),
                )
                for _ in range(depth)
            )

    @property
    def has_f0(self) -> bool:
        return self.f0_config is not None

    def class_dropout(self, b: int, device) -> tuple[Tensor, Tensor]:
        """Training-time condition dropout: (drop prompt+style, drop content too) per item.

        With probability ``class_dropout_prob`` the prompt mel and the style token are
        zeroed; within those, half also lose the content (and the F0, which is dropped
        exactly where the content is: the unconditioned guidance branch).
        """
        drop = torch.rand(b, device=device) < self.class_dropout_prob
        drop_content = drop & (torch.rand(b, device=device) < 0.5)
        return drop, drop_content

    def forward(
        self,
        x: Tensor,
        prompt_x: Tensor,
        x_lens: Tensor,
        t: Tensor,
        style: Tensor,
        cond: Tensor,
        f0: Tensor | None = None,
        f0_keep: Tensor | None = None,
    ) -> Tensor:
        """(B, 80, T) velocity. ``f0`` (B, T) Hz at mel frames; ``f0_keep`` (B,) 0/1 per item."""
        b, _, t_len = x.shape
        if t_len + 2 > self.block_size:
            raise ValueError(f"{t_len} frames exceed the estimator's context ({self.block_size - 2} frames)")
        if self.training and self.class_dropout_prob > 0:
            drop, drop_content = self.class_dropout(b, x.device)
            prompt_x = prompt_x * (~drop).to(prompt_x.dtype)[:, None, None]
            style = style * (~drop).to(style.dtype)[:, None]
            cond = cond * (~drop_content).to(cond.dtype)[:, None, None]
            keep = (~drop_content).to(x.dtype)
            f0_keep = keep if f0_keep is None else f0_keep * keep
        c = self.t_embedder(t).unsqueeze(1)  # (B, 1, H)
        frames = torch.cat([x.transpose(1, 2), prompt_x.transpose(1, 2), self.cond_projection(cond)], dim=-1)
        frames = self.cond_x_merge_linear(frames)
        h = torch.cat([c, self.style_in(style).unsqueeze(1), frames], dim=1)
        total = t_len + 2
        freqs = self.transformer.freqs_cis[:total].float()  # bf16 values, float32 math (exact)
        valid = torch.arange(total, device=x.device)[None, :] < (x_lens[:, None] + 2)  # (B, T+2)
        mask = valid[:, None, None, :]
        use_f0 = self.has_f0 and f0 is not None
        if use_f0:
            f0_feats = self.f0_encoder(f0)
            key_valid = valid[:, 2:]
            if f0_keep is None:
                f0_keep = torch.ones(b, dtype=x.dtype, device=x.device)
        for i, layer in enumerate(self.transformer.layers):
            h = layer(h, c, freqs, mask)
            if use_f0:
                h = self.f0_cross_attention[i](h, f0_feats, freqs, key_valid, f0_keep)
        h = self.transformer.final(h, c)
        return self.final_mlp(h[:, 2:]).transpose(1, 2)
