"""The Zipformer stacks used by ZipVoice's text encoder and flow-matching decoder.

:class:`TTSZipformer` maps ``(B, T, in_dim)`` to ``(B, T, out_dim)``: an input
projection, a sequence of Zipformer stacks of one width (stacks with a
downsampling factor > 1 run at a lower frame rate and are merged back through a
learned bypass), and an output projection. With ``use_time_embed`` it is
conditioned on the flow time ``t`` (and, for the distilled decoder, on the
guidance scale).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from zipvoice.models.attention import (
    CompactRelPositionalEncoding,
    NonlinAttention,
    RelPositionMultiheadAttentionWeights,
    SelfAttention,
)
from zipvoice.models.scaling import (
    ActivationDropoutAndLinear,
    BiasNorm,
    BypassModule,
    ScaledLinear,
    SwooshR,
)


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[cos(t·f_k), sin(t·f_k)]``, ``f_k = max_period^(-k/half)``.

    ``timesteps`` is ``(B,)`` and used as is (flow time in [0, 1], or a guidance
    scale); the result is ``(B, dim)``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class FeedforwardModule(nn.Module):
    def __init__(self, embed_dim: int, feedforward_dim: int, dropout: float = 0.0):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, feedforward_dim)
        self.out_proj = ActivationDropoutAndLinear(
            feedforward_dim, embed_dim, activation="SwooshL", dropout_p=dropout, initial_scale=0.1
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.out_proj(self.in_proj(x))


class ConvolutionModule(nn.Module):
    """Gated depthwise convolution over time; padded frames are zeroed before it."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        assert kernel_size % 2 == 1, kernel_size
        self.in_proj = nn.Linear(channels, 2 * channels)
        self.depthwise_conv = nn.Conv1d(
            channels, channels, kernel_size, stride=1, padding=kernel_size // 2, groups=channels, bias=True
        )
        self.out_proj = ActivationDropoutAndLinear(channels, channels, activation="SwooshR", initial_scale=0.05)

    def forward(self, x: Tensor, src_key_padding_mask: Tensor | None = None) -> Tensor:
        x, s = self.in_proj(x).chunk(2, dim=2)
        x = x * s.sigmoid()
        x = x.permute(1, 2, 0)  # (B, C, T)
        if src_key_padding_mask is not None:
            x = x.masked_fill(src_key_padding_mask.unsqueeze(1).expand_as(x), 0.0)
        x = self.depthwise_conv(x)
        x = x.permute(2, 0, 1)
        return self.out_proj(x)


class Zipformer2EncoderLayer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        value_head_dim: int,
        feedforward_dim: int,
        cnn_module_kernel: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.bypass = BypassModule(embed_dim)
        self.bypass_mid = BypassModule(embed_dim)
        self.self_attn_weights = RelPositionMultiheadAttentionWeights(
            embed_dim, pos_dim, num_heads, query_head_dim, pos_head_dim
        )
        self.self_attn1 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.self_attn2 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.feed_forward1 = FeedforwardModule(embed_dim, (feedforward_dim * 3) // 4, dropout)
        self.feed_forward2 = FeedforwardModule(embed_dim, feedforward_dim, dropout)
        self.feed_forward3 = FeedforwardModule(embed_dim, (feedforward_dim * 5) // 4, dropout)
        self.nonlin_attention = NonlinAttention(embed_dim, hidden_channels=3 * embed_dim // 4)
        self.conv_module1 = ConvolutionModule(embed_dim, cnn_module_kernel)
        self.conv_module2 = ConvolutionModule(embed_dim, cnn_module_kernel)
        self.norm = BiasNorm(embed_dim)

    def forward(
        self,
        src: Tensor,
        pos_emb: Tensor,
        time_emb: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        src_orig = src
        attn_weights = self.self_attn_weights(
            src, pos_emb=pos_emb, key_padding_mask=src_key_padding_mask, attn_mask=attn_mask
        )
        if time_emb is not None:
            src = src + time_emb
        src = src + self.feed_forward1(src)
        src = src + self.nonlin_attention(src, attn_weights[0:1])
        src = src + self.self_attn1(src, attn_weights)
        if time_emb is not None:
            src = src + time_emb
        src = src + self.conv_module1(src, src_key_padding_mask=src_key_padding_mask)
        src = src + self.feed_forward2(src)
        src = self.bypass_mid(src_orig, src)
        src = src + self.self_attn2(src, attn_weights)
        if time_emb is not None:
            src = src + time_emb
        src = src + self.conv_module2(src, src_key_padding_mask=src_key_padding_mask)
        src = src + self.feed_forward3(src)
        src = self.norm(src)
        return self.bypass(src_orig, src)


class Zipformer2Encoder(nn.Module):
    """A stack of layers sharing one positional encoding and one time projection."""

    def __init__(
        self,
        encoder_layer: Zipformer2EncoderLayer,
        num_layers: int,
        embed_dim: int,
        time_embed_dim: int,
        pos_dim: int,
    ):
        super().__init__()
        self.encoder_pos = CompactRelPositionalEncoding(pos_dim)
        if time_embed_dim != -1:
            self.time_emb = nn.Sequential(SwooshR(), nn.Linear(time_embed_dim, embed_dim))
        else:
            self.time_emb = None
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])

    def forward(
        self,
        src: Tensor,
        time_emb: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        pos_emb = self.encoder_pos(src)
        if self.time_emb is not None:
            assert time_emb is not None
            time_emb = self.time_emb(time_emb)  # (B, C), broadcast over time
        else:
            time_emb = None
        out = src
        for layer in self.layers:
            out = layer(out, pos_emb, time_emb=time_emb, src_key_padding_mask=src_key_padding_mask, attn_mask=attn_mask)
        return out


class SimpleDownsample(nn.Module):
    """Weighted sum over groups of ``downsample`` frames, weights ``softmax(bias)``.

    The sequence is first right-padded to a multiple of ``downsample`` by
    repeating its last frame.
    """

    def __init__(self, downsample: int):
        super().__init__()
        self.downsample = downsample
        self.bias = nn.Parameter(torch.zeros(downsample))

    def forward(self, src: Tensor) -> Tensor:
        seq_len, batch_size, channels = src.shape
        ds = self.downsample
        d_seq_len = (seq_len + ds - 1) // ds
        pad = d_seq_len * ds - seq_len
        if pad:
            src = torch.cat((src, src[seq_len - 1 :].expand(pad, batch_size, channels)), dim=0)
        src = src.reshape(d_seq_len, ds, batch_size, channels)
        weights = self.bias.softmax(dim=0).unsqueeze(-1).unsqueeze(-1)
        return (src * weights).sum(dim=1)


def simple_upsample(src: Tensor, upsample: int) -> Tensor:
    """Repeat every frame ``upsample`` times along time."""
    seq_len, batch_size, channels = src.shape
    src = src.unsqueeze(1).expand(seq_len, upsample, batch_size, channels)
    return src.reshape(seq_len * upsample, batch_size, channels)


class DownsampledZipformer2Encoder(nn.Module):
    """Runs a stack at 1/``downsample`` of the frame rate and merges it back."""

    def __init__(self, encoder: Zipformer2Encoder, dim: int, downsample: int):
        super().__init__()
        self.downsample_factor = downsample
        self.downsample = SimpleDownsample(downsample)
        self.encoder = encoder
        self.out_combiner = BypassModule(dim)

    def forward(
        self,
        src: Tensor,
        time_emb: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        src_orig = src
        ds = self.downsample_factor
        src = self.downsample(src)
        if attn_mask is not None:
            attn_mask = attn_mask[::ds, ::ds]
        if src_key_padding_mask is not None:
            src_key_padding_mask = src_key_padding_mask[..., ::ds]
        src = self.encoder(src, time_emb=time_emb, src_key_padding_mask=src_key_padding_mask, attn_mask=attn_mask)
        src = simple_upsample(src, ds)[: src_orig.shape[0]]
        return self.out_combiner(src_orig, src)


def _to_tuple(x, n: int | None = None) -> tuple:
    if isinstance(x, int):
        return (x,) * (n or 1)
    return tuple(x)


class TTSZipformer(nn.Module):
    """Zipformer without a convolutional front end, all stacks of one width.

    Args:
      in_dim, out_dim: input/output feature sizes.
      downsampling_factor: per-stack factor; must be U-Net symmetric
        (first and last 1, e.g. ``(1, 2, 4, 2, 1)``).
      num_encoder_layers, cnn_module_kernel: per stack (an int applies to all).
      use_time_embed: condition on ``t`` through a sinusoidal embedding of
        ``time_embed_dim`` and an MLP; each stack adds its own projection.
      use_guidance_scale_embed: also embed the guidance scale (sinusoid of
        ``guidance_scale_embed_dim``, linear without bias to ``time_embed_dim``)
        and add it before the time MLP.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        downsampling_factor=(2, 4),
        num_encoder_layers=4,
        cnn_module_kernel=31,
        encoder_dim: int = 384,
        query_head_dim: int = 24,
        pos_head_dim: int = 4,
        value_head_dim: int = 12,
        num_heads: int = 8,
        feedforward_dim: int = 1536,
        pos_dim: int = 192,
        dropout: float = 0.0,
        use_time_embed: bool = True,
        time_embed_dim: int = -1,
        use_guidance_scale_embed: bool = False,
        guidance_scale_embed_dim: int = 192,
    ):
        super().__init__()
        self.downsampling_factor = _to_tuple(downsampling_factor)
        n = len(self.downsampling_factor)
        self.num_encoder_layers = _to_tuple(num_encoder_layers, n)
        self.cnn_module_kernel = _to_tuple(cnn_module_kernel, n)
        if not (len(self.num_encoder_layers) == len(self.cnn_module_kernel) == n):
            raise ValueError("downsampling_factor, num_encoder_layers and cnn_module_kernel need one entry per stack")
        _check_unet(self.downsampling_factor)
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.encoder_dim = encoder_dim
        self.use_time_embed = use_time_embed
        self.time_embed_dim = time_embed_dim
        self.guidance_scale_embed_dim = guidance_scale_embed_dim

        self.in_proj = nn.Linear(in_dim, encoder_dim)
        self.out_proj = nn.Linear(encoder_dim, out_dim)
        encoders = []
        for i, ds in enumerate(self.downsampling_factor):
            layer = Zipformer2EncoderLayer(
                embed_dim=encoder_dim,
                pos_dim=pos_dim,
                num_heads=num_heads,
                query_head_dim=query_head_dim,
                pos_head_dim=pos_head_dim,
                value_head_dim=value_head_dim,
                feedforward_dim=feedforward_dim,
                cnn_module_kernel=self.cnn_module_kernel[i],
                dropout=dropout,
            )
            encoder = Zipformer2Encoder(
                layer,
                self.num_encoder_layers[i],
                embed_dim=encoder_dim,
                time_embed_dim=time_embed_dim if use_time_embed else -1,
                pos_dim=pos_dim,
            )
            if ds != 1:
                encoder = DownsampledZipformer2Encoder(encoder, dim=encoder_dim, downsample=ds)
            encoders.append(encoder)
        self.encoders = nn.ModuleList(encoders)

        if use_time_embed:
            assert time_embed_dim != -1, "use_time_embed needs time_embed_dim"
            self.time_embed = nn.Sequential(
                nn.Linear(time_embed_dim, time_embed_dim * 2),
                SwooshR(),
                nn.Linear(time_embed_dim * 2, time_embed_dim),
            )
        else:
            self.time_embed = None
        if use_guidance_scale_embed:
            self.guidance_scale_embed = ScaledLinear(
                guidance_scale_embed_dim, time_embed_dim, bias=False, initial_scale=0.1
            )
        else:
            self.guidance_scale_embed = None

    def forward(
        self,
        x: Tensor,
        t: Tensor | None = None,
        padding_mask: Tensor | None = None,
        guidance_scale: Tensor | None = None,
    ) -> Tensor:
        """``x`` (B, T, in_dim), ``t`` (B,), ``padding_mask`` (B, T) True = padding,
        ``guidance_scale`` (B,) → (B, T, out_dim)."""
        x = self.in_proj(x.permute(1, 0, 2))
        if t is not None:
            assert t.dim() == 1 and t.shape[0] == x.shape[1], (t.shape, x.shape)
            time_emb = timestep_embedding(t, self.time_embed_dim)
            if guidance_scale is not None:
                assert self.guidance_scale_embed is not None, "this decoder has no guidance-scale embedding"
                assert guidance_scale.dim() == 1 and guidance_scale.shape[0] == x.shape[1]
                time_emb = time_emb + self.guidance_scale_embed(
                    timestep_embedding(guidance_scale, self.guidance_scale_embed_dim)
                )
            time_emb = self.time_embed(time_emb)
        else:
            time_emb = None
        for module in self.encoders:
            x = module(x, time_emb=time_emb, src_key_padding_mask=padding_mask)
        return self.out_proj(x).permute(1, 0, 2)


def _check_unet(factors: tuple) -> None:
    n = len(factors)
    ok = factors[0] == 1 and factors[-1] == 1 if n > 1 else factors[0] == 1
    for i in range(n // 2):
        ok = ok and factors[i] == factors[n - 1 - i]
    for i in range(1, (n + 1) // 2):
        ok = ok and factors[i] % factors[i - 1] == 0
    if not ok:
        raise ValueError(f"downsampling factors must be U-Net symmetric and start/end at 1, got {list(factors)}")
