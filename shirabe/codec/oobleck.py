"""The Oobleck encoder/decoder network (stable-audio VAE), with its parameter names.

Layers, as the released state_dicts name them (``encoder.layers.*``, ``decoder.layers.*``):

- :class:`Snake` (``alpha``, ``beta``, log scale): ``x + sin²(e^alpha·x) / (e^beta + 1e-9)`` per channel;
- :class:`WNConv1d` / :class:`WNConvTranspose1d`: weight-normalised convolutions holding
  ``weight_g`` and ``weight_v`` (weight = g·v/‖v‖, the norm over every dimension but the first;
  for the transposed conv the weight is (in, out, k), so ``weight_g`` is (in, 1, 1));
- :class:`ResidualUnit` (``layers`` = Snake, conv k7 dilated, Snake, conv k1; plus the input);
- :class:`EncoderBlock` (three residual units with dilations 1, 3, 9, Snake, strided conv k=2s:
  the length becomes floor(L/s) for even s);
- :class:`DecoderBlock` (Snake, transposed conv k=2s stride s: the length becomes L·s for even s,
  three residual units);
- :class:`OobleckEncoder` / :class:`OobleckDecoder`: the ``c_mults`` list is prefixed with 1, so
  ``len(strides)`` blocks sit between an input conv (k7) and Snake + an output conv (k3 in the
  encoder, k7 without bias in the decoder).

``use_snake: false`` uses ELU (no parameters) in place of Snake.

On top of them, :func:`vae_bottleneck` (mean/scale split, softplus std, KL) and
:class:`OobleckVAE`, the autoencoder with the encode/decode API (resampling, mono to
stereo, posterior mean or sample, overlapped chunks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shirabe.audio.resample import resample
from shirabe.codec.chunking import chunk_plan
from shirabe.codec.config import OobleckDecoderConfig, OobleckEncoderConfig, VAEConfig

SNAKE_EPS = 1e-9
STD_FLOOR = 1e-4
RESIDUAL_DILATIONS = (1, 3, 9)


class Snake(nn.Module):
    """Per-channel periodic activation with log-scale ``alpha`` (frequency) and ``beta`` (magnitude)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha)[None, :, None]
        beta = torch.exp(self.beta)[None, :, None]
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(alpha * x).pow(2)


def _activation(channels: int, use_snake: bool) -> nn.Module:
    return Snake(channels) if use_snake else nn.ELU()


def weight_from_norm(weight_v: torch.Tensor, weight_g: torch.Tensor) -> torch.Tensor:
    """``g · v / ‖v‖`` with the norm taken over every dimension of ``v`` but the first."""
    norm = weight_v.pow(2).sum(dim=tuple(range(1, weight_v.dim())), keepdim=True).sqrt()
    return weight_v * (weight_g / norm)


class _WeightNormed(nn.Module):
    """Holds ``weight_g`` (shape[0], 1, 1), ``weight_v`` and an optional ``bias``; random init
    like torch's convolutions, with ``weight_g`` = ‖weight_v‖ so the weight equals ``weight_v``."""

    def __init__(self, shape: tuple[int, int, int], bias_size: int, bias: bool):
        super().__init__()
        # registration order bias, weight_g, weight_v: the key order of the released checkpoints
        self.bias = nn.Parameter(torch.empty(bias_size)) if bias else None
        self.weight_g = nn.Parameter(torch.empty(shape[0], 1, 1))
        self.weight_v = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.weight_v.is_meta:
            return
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))
        self.weight_g.copy_(self.weight_v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt())
        if self.bias is not None:
            fan_in = self.weight_v.shape[1] * self.weight_v.shape[2]
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def weight(self) -> torch.Tensor:
        return weight_from_norm(self.weight_v, self.weight_g)


class WNConv1d(_WeightNormed):
    """Weight-normalised ``Conv1d``; weight (out, in, k), ``weight_g`` (out, 1, 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        super().__init__((out_channels, in_channels, kernel_size), out_channels, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNormed):
    """Weight-normalised ``ConvTranspose1d``; weight (in, out, k), ``weight_g`` (in, 1, 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        self.stride, self.padding = stride, padding
        super().__init__((in_channels, out_channels, kernel_size), out_channels, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)


class ResidualUnit(nn.Module):
    """``x + conv1(act(conv7_dilated(act(x))))``; the length is unchanged."""

    def __init__(self, channels: int, dilation: int, use_snake: bool):
        super().__init__()
        self.layers = nn.Sequential(
            _activation(channels, use_snake),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            _activation(channels, use_snake),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class EncoderBlock(nn.Module):
    """Residual units at ``in_channels``, then a strided conv to ``out_channels`` (down by ``stride``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool):
        super().__init__()
        self.layers = nn.Sequential(
            *(ResidualUnit(in_channels, d, use_snake) for d in RESIDUAL_DILATIONS),
            _activation(in_channels, use_snake),
            WNConv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DecoderBlock(nn.Module):
    """A transposed conv from ``in_channels`` to ``out_channels`` (up by ``stride``), then residual units."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool):
        super().__init__()
        self.layers = nn.Sequential(
            _activation(in_channels, use_snake),
            WNConvTranspose1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride,
                              padding=math.ceil(stride / 2)),
            *(ResidualUnit(out_channels, d, use_snake) for d in RESIDUAL_DILATIONS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OobleckEncoder(nn.Module):
    """Audio (B, in_channels, N) -> (B, latent_dim, frames); see :meth:`output_length`."""

    def __init__(self, config: OobleckEncoderConfig):
        super().__init__()
        self.config = config
        ch, mults, snake = config.channels, (1, *config.c_mults), config.use_snake
        self.layers = nn.Sequential(
            WNConv1d(config.in_channels, mults[0] * ch, kernel_size=7, padding=3),
            *(EncoderBlock(mults[i] * ch, mults[i + 1] * ch, s, snake) for i, s in enumerate(config.strides)),
            _activation(mults[-1] * ch, snake),
            WNConv1d(mults[-1] * ch, config.latent_dim, kernel_size=3, padding=1),
        )

    def output_length(self, num_samples: int) -> int:
        """Frames produced from ``num_samples`` samples (floor(N / ratio) when every stride is even)."""
        length = num_samples
        for s in self.config.strides:
            length = (length + 2 * math.ceil(s / 2) - 2 * s) // s + 1
        return max(length, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OobleckDecoder(nn.Module):
    """Latents (B, latent_dim, T) -> audio (B, out_channels, samples); see :meth:`output_length`."""

    def __init__(self, config: OobleckDecoderConfig):
        super().__init__()
        self.config = config
        ch, mults, snake = config.channels, (1, *config.c_mults), config.use_snake
        depth = len(mults)
        self.layers = nn.Sequential(
            WNConv1d(config.latent_dim, mults[-1] * ch, kernel_size=7, padding=3),
            *(DecoderBlock(mults[i] * ch, mults[i - 1] * ch, config.strides[i - 1], snake)
              for i in range(depth - 1, 0, -1)),
            _activation(mults[0] * ch, snake),
            WNConv1d(mults[0] * ch, config.out_channels, kernel_size=7, padding=3, bias=False),
            nn.Tanh() if config.final_tanh else nn.Identity(),
        )

    def output_length(self, num_frames: int) -> int:
        """Samples produced from ``num_frames`` frames (T · ratio when every stride is even)."""
        length = num_frames
        for s in reversed(self.config.strides):
            length = (length - 1) * s - 2 * math.ceil(s / 2) + 2 * s
        return length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ---------------------------------------------------------------------------
# The ``vae`` bottleneck and the autoencoder


@dataclass
class VAEEncoding:
    """What :meth:`OobleckVAE.encode_with_info` returns; every tensor is (B, D, T) but ``kl`` (a scalar).

    ``latents`` is ``mean`` unless a posterior sample was asked for (then ``mean + noise·std``).
    """

    latents: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor
    std: torch.Tensor
    kl: torch.Tensor

    @property
    def pre_bottleneck(self) -> torch.Tensor:
        """The encoder output (B, 2D, T): mean channels, then scale channels."""
        return torch.cat([self.mean, self.scale], dim=1)


def vae_bottleneck(pre_bottleneck: torch.Tensor, noise: torch.Tensor | None = None) -> VAEEncoding:
    """Split (B, 2D, T) into mean and scale; std = softplus(scale) + 1e-4.

    ``latents`` = mean + noise·std when ``noise`` (B, D, T) is given, else the mean.
    ``kl`` = sum over channels of (mean² + std² - log std² - 1), averaged over batch and time
    (0 when there are no frames).
    """
    mean, scale = pre_bottleneck.chunk(2, dim=1)
    std = F.softplus(scale) + STD_FLOOR
    var = std * std
    if mean.shape[-1] > 0:
        kl = (mean * mean + var - torch.log(var) - 1).sum(dim=1).mean()
    else:
        kl = mean.new_zeros(())
    latents = mean if noise is None else mean + noise * std
    return VAEEncoding(latents=latents, mean=mean, scale=scale, std=std, kl=kl)


class OobleckVAE(nn.Module):
    """Stable-audio Oobleck autoencoder with the ``vae`` bottleneck (SongBloom's music latent codec).

    State-dict keys are ``encoder.layers.*`` and ``decoder.layers.*``, as in the released
    ``{'state_dict': ...}`` checkpoints. :meth:`encode` maps audio at any rate to latents
    (B, latent_dim, T) at ``sample_rate / downsampling_ratio`` frames per second; :meth:`decode`
    maps latents back to (B, audio_channels, T·downsampling_ratio) at ``sample_rate``.
    Both can run in overlapped chunks, so memory does not grow with the length beyond the output.
    """

    MIN_ENCODE_SAMPLES = 2048
    DECODE_CHUNK_SIZE = 128
    DECODE_OVERLAP = 32

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = OobleckEncoder(config.encoder)
        self.decoder = OobleckDecoder(config.decoder)

    # -- properties ---------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def audio_channels(self) -> int:
        return self.config.audio_channels

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def downsampling_ratio(self) -> int:
        return self.config.downsampling_ratio

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    # -- loading ------------------------------------------------------------

    @classmethod
    def from_files(cls, config_path: str | Path, ckpt_path: str | Path, device: str | torch.device | None = None,
                   prefix: str = "", trust: bool = False) -> OobleckVAE:
        """:func:`shirabe.codec.loading.load_vae`: the json config plus a checkpoint, loaded strictly."""
        from shirabe.codec.loading import load_vae

        return load_vae(config_path, ckpt_path, device=device, prefix=prefix, trust=trust)

    # -- encode -------------------------------------------------------------

    def prepare_audio(self, wav: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
        """(B, N) or (B, C, N) audio at ``sample_rate`` -> (B, audio_channels, N') at the VAE rate.

        Mono is repeated to every channel; other rates are resampled (soxr, high quality).
        """
        wav = torch.as_tensor(wav)
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        if wav.dim() != 3:
            raise ValueError(f"expected audio of shape (B, N) or (B, C, N), got {tuple(wav.shape)}")
        if wav.shape[1] not in (1, self.audio_channels):
            raise ValueError(f"expected mono or {self.audio_channels}-channel audio, got {wav.shape[1]} channels")
        if int(sample_rate) != self.sample_rate:
            b, c, n = wav.shape
            flat = wav.detach().to("cpu", torch.float32).reshape(b * c, n).T.numpy()
            wav = torch.from_numpy(np.ascontiguousarray(resample(flat, int(sample_rate), self.sample_rate).T))
            wav = wav.reshape(b, c, -1)
        param = self._param()
        wav = wav.to(device=param.device, dtype=param.dtype)
        return wav.expand(-1, self.audio_channels, -1) if wav.shape[1] == 1 else wav

    def num_frames(self, num_samples: int) -> int:
        """Latent frames :meth:`encode` returns for ``num_samples`` samples at the VAE rate."""
        if num_samples < self.MIN_ENCODE_SAMPLES:
            return 0
        return self.encoder.output_length(num_samples)

    @torch.no_grad()
    def encode_with_info(
        self,
        wav: torch.Tensor | np.ndarray,
        sample_rate: int,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        chunked: bool = False,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
    ) -> VAEEncoding:
        """Like :meth:`encode`, also returning the posterior mean, scale, std and KL."""
        if not sample and (noise is not None or generator is not None):
            raise ValueError("noise or generator given, but sample=False (the posterior mean needs neither)")
        audio = self.prepare_audio(wav, sample_rate)
        batch, n = audio.shape[0], audio.shape[-1]
        if n < self.MIN_ENCODE_SAMPLES:
            pre = audio.new_zeros((batch, 2 * self.latent_dim, 0))
        elif chunked:
            pre = self._encode_chunked(audio, chunk_seconds, overlap_seconds)
        else:
            pre = self.encoder(audio)
        if sample:
            shape = (batch, self.latent_dim, pre.shape[-1])
            if noise is not None:
                noise = torch.as_tensor(noise)
                if tuple(noise.shape) != shape:
                    raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
                noise = noise.to(device=pre.device, dtype=pre.dtype)
            elif generator is not None:
                noise = torch.randn(shape, generator=generator, device=generator.device, dtype=pre.dtype)
                noise = noise.to(pre.device)
            else:
                noise = torch.randn(shape, device=pre.device, dtype=pre.dtype)
        return vae_bottleneck(pre, noise)

    def encode(
        self,
        wav: torch.Tensor | np.ndarray,
        sample_rate: int,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        chunked: bool = False,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
    ) -> torch.Tensor:
        """Audio (B, N) or (B, C, N) at ``sample_rate`` -> latents (B, latent_dim, T).

        - Mono is repeated to the VAE's channels; another rate is resampled to :attr:`sample_rate`.
        - T = floor(N / downsampling_ratio) at the VAE rate; fewer than 2048 samples give T = 0.
        - The posterior mean by default; ``sample=True`` draws ``mean + noise·std`` with ``noise``
          given, drawn from ``generator``, or from torch's global generator.
        - ``chunked=True`` encodes overlapped windows of ``chunk_seconds`` (default 128 latent
          frames) with ``overlap_seconds`` (default 32 frames) shared by neighbours (seconds are
          rounded to whole frames). Windows start on the frame grid and keep their centre:
          ``overlap // 2`` frames are dropped at every inner edge (:mod:`shirabe.codec.chunking`).
        """
        return self.encode_with_info(
            wav, sample_rate, sample=sample, generator=generator, noise=noise, chunked=chunked,
            chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds,
        ).latents

    def _seconds_to_frames(self, seconds: float | None, default: int, what: str) -> int:
        if seconds is None:
            return default
        frames = round(float(seconds) * self.frame_rate)
        if what == "chunk_seconds" and frames < 1:
            raise ValueError(f"{what}={seconds} is less than one latent frame ({1 / self.frame_rate:g} s)")
        return frames

    def _encode_chunked(self, audio: torch.Tensor, chunk_seconds: float | None,
                        overlap_seconds: float | None) -> torch.Tensor:
        """Encoder output (B, 2D, T) computed window by window.

        Seam rule: the windows follow :func:`~shirabe.codec.chunking.chunk_plan` over the
        T = encoder.output_length(N) output frames. A window covering frames [s, s + chunk) is
        the audio [s·ratio, (s + chunk)·ratio), so its frames sit exactly on the global frame
        grid; the end-aligned last window runs to the end of the audio (it also sees the
        samples past T·ratio, as the unchunked encoder does). Each window keeps its centre:
        ``overlap // 2`` frames are dropped at every inner edge, so every kept frame has at
        least that much real audio on both sides. The result equals the unchunked encoding
        wherever the encoder's receptive field fits in that margin, and differs slightly near
        the seams otherwise.
        """
        chunk = self._seconds_to_frames(chunk_seconds, self.DECODE_CHUNK_SIZE, "chunk_seconds")
        overlap = self._seconds_to_frames(overlap_seconds, self.DECODE_OVERLAP, "overlap_seconds")
        n = audio.shape[-1]
        total = self.encoder.output_length(n)
        plan = chunk_plan(total, chunk, overlap)
        if len(plan) <= 1:
            return self.encoder(audio)
        ratio = self.downsampling_ratio
        out = audio.new_empty((audio.shape[0], self.config.encoder.latent_dim, total))
        for i, piece in enumerate(plan):
            stop = n if i == len(plan) - 1 else piece.stop * ratio
            frames = self.encoder(audio[:, :, piece.start * ratio:stop])
            if frames.shape[-1] < piece.keep_end - piece.start:
                raise ValueError("chunked encode needs even strides (a window gave too few frames)")
            out[:, :, piece.keep_start:piece.keep_end] = frames[:, :, piece.keep_start - piece.start:
                                                                 piece.keep_end - piece.start]
        return out

    # -- decode -------------------------------------------------------------

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, *, chunked: bool = False, chunk_size: int = DECODE_CHUNK_SIZE,
               overlap: int = DECODE_OVERLAP) -> torch.Tensor:
        """Latents (B, latent_dim, T) -> audio (B, audio_channels, T·downsampling_ratio).

        ``chunked=True`` decodes ``chunk_size``-frame chunks that share ``overlap`` frames with
        their neighbours (SongBloom's layout, :func:`~shirabe.codec.chunking.chunk_plan`) into a
        preallocated output; T <= chunk_size decodes in one piece.
        """
        if latents.dim() != 3 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (B, {self.latent_dim}, T), got {tuple(latents.shape)}")
        param = self._param()
        latents = latents.to(device=param.device, dtype=param.dtype)
        batch, total = latents.shape[0], latents.shape[-1]
        if total == 0:
            return latents.new_zeros((batch, self.config.decoder.out_channels, 0))
        plan = chunk_plan(total, chunk_size, overlap) if chunked else []
        if len(plan) <= 1:
            return self.decoder(latents)
        ratio = self.downsampling_ratio
        if self.decoder.output_length(chunk_size) != chunk_size * ratio:
            raise ValueError("chunked decode needs even strides (output length T·ratio)")
        out = latents.new_empty((batch, self.config.decoder.out_channels, total * ratio))
        for piece in plan:
            audio = self.decoder(latents[:, :, piece.start:piece.stop])
            lo, hi = (piece.keep_start - piece.start) * ratio, (piece.keep_end - piece.start) * ratio
            out[:, :, piece.keep_start * ratio:piece.keep_end * ratio] = audio[:, :, lo:hi]
        return out
