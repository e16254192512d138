"""Zipformer attention: relative positions, shared attention weights, and their users.

Tensors are time-major, ``(T, B, C)``. One layer computes its attention weights
once (:class:`RelPositionMultiheadAttentionWeights`) and three modules reuse them:
two :class:`SelfAttention` blocks and the :class:`NonlinAttention` block, which
uses head 0 only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from zipvoice.models.scaling import ScaledLinear


class CompactRelPositionalEncoding(nn.Module):
    """Relative positional encoding with logarithmically compressed offsets.

    For offsets ``x`` in ``[-(T-1), T-1]`` with ``L = sqrt(dim)``::

        x_c = L · sign(x) · (ln(|x| + L) - ln L)
        a   = atan(x_c / (length_factor · dim / 2π))
        pe[:, 0::2] = cos(a · k),  pe[:, 1::2] = sin(a · k),  k = 1 .. dim/2
        pe[:, -1] = 1

    It has no parameters; :meth:`forward` returns ``(1, 2T-1, dim)`` for the
    offsets in increasing order.
    """

    def __init__(self, embed_dim: int, length_factor: float = 1.0):
        super().__init__()
        assert embed_dim % 2 == 0, embed_dim
        self.embed_dim = embed_dim
        self.length_factor = length_factor

    def forward(self, x: Tensor) -> Tensor:
        T = x.size(0)
        offsets = torch.arange(-(T - 1), T, device=x.device).to(torch.float32).unsqueeze(1)
        freqs = 1 + torch.arange(self.embed_dim // 2, device=x.device)
        compression = self.embed_dim**0.5
        x_c = compression * offsets.sign() * ((offsets.abs() + compression).log() - math.log(compression))
        length_scale = self.length_factor * self.embed_dim / (2.0 * math.pi)
        angle = (x_c / length_scale).atan()
        pe = torch.zeros(offsets.shape[0], self.embed_dim, device=x.device)
        pe[:, 0::2] = (angle * freqs).cos()
        pe[:, 1::2] = (angle * freqs).sin()
        pe[:, -1] = 1.0
        return pe.to(dtype=x.dtype).unsqueeze(0)


class RelPositionMultiheadAttentionWeights(nn.Module):
    """Attention weights ``(H, B, T, T)`` from content and relative-position scores.

    ``in_proj`` yields per head a query and key (``query_head_dim`` each) and a
    position query (``pos_head_dim``). Scores are ``q·k`` (no 1/sqrt(d) factor;
    the initialisation absorbs it) plus ``p·linear_pos(pos_emb)`` at offset
    ``j - i``. Padded keys get -1000 before the softmax.
    """

    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.query_head_dim = query_head_dim
        self.pos_head_dim = pos_head_dim
        self.dropout = dropout
        in_proj_dim = (2 * query_head_dim + pos_head_dim) * num_heads
        self.in_proj = ScaledLinear(embed_dim, in_proj_dim, bias=True, initial_scale=query_head_dim**-0.25)
        self.linear_pos = ScaledLinear(pos_dim, num_heads * pos_head_dim, bias=False, initial_scale=0.05)

    def forward(
        self,
        x: Tensor,
        pos_emb: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        x = self.in_proj(x)
        H, dq, dp = self.num_heads, self.query_head_dim, self.pos_head_dim
        seq_len, batch_size, _ = x.shape
        q = x[..., : dq * H].reshape(seq_len, batch_size, H, dq).permute(2, 1, 0, 3)
        k = x[..., dq * H : 2 * dq * H].reshape(seq_len, batch_size, H, dq).permute(2, 1, 3, 0)
        p = x[..., 2 * dq * H :].reshape(seq_len, batch_size, H, dp).permute(2, 1, 0, 3)

        attn_scores = torch.matmul(q, k)  # (H, B, T, T)

        pos = self.linear_pos(pos_emb)  # (1, 2T-1, H*dp)
        n_rel = 2 * seq_len - 1
        pos = pos.reshape(-1, n_rel, H, dp).permute(2, 0, 3, 1)  # (H, 1, dp, 2T-1)
        pos_scores = self._rel_shift(torch.matmul(p, pos))  # (H, B, T, 2T-1) -> (H, B, T, T)
        attn_scores = attn_scores + pos_scores

        if attn_mask is not None:
            attn_scores = attn_scores.masked_fill(attn_mask, -1000.0)
        if key_padding_mask is not None:
            attn_scores = attn_scores.masked_fill(key_padding_mask.unsqueeze(1), -1000.0)
        attn_weights = attn_scores.softmax(dim=-1)
        if self.training and self.dropout > 0:
            attn_weights = nn.functional.dropout(attn_weights, self.dropout, training=True)
        return attn_weights

    @staticmethod
    def _rel_shift(pos_scores: Tensor) -> Tensor:
        """``(H, B, T, 2T-1)`` scores by relative index → ``(H, B, T, T)`` by key position.

        Element (i, j) of the result reads relative index T-1-i+j, i.e. offset j-i.
        """
        pos_scores = pos_scores.contiguous()
        num_heads, batch_size, seq_len, _ = pos_scores.shape
        s = pos_scores.stride()
        return pos_scores.as_strided(
            (num_heads, batch_size, seq_len, seq_len),
            (s[0], s[1], s[2] - s[3], s[3]),
            storage_offset=pos_scores.storage_offset() + s[3] * (seq_len - 1),
        )


class SelfAttention(nn.Module):
    """Applies given attention weights to per-head values (``value_head_dim`` each)."""

    def __init__(self, embed_dim: int, num_heads: int, value_head_dim: int):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, num_heads * value_head_dim, bias=True)
        self.out_proj = ScaledLinear(num_heads * value_head_dim, embed_dim, bias=True, initial_scale=0.05)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        seq_len, batch_size, _ = x.shape
        num_heads = attn_weights.shape[0]
        x = self.in_proj(x)
        x = x.reshape(seq_len, batch_size, num_heads, -1).permute(2, 1, 0, 3)  # (H, B, T, dv)
        x = torch.matmul(attn_weights, x)
        x = x.permute(2, 1, 0, 3).reshape(seq_len, batch_size, -1)
        return self.out_proj(x)


class NonlinAttention(nn.Module):
    """``out_proj(attn · (x · tanh(s)) · y)`` with s, x, y from one projection.

    Called with one head's weights, ``(1, B, T, T)``.
    """

    def __init__(self, channels: int, hidden_channels: int):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.in_proj = nn.Linear(channels, hidden_channels * 3, bias=True)
        self.out_proj = ScaledLinear(hidden_channels, channels, bias=True, initial_scale=0.05)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        x = self.in_proj(x)
        seq_len, batch_size, _ = x.shape
        s, x, y = x.chunk(3, dim=2)
        x = x * s.tanh()
        num_heads = attn_weights.shape[0]
        x = x.reshape(seq_len, batch_size, num_heads, -1).permute(2, 1, 0, 3)
        x = torch.matmul(attn_weights, x)
        x = x.permute(2, 1, 0, 3).reshape(seq_len, batch_size, -1)
        x = x * y
        return self.out_proj(x)
