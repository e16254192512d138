"""The ACE-Step v1 transformer (module paths match the released ``ace_step_transformer`` keys).

Latents [B, 8, 16, T] are patch-embedded (``proj_in``: Conv2d over the 16 mel bins, GroupNorm,
1x1 conv) to one token per frame. Each of the ``transformer_blocks`` is Sana-style: RMSNorm +
adaLN modulation → linear (ReLU-kernel) self-attention with RoPE → gated residual; softmax
cross-attention on the condition sequence (RoPE on queries by latent position and on keys by
encoder position) → plain residual; RMSNorm + modulation → GLU conv FFN → gated residual.
The condition sequence is ``[speaker token | genre_embedder(text) | lyric_proj(lyric encoder)]``.
``final_layer`` modulates with the embedded timestep and unpatchifies to [B, 8, 16, T].
``projectors`` (REPA heads) only act when ``ssl_hidden_states`` is given (training).
Setting ``gradient_checkpointing = True`` recomputes each block in the backward pass while training.

The cross-attention modules also own ``add_q_proj/add_k_proj/add_v_proj/to_add_out``: they are
part of the released checkpoint but never used by the forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from acestep.models.config import TransformerConfig
from acestep.models.lyric_encoder import LyricEncoder

NORM_EPS = 1e-6


@dataclass
class TransformerOutput:
    sample: torch.Tensor
    proj_losses: list[tuple[str, torch.Tensor]] = field(default_factory=list)


def timestep_features(timestep: torch.Tensor, channels: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of ``timestep`` [B] as [cos | sin], [B, channels]."""
    half = channels // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timestep.device) / half
    args = timestep[:, None].float() * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rotary_tables(length: int, dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [length, dim], frequencies repeated as two halves (``cat(freqs, freqs)``)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim))
    freqs = torch.outer(torch.arange(length, device=device, dtype=torch.int64).float(), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` [B, H, S, D] by the [S, D] tables."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    real, imag = pairs.unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(3)
    return (x.float() * cos[None, None] + rotated.float() * sin[None, None]).to(x.dtype)


class RMSNorm(nn.Module):
    """Parameter-free RMS normalisation."""

    def __init__(self, eps: float = NORM_EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), eps=self.eps)


class SelfAttention(nn.Module):
    """``attn``: linear attention with a ReLU kernel (normaliser from a row of ones), in float32."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, n, _ = x.shape
        dtype = x.dtype
        q = self.to_q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)  # [B, H, N, d]
        k = self.to_k(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        q = apply_rotary(q, *rotary)
        k = apply_rotary(k, *rotary)
        if mask is not None:
            m = mask[:, None, :, None].to(k.dtype)  # [B, 1, N, 1]
            q, k, v = q * m, k * m, v * m
        q, k, v = F.relu(q).float(), F.relu(k).float(), v.float()
        v = F.pad(v, (0, 1), value=1.0)  # [B, H, N, d+1]
        kv = torch.matmul(k.transpose(-1, -2), v)  # [B, H, d, d+1]
        out = torch.matmul(q, kv)  # [B, H, N, d+1]
        out = out[..., :-1] / (out[..., -1:] + 1e-15)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim).to(dtype)
        return self.to_out[1](self.to_out[0](out))


class CrossAttention(nn.Module):
    """``cross_attn``: softmax attention from latent tokens to the condition sequence."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        # present in the released checkpoint, unused by the forward
        self.add_k_proj = nn.Linear(dim, inner)
        self.add_v_proj = nn.Linear(dim, inner)
        self.add_q_proj = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        self.to_add_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                rotary: tuple[torch.Tensor, torch.Tensor],
                rotary_context: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, n, _ = x.shape
        s = context.shape[1]
        q = self.to_q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.to_k(context).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(context).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        q = apply_rotary(q, *rotary)
        k = apply_rotary(k, *rotary_context)
        combined = mask[:, :, None] * context_mask[:, None, :]
        bias = torch.where(combined == 1, 0.0, -torch.inf).to(x.dtype)[:, None]
        # a row without any visible key (a padded latent frame) gives 0, as torch's CPU kernels do
        visible = (combined == 1).any(dim=-1)[:, None, :, None]
        bias = torch.where(visible, bias, torch.zeros_like(bias))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = torch.where(visible, out, torch.zeros_like(out))
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim).to(q.dtype)
        return self.to_out[1](self.to_out[0](out))


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, groups: int = 1, bias: bool = True,
                 act: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=bias)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class GLUMBConv(nn.Module):
    """``ff``: 1x1 conv (SiLU) → depthwise conv k=3 → GLU (SiLU gate) → 1x1 conv, over time."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.inverted_conv = ConvLayer(dim, hidden * 2, 1, act=True)
        self.depth_conv = ConvLayer(hidden * 2, hidden * 2, 3, groups=hidden * 2)
        self.point_conv = ConvLayer(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depth_conv(self.inverted_conv(x.transpose(1, 2)))
        x, gate = x.chunk(2, dim=1)
        return self.point_conv(x * F.silu(gate)).transpose(1, 2)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = RMSNorm()
        self.attn = SelfAttention(dim, heads, head_dim)
        self.cross_attn = CrossAttention(dim, heads, head_dim)
        self.norm2 = RMSNorm()
        self.ff = GLUMBConv(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                rotary, rotary_context, temb: torch.Tensor) -> torch.Tensor:
        mods = self.scale_shift_table[None] + temb.reshape(x.shape[0], 6, -1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods.chunk(6, dim=1)
        h = self.norm1(x) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attn(h, mask, rotary)
        x = x + self.cross_attn(x, mask, context, context_mask, rotary, rotary_context)
        h = self.norm2(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.ff(h)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class PatchEmbed(nn.Module):
    """``proj_in``: [B, C, 16, T] → [B, T, inner], one token per latent frame."""

    def __init__(self, in_channels: int, dim: int, patch_size: tuple[int, int]):
        super().__init__()
        mid = in_channels * 256
        self.early_conv_layers = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=patch_size, stride=patch_size),
            nn.GroupNorm(32, mid, eps=1e-6),
            nn.Conv2d(mid, dim, kernel_size=1),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.early_conv_layers(latent).flatten(2).transpose(1, 2)


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch_size: tuple[int, int], out_channels: int):
        super().__init__()
        self.norm_final = RMSNorm()
        self.linear = nn.Linear(dim, patch_size[0] * patch_size[1] * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim ** 0.5)
        self.patch_size = patch_size
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, embedded_timestep: torch.Tensor, width: int) -> torch.Tensor:
        shift, scale = (self.scale_shift_table[None] + embedded_timestep[:, None]).chunk(2, dim=1)
        x = self.linear(self.norm_final(x) * (1 + scale) + shift)
        b, n, _ = x.shape
        ph, pw = self.patch_size
        x = x.reshape(b, 1, n, ph, pw, self.out_channels)
        out = torch.einsum("nhwpqc->nchpwq", x).reshape(b, self.out_channels, ph, n * pw)
        if width > n * pw:
            out = F.pad(out, (0, width - n * pw))
        return out[..., :width]


def restandardise(control: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``control`` moved to the per-item mean/std of ``reference`` (stats over tokens and channels)."""
    mean_r, std_r = reference.mean(dim=(1, 2), keepdim=True), reference.std(dim=(1, 2), keepdim=True)
    mean_c, std_c = control.mean(dim=(1, 2), keepdim=True), control.std(dim=(1, 2), keepdim=True)
    return (control - mean_c) * (std_r / (std_c + 1e-12)) + mean_r


def repa_loss(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) between ``target`` [T_i, d] and ``estimate`` [T, d] resampled to T_i frames."""
    est = F.interpolate(estimate.t()[None], size=target.shape[0], mode="linear", align_corners=False)[0].t()
    return (1 - F.cosine_similarity(F.normalize(target, dim=-1), F.normalize(est, dim=-1), dim=-1)).mean()


class ACEStepTransformer(nn.Module):
    """The ACE-Step v1 diffusion transformer; see the module docstring."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        dim = config.inner_dim
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(dim, config.num_attention_heads, config.attention_head_dim, config.mlp_ratio)
            for _ in range(config.num_layers))
        self.timestep_embedder = TimestepEmbedding(256, dim)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.speaker_embedder = nn.Linear(config.speaker_embedding_dim, dim)
        self.genre_embedder = nn.Linear(config.text_embedding_dim, dim)
        self.lyric_embs = nn.Embedding(config.lyric_encoder_vocab_size, config.lyric_hidden_size)
        self.lyric_encoder = LyricEncoder(config.lyric_hidden_size, config.lyric_encoder)
        self.lyric_proj = nn.Linear(config.lyric_hidden_size, dim)
        self.projectors = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, 2 * dim), nn.SiLU(),
                          nn.Linear(2 * dim, ssl_dim))
            for ssl_dim in config.ssl_latent_dims)
        self.proj_in = PatchEmbed(config.in_channels, dim, config.patch_size)
        self.final_layer = FinalLayer(dim, config.patch_size, config.out_channels)
        self.gradient_checkpointing = False

    def encode(self, encoder_text_hidden_states: torch.Tensor, text_attention_mask: torch.Tensor,
               speaker_embeds: torch.Tensor, lyric_token_idx: torch.Tensor,
               lyric_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition sequence [B, 1+L+S, inner] and its float mask [B, 1+L+S]."""
        bs = encoder_text_hidden_states.shape[0]
        speaker = self.speaker_embedder(speaker_embeds).unsqueeze(1)
        text = self.genre_embedder(encoder_text_hidden_states)
        lyrics = self.lyric_proj(self.lyric_encoder(self.lyric_embs(lyric_token_idx), lyric_mask))
        states = torch.cat([speaker, text, lyrics], dim=1)
        ones = torch.ones(bs, 1, device=speaker.device)
        mask = torch.cat([ones, text_attention_mask.float(), lyric_mask.float()], dim=1)
        return states, mask

    def decode(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
               encoder_hidden_states: torch.Tensor, encoder_hidden_mask: torch.Tensor, timestep: torch.Tensor,
               ssl_hidden_states=None, block_controlnet_hidden_states: torch.Tensor | None = None,
               controlnet_scale: float = 1.0, return_intermediates: bool = False,
               block_residuals: dict[int, torch.Tensor] | None = None):
        """The denoiser over a prepared condition sequence (see :meth:`encode`).

        ``block_residuals`` maps a block index to a [B, T, inner] tensor added to that block's input
        (a ControlNet's per-layer signal; scale it before passing it). Without it the forward is
        exactly the released model's.
        """
        width = hidden_states.shape[-1]
        embedded_timestep = self.timestep_embedder(timestep_features(timestep).to(hidden_states.dtype))
        temb = self.t_block(embedded_timestep)
        x = self.proj_in(hidden_states)
        inter = {"embedded_timestep": embedded_timestep, "temb": temb, "proj_in_out": x}
        if block_controlnet_hidden_states is not None:
            x = x + restandardise(block_controlnet_hidden_states, x) * controlnet_scale
        head_dim = self.config.attention_head_dim
        rotary = [t.to(x.dtype) for t in rotary_tables(x.shape[1], head_dim, self.config.rope_theta, x.device)]
        rotary_context = [t.to(x.dtype) for t in rotary_tables(encoder_hidden_states.shape[1], head_dim,
                                                                 self.config.rope_theta, x.device)]
        taps: list[torch.Tensor] = []
        for index, block in enumerate(self.transformer_blocks):
            if block_residuals is not None and index in block_residuals:
                x = x + block_residuals[index].to(x.dtype)
            args = (x, attention_mask, encoder_hidden_states, encoder_hidden_mask, rotary, rotary_context, temb)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
            else:
                x = block(*args)
            inter[f"block{index}_out"] = x
            taps.extend(x for depth in self.config.ssl_encoder_depths if depth == index)
        proj_losses = []
        if taps and ssl_hidden_states:
            for tap, projector, targets, name in zip(taps, self.projectors, ssl_hidden_states, self.config.ssl_names):
                if targets is None:
                    continue
                estimate = projector(tap)
                loss = sum(repa_loss(z, z_hat) for z, z_hat in zip(targets, estimate))
                proj_losses.append((name, loss / tap.shape[0]))
        sample = self.final_layer(x, embedded_timestep, width)
        out = TransformerOutput(sample=sample, proj_losses=proj_losses)
        return (out, inter) if return_intermediates else out

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                encoder_text_hidden_states: torch.Tensor, text_attention_mask: torch.Tensor,
                speaker_embeds: torch.Tensor, lyric_token_idx: torch.Tensor, lyric_mask: torch.Tensor,
                timestep: torch.Tensor, ssl_hidden_states=None,
                block_controlnet_hidden_states: torch.Tensor | None = None, controlnet_scale: float = 1.0,
                return_dict: bool = True, block_residuals: dict[int, torch.Tensor] | None = None):
        context, context_mask = self.encode(encoder_text_hidden_states, text_attention_mask, speaker_embeds,
                                            lyric_token_idx, lyric_mask)
        out = self.decode(hidden_states, attention_mask, context, context_mask, timestep, ssl_hidden_states,
                          block_controlnet_hidden_states, controlnet_scale, block_residuals=block_residuals)
        return out if return_dict else (out.sample, out.proj_losses)
