"""BigVGAN-v2-compatible mel vocoder (e.g. ``nvidia/bigvgan_v2_22khz_80band_256x``).

A released BigVGAN is a directory with ``config.json`` (hyper-parameters) and
``bigvgan_generator.pt`` = ``{'generator': state_dict}``; the state_dict keeps
weight normalisation as ``weight_g`` / ``weight_v`` pairs (a state_dict with
plain ``weight`` entries, i.e. weight norm already removed, loads too). The
generator, with the parameter names of that file:

- ``conv_pre``: Conv1d(num_mels → C, 7, padding 3), weight-normalised;
- ``ups.{i}.0``: ConvTranspose1d(C/2^i → C/2^(i+1), kernel k_i, stride u_i,
  padding (k_i - u_i) / 2), weight-normalised; the strides multiply to the hop;
- ``resblocks.{i·K + j}``: after up-sampling stage ``i``, K anti-aliased
  multi-periodicity (AMP) blocks with kernel sizes ``resblock_kernel_sizes``,
  averaged. Type "1": per dilation ``d``, ``x += c2(a2(c1(a1(x))))`` with
  ``convs1`` dilated by ``d`` and ``convs2`` undilated (``activations`` holds
  a1, a2, a1', a2', ... interleaved); type "2": ``x += c(a(x))`` per dilation;
- ``activation_post`` then ``conv_post`` (Conv1d(ch → 1, 7, padding 3),
  bias only if ``use_bias_at_final``), then ``tanh`` if ``use_tanh_at_final``
  else clamping to [-1, 1].

Every activation is an alias-free ``Activation1d``: up-sample x2 (replicate-pad
5, transposed conv with a 12-tap Kaiser-windowed sinc low-pass ``upsample.filter``
scaled by 2, crop 15 each side), the periodic activation, down-sample x2
(replicate-pad 5 left / 6 right, the same kind of low-pass
``downsample.lowpass.filter``, stride 2). The filters (cutoff 0.25, half-width
0.3 in cycles per up-sampled sample) are stored buffers.
Snake: ``x + sin²(αx)/α``; SnakeBeta: ``x + sin²(αx)/β``, per channel, with
``α = exp(alpha)``, ``β = exp(beta)`` when ``snake_logscale`` (divisor + 1e-9).

Mel front end (:func:`bigvgan_mel`): reflect-pad ``(n_fft - hop) / 2`` each
side, STFT without centring (periodic Hann of ``win_size``), magnitude
``sqrt(re² + im² + 1e-9)``, librosa's Slaney mel filterbank (``fmin``..``fmax``,
``fmax`` null = Nyquist), natural log of ``max(x, 1e-5)``: ``S // hop`` frames.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shirabe.audio.mel import hann_window
from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load, strip_module_prefix

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
GENERATOR_NAME = "bigvgan_generator.pt"
LOG_FLOOR = 1e-5
SNAKE_EPS = 1e-9

# nvidia/bigvgan_v2_22khz_80band_256x (the vocoder of Seed-VC V2).
BIGVGAN_V2_22KHZ_80BAND_256X: dict[str, Any] = {
    "resblock": "1",
    "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "activation": "snakebeta",
    "snake_logscale": True,
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": None,
}

REQUIRED_KEYS = (
    "resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
    "resblock_kernel_sizes", "resblock_dilation_sizes", "num_mels",
)


# ---- weight-normalised convolutions (keys weight_g / weight_v) -------------

def _weight_norm(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``g · v / ||v||`` with the norm over every dimension but the first."""
    norm = v.pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
    return v * (g / norm)


class _WeightNormMixin:
    def _init_weight_norm(self):
        weight = self.weight.detach()
        del self.weight
        norm = weight.pow(2).sum(dim=tuple(range(1, weight.dim())), keepdim=True).sqrt()
        self.weight_g = nn.Parameter(norm.clone())
        self.weight_v = nn.Parameter(weight.clone())
        self.normalized = True

    def current_weight(self) -> torch.Tensor:
        return _weight_norm(self.weight_v, self.weight_g) if self.normalized else self.weight

    def remove_weight_norm(self) -> None:
        """Fold ``weight_g``/``weight_v`` into a plain ``weight`` (same output, faster)."""
        if not self.normalized:
            return
        weight = _weight_norm(self.weight_v, self.weight_g).detach()
        del self.weight_g, self.weight_v
        self.weight = nn.Parameter(weight)
        self.normalized = False


class WNConv1d(_WeightNormMixin, nn.Conv1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.current_weight(), self.bias)


class WNConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.current_weight(), self.bias, self.stride, self.padding, self.output_padding,
            self.groups, self.dilation,
        )


# ---- alias-free activations ------------------------------------------------

def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass, shape (1, 1, kernel_size), taps summing to 1.

    ``cutoff`` and ``half_width`` are in cycles per sample. The Kaiser β follows
    the usual design rule for attenuation ``A = 2.285·(K/2 - 1)·π·4·half_width + 7.95``
    dB; even kernels are sampled at half-integer times.
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4.0 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21.0) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    n = np.arange(kernel_size, dtype=np.float64)
    window = np.i0(beta * np.sqrt(1.0 - (2.0 * n / (kernel_size - 1) - 1.0) ** 2)) / np.i0(beta)
    if kernel_size % 2 == 0:
        t = np.arange(-half, half, dtype=np.float64) + 0.5
    else:
        t = np.arange(kernel_size, dtype=np.float64) - half
    if cutoff == 0:
        taps = np.zeros_like(t)
    else:
        taps = 2.0 * cutoff * window * np.sinc(2.0 * cutoff * t)
        taps /= taps.sum()
    return torch.from_numpy(taps).float().view(1, 1, kernel_size)


class LowPassFilter1d(nn.Module):
    def __init__(self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1, kernel_size: int = 12):
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels
        )
        return x[..., self.crop_left : x.shape[-1] - self.crop_right]


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Snake(nn.Module):
    """``x + sin²(αx) / α`` per channel; ``alpha`` stored as log α when ``logscale``."""

    def __init__(self, channels: int, logscale: bool = False):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        alpha = torch.exp(alpha) if self.logscale else alpha
        return x + torch.sin(x * alpha).pow(2) / (alpha + SNAKE_EPS)


class SnakeBeta(nn.Module):
    """``x + sin²(αx) / β`` per channel; ``alpha``/``beta`` stored as logs when ``logscale``."""

    def __init__(self, channels: int, logscale: bool = False):
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + torch.sin(x * alpha).pow(2) / (beta + SNAKE_EPS)


class Activation1d(nn.Module):
    """Up-sample x2, periodic activation, down-sample x2 (alias-free)."""

    def __init__(self, act: nn.Module, up_ratio: int = 2, down_ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.act = act
        self.upsample = UpSample1d(up_ratio, kernel_size)
        self.downsample = DownSample1d(down_ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _activation(name: str, channels: int, logscale: bool) -> Activation1d:
    if name == "snake":
        return Activation1d(Snake(channels, logscale))
    if name == "snakebeta":
        return Activation1d(SnakeBeta(channels, logscale))
    raise InputError(f"unknown BigVGAN activation {name!r} (expected 'snake' or 'snakebeta')")


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class AMPBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations, activation: str, logscale: bool):
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size))
            for _ in dilations
        )
        self.activations = nn.ModuleList(
            _activation(activation, channels, logscale) for _ in range(2 * len(dilations))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            a1, a2 = self.activations[2 * i], self.activations[2 * i + 1]
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations, activation: str, logscale: bool):
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )
        self.activations = nn.ModuleList(_activation(activation, channels, logscale) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(act(x))
        return x


class BigVGAN(nn.Module):
    """Log-mel (B, num_mels, T) → audio (B, 1, T · hop); see the module docstring."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = dict(config)
        h = self.config
        missing = [k for k in REQUIRED_KEYS if k not in h]
        if missing:
            raise InputError(f"BigVGAN config lacks {', '.join(missing)}")
        if len(h["upsample_rates"]) != len(h["upsample_kernel_sizes"]):
            raise InputError("BigVGAN config: upsample_rates and upsample_kernel_sizes differ in length")
        block = {"1": AMPBlock1, "2": AMPBlock2}.get(str(h["resblock"]))
        if block is None:
            raise InputError(f"BigVGAN config: resblock must be '1' or '2', got {h['resblock']!r}")
        activation = h.get("activation", "snakebeta")
        logscale = bool(h.get("snake_logscale", True))
        channels = int(h["upsample_initial_channel"])
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.use_tanh_at_final = bool(h.get("use_tanh_at_final", True))

        self.conv_pre = WNConv1d(int(h["num_mels"]), channels, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(nn.ModuleList([WNConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)]))
            for ks, ds in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(block(c_out, ks, ds, activation, logscale))
        c_last = channels // 2 ** len(h["upsample_rates"])
        self.activation_post = _activation(activation, c_last, logscale)
        self.conv_post = WNConv1d(c_last, 1, 7, 1, padding=3, bias=bool(h.get("use_bias_at_final", True)))

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("sampling_rate", 22050))

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.config["upsample_rates"]))

    @property
    def n_mels(self) -> int:
        return int(self.config["num_mels"])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            for layer in up:
                x = layer(x)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)

    @torch.no_grad()
    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, num_mels, T) → audio (B, T · hop)."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"expected mel of shape (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        return self(mel)[:, 0]

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, S) → this vocoder's log-mel (B, num_mels, S // hop)."""
        return bigvgan_mel(audio, self.config)

    def remove_weight_norm(self) -> BigVGAN:
        """Fold every weight norm into plain weights (inference only)."""
        for m in self.modules():
            if isinstance(m, _WeightNormMixin):
                m.remove_weight_norm()
        return self


# ---- mel front end ---------------------------------------------------------

_MEL_CACHE: dict[tuple, torch.Tensor] = {}


def bigvgan_mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> torch.Tensor:
    """librosa's Slaney mel filterbank (n_mels, n_fft // 2 + 1), float32."""
    key = (sr, n_fft, n_mels, fmin, fmax)
    if key not in _MEL_CACHE:
        import librosa

        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        _MEL_CACHE[key] = torch.from_numpy(np.asarray(fb, dtype=np.float32))
    return _MEL_CACHE[key]


def bigvgan_mel(audio: torch.Tensor, config: dict[str, Any] = BIGVGAN_V2_22KHZ_80BAND_256X) -> torch.Tensor:
    """Audio (B, S) or (S,) at the config's rate → log-mel (B, num_mels, frames); module docstring."""
    if audio.dim() == 1:
        audio = audio.unsqueeze(0)
    n_fft, hop = int(config["n_fft"]), int(config["hop_size"])
    win = int(config.get("win_size", n_fft))
    fmax = config.get("fmax")
    basis = bigvgan_mel_basis(
        int(config["sampling_rate"]), n_fft, int(config["num_mels"]), float(config.get("fmin", 0) or 0),
        None if fmax is None else float(fmax),
    ).to(audio.device)
    pad = (n_fft - hop) // 2
    x = F.pad(audio.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        x, n_fft, hop, win, hann_window(win).to(audio.device), center=False, return_complex=True
    )
    magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(basis, magnitude), min=LOG_FLOOR))


# ---- loading ---------------------------------------------------------------

def read_bigvgan_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such BigVGAN config file")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable JSON config ({e})") from e
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise InputError(f"{path}: BigVGAN config lacks {', '.join(missing)}")
    if "hop_size" in config and int(np.prod(config["upsample_rates"])) != int(config["hop_size"]):
        raise InputError(f"{path}: upsample_rates multiply to {int(np.prod(config['upsample_rates']))}, "
                         f"not hop_size {config['hop_size']}")
    return config


def load_bigvgan(
    config_path: str | Path, generator_path: str | Path, trust: bool = False, remove_weight_norm: bool = True
) -> BigVGAN:
    """BigVGAN from ``config.json`` and ``bigvgan_generator.pt``, loaded strictly.

    The file may hold ``{'generator': state_dict}`` (upstream) or a bare
    state_dict; with or without weight norm. ``remove_weight_norm`` folds it
    away after loading (faster inference, same output).
    """
    config = read_bigvgan_config(config_path)
    obj = safe_load(generator_path, trust=trust)
    if isinstance(obj, dict) and isinstance(obj.get("generator"), dict):
        obj = obj["generator"]
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{generator_path}: holds no BigVGAN generator state_dict")
    state = strip_module_prefix({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)})
    model = BigVGAN(config)
    if "conv_pre.weight" in state and "conv_pre.weight_g" not in state:
        model.remove_weight_norm()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(
            f"{generator_path}: does not match the BigVGAN of {config_path} ({str(e).splitlines()[0]})"
        ) from e
    if remove_weight_norm:
        model.remove_weight_norm()
    return model.eval()


def load_bigvgan_dir(model_dir: str | Path, trust: bool = False) -> BigVGAN:
    """BigVGAN from a directory holding ``config.json`` and ``bigvgan_generator.pt``."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: no such BigVGAN model directory")
    return load_bigvgan(model_dir / CONFIG_NAME, model_dir / GENERATOR_NAME, trust=trust)


def bigvgan_griffin_lim(config: dict[str, Any] = BIGVGAN_V2_22KHZ_80BAND_256X, n_iter: int = 32):
    """Griffin-Lim inverting BigVGAN log-mels (its Slaney filterbank); ``decode(mel) -> (B, T · hop)``."""
    from shirabe.vocoder.griffin_lim import GriffinLim

    n_fft, hop, n_mels = int(config["n_fft"]), int(config["hop_size"]), int(config["num_mels"])
    fmax = config.get("fmax")
    gl = GriffinLim(int(config["sampling_rate"]), n_fft, hop, n_mels, n_iter=n_iter)
    fb = bigvgan_mel_basis(
        int(config["sampling_rate"]), n_fft, n_mels, float(config.get("fmin", 0) or 0),
        None if fmax is None else float(fmax),
    ).double().T  # (F, M)
    gl.fb = fb.float()
    gl.fb_pinv = torch.from_numpy(np.linalg.pinv(fb.numpy().T)).float()
    return gl.eval()


def load_bigvgan_vocoder(model_dir: str | Path | None = None, trust: bool = False):
    """BigVGAN from ``model_dir``, or Griffin-Lim on BigVGAN-style mels with a warning when None."""
    if model_dir is None:
        logger.warning(
            "no BigVGAN given (--vocoder-path): using Griffin-Lim, which sounds much worse; pass a "
            "directory with bigvgan_v2_22khz_80band_256x's config.json and bigvgan_generator.pt"
        )
        return bigvgan_griffin_lim()
    return load_bigvgan_dir(model_dir, trust=trust)
