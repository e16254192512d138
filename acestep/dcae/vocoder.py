"""ACE-Step's music vocoder: a 1-D ConvNeXt backbone and a HiFi-GAN head (44.1 kHz, mono, hop 512).

Parameter names follow the released ``music_vocoder`` checkpoint:

- ``backbone.channel_layers.0`` = (stem Conv1d ``n_mels → dims[0]``, kernel 7, replicate padding;
  channels-first LayerNorm); ``backbone.channel_layers.i`` (i ≥ 1) = (LayerNorm; 1×1 Conv1d
  ``dims[i-1] → dims[i]``); ``backbone.stages.i.j`` = ConvNeXt blocks (``gamma``, ``dwconv``,
  ``norm``, ``pwconv1``, ``pwconv2``); ``backbone.norm`` the final LayerNorm. LayerNorms use
  eps 1e-6 and the biased variance.
- ``head.conv_pre``, ``head.ups.i``, ``head.resblocks.(i·K + j).convs{1,2}.m``, ``head.conv_post``:
  weight-normalised convolutions (``weight_g`` / ``weight_v``, norm over every axis but 0; for the
  transposed convolutions that is per input channel). SiLU is the activation throughout and the
  output goes through tanh.
- ``mel_transform`` = :class:`~acestep.dcae.mel.LogMelSpectrogram` (buffers only).

``config.json`` is a diffusers ConfigMixin file: keys starting with ``_`` are ignored. ``num_mels``
is the head's input width (it must equal ``dims[-1]``), ``n_mels`` the mel-bin count (equal to
``input_channels``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from acestep.dcae.mel import LogMelSpectrogram
from shirabe.cli import InputError
from shirabe.vocoder.bigvgan import WNConv1d, WNConvTranspose1d


@dataclass(frozen=True)
class VocoderConfig:
    """The vocoder's constructor arguments; the defaults are the released ``music_vocoder``."""

    input_channels: int = 128
    depths: list[int] = field(default_factory=lambda: [3, 3, 9, 3])
    dims: list[int] = field(default_factory=lambda: [128, 256, 384, 512])
    drop_path_rate: float = 0.0
    kernel_sizes: list[int] = field(default_factory=lambda: [7])
    upsample_rates: list[int] = field(default_factory=lambda: [4, 4, 2, 2, 2, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [8, 8, 4, 4, 4, 4, 4])
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11, 13])
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]])
    num_mels: int = 512
    upsample_initial_channel: int = 1024
    use_template: bool = False
    pre_conv_kernel_size: int = 13
    post_conv_kernel_size: int = 13
    sampling_rate: int = 44100
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    f_min: float = 40
    f_max: float = 16000
    n_mels: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_vocoder_config(raw: dict[str, Any], source: str = "config") -> VocoderConfig:
    """A checked :class:`VocoderConfig` from a config dict; one-line :class:`InputError` naming ``source``."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    names = {f.name for f in fields(VocoderConfig)}
    unknown = sorted(k for k in raw if not k.startswith("_") and k not in names)
    if unknown:
        raise InputError(f"{source}: unknown vocoder config keys: {', '.join(unknown)}")
    try:
        cfg = VocoderConfig(**{k: v for k, v in raw.items() if k in names})
    except TypeError as e:
        raise InputError(f"{source}: {e}") from None
    problems = []
    if len(cfg.depths) != len(cfg.dims) or not cfg.dims:
        problems.append(f"depths {cfg.depths} and dims {cfg.dims} must be non-empty and of one length")
    if len(cfg.kernel_sizes) != 1:
        problems.append(f"kernel_sizes must have one entry (the plain ConvNeXt block), got {cfg.kernel_sizes}")
    if cfg.use_template:
        problems.append("use_template true is not supported")
    if cfg.input_channels != cfg.n_mels:
        problems.append(f"input_channels {cfg.input_channels} must equal n_mels {cfg.n_mels}")
    if cfg.dims and cfg.num_mels != cfg.dims[-1]:
        problems.append(f"num_mels {cfg.num_mels} (head input width) must equal dims[-1] {cfg.dims[-1]}")
    if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
        problems.append("upsample_rates and upsample_kernel_sizes must have one length")
    if math.prod(cfg.upsample_rates) != cfg.hop_length:
        problems.append(f"prod(upsample_rates) {math.prod(cfg.upsample_rates)} must equal hop_length {cfg.hop_length}")
    if any((k - u) % 2 for k, u in zip(cfg.upsample_kernel_sizes, cfg.upsample_rates)):
        problems.append("every upsample_kernel_size - upsample_rate must be even")
    if cfg.upsample_initial_channel % (2 ** len(cfg.upsample_rates)):
        problems.append(f"upsample_initial_channel {cfg.upsample_initial_channel} must be divisible by "
                        f"2**{len(cfg.upsample_rates)}")
    if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes) or not cfg.resblock_kernel_sizes:
        problems.append("resblock_kernel_sizes and resblock_dilation_sizes must be non-empty and of one length")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    return cfg


def read_vocoder_config(path: str | Path) -> VocoderConfig:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: vocoder config not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the vocoder config: {e}") from None
    return parse_vocoder_config(raw, source=str(path))


# ---- backbone --------------------------------------------------------------------------------

def _layer_norm_channels_first(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(1, keepdim=True)
    var = (x - mean).pow(2).mean(1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + eps)
    return weight[:, None] * x + bias[:, None]


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T]`` (eps 1e-6, biased variance)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _layer_norm_channels_first(x, self.weight, self.bias, self.eps)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → Linear ×4 → GELU → Linear → ×gamma → + input."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class ConvNeXtBackbone(nn.Module):
    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        dims = cfg.dims
        self.channel_layers = nn.ModuleList([nn.Sequential(
            nn.Conv1d(cfg.input_channels, dims[0], 7, padding=3, padding_mode="replicate"),
            ChannelsFirstLayerNorm(dims[0]),
        )])
        for i in range(1, len(dims)):
            self.channel_layers.append(nn.Sequential(ChannelsFirstLayerNorm(dims[i - 1]),
                                                     nn.Conv1d(dims[i - 1], dims[i], 1)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[ConvNeXtBlock(dims[i], cfg.kernel_sizes[0]) for _ in range(cfg.depths[i])])
            for i in range(len(dims))
        ])
        self.norm = ChannelsFirstLayerNorm(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, stage in zip(self.channel_layers, self.stages):
            x = stage(layer(x))
        return self.norm(x)


# ---- HiFi-GAN head ---------------------------------------------------------------------------

class ResBlock1(nn.Module):
    """For each dilation d: ``x = x + c2(SiLU(c1_d(SiLU(x))))`` (c1 dilated, c2 not)."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([WNConv1d(channels, channels, kernel_size, dilation=d,
                                              padding=d * (kernel_size - 1) // 2) for d in dilations])
        self.convs2 = nn.ModuleList([WNConv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
                                     for _ in dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.silu(c1(F.silu(x))))
        return x


class HiFiGANHead(nn.Module):
    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        ch = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = WNConv1d(cfg.num_mels, ch, cfg.pre_conv_kernel_size,
                                 padding=(cfg.pre_conv_kernel_size - 1) // 2)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = ch // 2 ** i, ch // 2 ** (i + 1)
            self.ups.append(WNConvTranspose1d(c_in, c_out, k, stride=u, padding=(k - u) // 2))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(c_out, rk, rd))
        c_last = ch // 2 ** len(cfg.upsample_rates)
        self.conv_post = WNConv1d(c_last, 1, cfg.post_conv_kernel_size, padding=(cfg.post_conv_kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.silu(x))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / self.num_kernels
        return torch.tanh(self.conv_post(F.silu(x)))


class MusicVocoder(nn.Module):
    """Log-mel ``[B, n_mels, F]`` → waveform ``[B, 1, F · hop_length]`` at 44.1 kHz (mono)."""

    def __init__(self, cfg: VocoderConfig | None = None):
        super().__init__()
        self.config = cfg or VocoderConfig()
        c = self.config
        self.backbone = ConvNeXtBackbone(c)
        self.head = HiFiGANHead(c)
        self.mel_transform = LogMelSpectrogram(c.sampling_rate, c.n_fft, c.win_length, c.hop_length,
                                               c.n_mels, c.f_min, c.f_max)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(mel))

    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Same as calling the module."""
        return self(mel)
