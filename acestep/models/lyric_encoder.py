"""The lyric Conformer of ACE-Step v1 (module paths match the released ``lyric_encoder.*`` keys).

Input layer ``embed.out`` = Linear + LayerNorm(eps 1e-5) + dropout, then the input is scaled by
sqrt(d) and paired with ESPnet-style relative position embeddings (both signs of the offset, a
table of ``2*max_len - 1`` rows). Each block is pre-norm: relative-position multi-head
self-attention (``linear_q/k/v/out/pos``, learned ``pos_bias_u/v``) and a swish feed-forward
(``w_1``/``w_2``); no macaron FFN and no convolution module. ``after_norm`` closes the stack.
Attention is full (no chunking) with a key padding mask.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from acestep.models.config import LyricEncoderConfig

LAYER_NORM_EPS = 1e-12
MAX_LEN = 5000


def relative_position_table(d_model: int, max_len: int = MAX_LEN) -> torch.Tensor:
    """Sinusoidal table for offsets ``max_len-1 .. -(max_len-1)``: [1, 2*max_len-1, d_model]."""
    position = torch.arange(0, max_len, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    positive = torch.zeros(max_len, d_model)
    negative = torch.zeros(max_len, d_model)
    positive[:, 0::2] = torch.sin(position * div_term)
    positive[:, 1::2] = torch.cos(position * div_term)
    negative[:, 0::2] = torch.sin(-1 * position * div_term)
    negative[:, 1::2] = torch.cos(-1 * position * div_term)
    positive = torch.flip(positive, [0]).unsqueeze(0)
    negative = negative[1:].unsqueeze(0)
    return torch.cat([positive, negative], dim=1)


class RelPositionalEncoding(nn.Module):
    """Scales the input by sqrt(d) and returns the relative embeddings for its length."""

    def __init__(self, d_model: int, dropout: float, max_len: int = MAX_LEN):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        self.pe: torch.Tensor | None = None  # a plain attribute: not part of the state dict

    def table(self, size: int, device: torch.device) -> torch.Tensor:
        max_len = max(self.max_len, size)
        if self.pe is None or self.pe.size(1) < 2 * max_len - 1 or self.pe.device != device:
            self.pe = relative_position_table(self.d_model, max_len).to(device)
        centre = self.pe.size(1) // 2
        return self.pe[:, centre - size + 1: centre + size]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos_emb = self.table(x.size(1), x.device).to(x.dtype)
        return self.dropout(x * self.xscale), self.dropout(pos_emb)


class LinearInput(nn.Module):
    def __init__(self, idim: int, odim: int, dropout: float, pos_dropout: float):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=1e-5), nn.Dropout(dropout))
        self.pos_enc = RelPositionalEncoding(odim, pos_dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pos_enc(self.out(x))


class RelPositionAttention(nn.Module):
    """Multi-head self-attention with relative positions (content + position terms, relative shift)."""

    def __init__(self, heads: int, dim: int, dropout: float = 0.0):
        super().__init__()
        self.h = heads
        self.d_k = dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    @staticmethod
    def rel_shift(x: torch.Tensor) -> torch.Tensor:
        """[B, H, T, 2T-1] scores against offsets → [B, H, T, T] scores against key positions."""
        b, h, t, p = x.shape
        padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, p + 1, t)
        return padded[:, :, 1:].reshape(b, h, t, p)[:, :, :, : p // 2 + 1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        if bd.shape != ac.shape:
            bd = self.rel_shift(bd)
        scores = (ac + bd) / math.sqrt(self.d_k)
        blocked = ~mask.unsqueeze(1)  # [B, 1, 1, T]
        scores = scores.masked_fill(blocked, -float("inf"))
        attn = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
        out = torch.matmul(self.dropout(attn), v).transpose(1, 2).reshape(b, t, self.h * self.d_k)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(nn.functional.silu(self.w_1(x))))


class ConformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.self_attn = RelPositionAttention(heads, dim)
        self.feed_forward = FeedForward(dim, hidden, dropout)
        self.norm_ff = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_mha = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.norm_mha(x), mask, pos_emb))
        return x + self.dropout(self.feed_forward(self.norm_ff(x)))


class LyricEncoder(nn.Module):
    """``lyric_encoder``: token embeddings [B, S, input_size] + mask [B, S] → [B, S, output_size]."""

    def __init__(self, input_size: int, config: LyricEncoderConfig, dropout: float = 0.1,
                 pos_dropout: float = 0.1):
        super().__init__()
        dim = config.output_size
        self.embed = LinearInput(input_size, dim, dropout, pos_dropout)
        self.after_norm = nn.LayerNorm(dim, eps=1e-5)
        self.encoders = nn.ModuleList(
            ConformerLayer(dim, config.attention_heads, config.linear_units, dropout)
            for _ in range(config.num_blocks))

    def forward(self, xs: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        mask = pad_mask.to(torch.bool).unsqueeze(1)  # [B, 1, S]
        # an item without any valid token attends everywhere (its output is masked downstream)
        empty = mask.sum(dim=-1, keepdim=True) == 0
        mask = mask | empty
        xs, pos_emb = self.embed(xs)
        for layer in self.encoders:
            xs = layer(xs, mask, pos_emb)
        return self.after_norm(xs)
