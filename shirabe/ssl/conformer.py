"""The MuQ conformer encoder (wav2vec2-conformer layout, rotary attention), inference only.

Parameter names follow the released state dict (``layers.N.ffn1.intermediate_dense``, ...,
``embed_positions.inv_freq``, ``layer_norm``). Each layer, on (B, T, D):

1. ``x += 0.5 · FFN1(LN(x))`` with FFN = Linear(D→I) → swish → Linear(I→D);
2. ``x += MHSA(LN(x))``: the rotary embedding (rotate-half, cos/sin of positions 0..T-1 times
   ``inv_freq``, the angles repeated for both halves of a head) is applied per head to the
   LayerNorm output *before* the query and key projections; the value projection sees the
   unrotated input; softmax(q·kᵀ/√head_dim) over all frames;
3. ``x += Conv(x)`` = pointwise_conv2(swish(BN(depthwise_conv(GLU(pointwise_conv1(LN(x)))))))
   with "same" padding of the depthwise kernel and the GLU over channels;
4. ``x += 0.5 · FFN2(LN(x))``, then ``x = final_layer_norm(x)``.

The per-layer LayerNorms use eps 1e-5; the encoder's closing ``layer_norm`` uses the config's
``layer_norm_eps``. There is no dropout (eval semantics only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shirabe.ssl.muq_config import MuQConfig

__all__ = ["ConformerEncoder", "ConformerLayer", "RotaryEmbedding", "rotary_cos_sin", "rotary_inv_freq"]


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, hidden)
        self.output_dense = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.silu(self.intermediate_dense(x)))


class RotaryEmbedding(nn.Module):
    """Rotary angles for ``head_dim``-wide heads with ``inv_freq`` = 1 / base^(2i / head_dim).

    ``inv_freq`` is a persistent buffer because the released checkpoints hold it (the loader
    checks it against the config). The angles are always computed from a float32
    ``inv_freq`` built from the config, so casting the model to float16/bfloat16 (which also
    casts the buffer) does not coarsen the positions.
    """

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.register_buffer("inv_freq", rotary_inv_freq(head_dim, base), persistent=True)

    def forward(self, length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = rotary_inv_freq(self.head_dim, self.base, device=self.inv_freq.device)
        return rotary_cos_sin(inv_freq, length, dtype)


def rotary_inv_freq(head_dim: int, base: float, device: torch.device | str | None = None) -> torch.Tensor:
    """1 / base^(2i / head_dim) for i < head_dim / 2, float32."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (base ** exponents)


def rotary_cos_sin(inv_freq: torch.Tensor, length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (T, 1, head_dim) for positions 0..T-1 (computed in float32)."""
    positions = torch.arange(length, device=inv_freq.device, dtype=torch.float32)
    freqs = positions[:, None] * inv_freq.float()[None, :]
    angles = torch.cat([freqs, freqs], dim=-1)[:, None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of (B, T, heads, head_dim) with rotate-half."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        rotated = _rotate(x.view(batch, length, self.num_heads, self.head_dim), cos, sin).reshape(batch, length, dim)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.linear_q(rotated)), heads(self.linear_k(rotated)), heads(self.linear_v(x))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.linear_out(out.transpose(1, 2).reshape(batch, length, dim))


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim)
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim,
                                        bias=False)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pointwise_conv1(self.layer_norm(x).transpose(1, 2))
        h = F.glu(h, dim=1)
        h = F.silu(self.batch_norm(self.depthwise_conv(h)))
        return self.pointwise_conv2(h).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, config: MuQConfig):
        super().__init__()
        dim = config.encoder_dim
        self.ffn1_layer_norm = nn.LayerNorm(dim)
        self.ffn1 = FeedForward(dim, config.intermediate_size)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn = SelfAttention(dim, config.num_attention_heads)
        self.conv_module = ConvModule(dim, config.conv_depthwise_kernel_size)
        self.ffn2_layer_norm = nn.LayerNorm(dim)
        self.ffn2 = FeedForward(dim, config.intermediate_size)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_layer_norm(x))
        x = x + self.self_attn(self.self_attn_layer_norm(x), cos, sin)
        x = x + self.conv_module(x)
        x = x + 0.5 * self.ffn2(self.ffn2_layer_norm(x))
        return self.final_layer_norm(x)


class ConformerEncoder(nn.Module):
    """``encoder_depth`` conformer layers and a closing LayerNorm."""

    def __init__(self, config: MuQConfig):
        super().__init__()
        self.embed_positions = RotaryEmbedding(config.head_dim, config.rotary_embedding_base)
        self.layers = nn.ModuleList([ConformerLayer(config) for _ in range(config.encoder_depth)])
        self.layer_norm = nn.LayerNorm(config.encoder_dim, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, T, D) → the hidden states: the input, the outputs of layers 1..depth-1 and
        ``layer_norm`` of the last layer's output (depth + 1 tensors)."""
        cos, sin = self.embed_positions(x.shape[1], x.dtype)
        states = [x]
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin)
            states.append(self.layer_norm(x) if i == len(self.layers) - 1 else x)
        return tuple(states)
