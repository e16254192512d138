"""The MuQ encoder: 24 kHz audio → 25 Hz music features, weight-compatible with the release.

``MuQ(wav)`` on (B, N) float audio at 24 kHz returns :class:`MuQOutput` with
``last_hidden_state`` (B, T, D) and ``hidden_states``, a tuple of depth + 1 tensors:
the subsampling output (the input of layer 1), the outputs of layers 1..depth-1, and the
final LayerNorm of the last layer's output (the same tensor as ``last_hidden_state``; the
last layer's output before that norm is not exposed). T = :func:`num_frames` (N).

Pipeline: dB mel (:mod:`shirabe.ssl.muq_mel`, float32) → ``(mel - mean) / std`` with the
config's statistics → :class:`Conv2dSubsampling` → :class:`~shirabe.ssl.conformer.ConformerEncoder`.

:class:`Conv2dSubsampling` treats the mel (B, 128, T) as a one-channel image and applies two
residual blocks, each ``relu(bn2(conv2(relu(bn1(conv1(x))))) + bn3(conv3(x)))`` with 3×3
convolutions (padding 1), stride 2 in both axes on ``conv1`` and ``conv3``; frequency
128 → 32, time T → ceil(ceil(T / 2) / 2). The (B, C, 32, T') result is flattened channel-major
per frame (index c·32 + f) and projected by ``linear`` to ``encoder_dim``.

Parameter names are those of the released state dict under ``model.`` (``model.conv.*``,
``model.conformer.*``). The module only has eval semantics: :meth:`MuQ.train` keeps it in eval
mode (see there). Loading: :meth:`MuQ.from_pretrained` (:func:`shirabe.ssl.muq_load.load_muq`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shirabe.ssl.conformer import ConformerEncoder
from shirabe.ssl.muq_config import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    MUQ_HOP_LENGTH,
    MUQ_N_MELS,
    MuQConfig,
)
from shirabe.ssl.muq_mel import muq_mel_db, resolve_stft_backend

__all__ = ["Conv2dSubsampling", "MuQ", "MuQOutput", "Res2d", "num_frames"]


def num_frames(num_samples_24k: int) -> int:
    """Output frames for ``num_samples_24k`` samples at 24 kHz: ceil(ceil(floor(N / 240) / 2) / 2)."""
    mel_frames = int(num_samples_24k) // MUQ_HOP_LENGTH
    return math.ceil(math.ceil(mel_frames / 2) / 2)


@dataclass
class MuQOutput:
    """``last_hidden_state`` (B, T, D) and ``hidden_states`` (depth + 1 tensors of (B, T, D))."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]


class Res2d(nn.Module):
    """Residual 2-D block with a strided 3×3 shortcut (``conv3`` + ``bn3``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.bn3(self.conv3(x)))


class Conv2dSubsampling(nn.Module):
    """(B, 128, T) normalised mel → (B, ceil(ceil(T / 2) / 2), encoder_dim)."""

    def __init__(self, conv_dim: int, encoder_dim: int, n_mels: int = MUQ_N_MELS):
        super().__init__()
        self.conv = nn.Sequential(Res2d(1, conv_dim), Res2d(conv_dim, conv_dim))
        self.linear = nn.Linear(conv_dim * math.ceil(math.ceil(n_mels / 2) / 2), encoder_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.unsqueeze(1))  # (B, C, F, T)
        batch, channels, freqs, length = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, length, channels * freqs)
        return self.linear(x)


class MuQModel(nn.Module):
    """The inference parts under the ``model.`` prefix: ``conv`` and ``conformer``."""

    def __init__(self, config: MuQConfig):
        super().__init__()
        self.conv = Conv2dSubsampling(config.conv_dim, config.encoder_dim)
        self.conformer = ConformerEncoder(config)


class MuQ(nn.Module):
    """MuQ encoder (see the module docstring); ``stft_backend``: ``auto`` | ``fft`` | ``matmul``."""

    def __init__(self, config: MuQConfig | None = None, stft_backend: str = "auto"):
        super().__init__()
        self.config = config if config is not None else MuQConfig()
        resolve_stft_backend(stft_backend, "cpu")  # validates the name
        self.stft_backend = stft_backend
        self.model = MuQModel(self.config)
        self.eval()

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, stft_backend: str = "auto") -> MuQ:
        """Load ``config.json`` + ``model.safetensors`` from a local directory (strict)."""
        from shirabe.ssl.muq_load import load_muq

        return load_muq(directory, device=device, dtype=dtype, stft_backend=stft_backend)

    def train(self, mode: bool = True) -> MuQ:
        """Stay in eval mode whatever ``mode`` is.

        MuQ is used as a frozen feature extractor: in training mode its BatchNorm layers
        would normalise with batch statistics (and update the running ones), so its features
        would change with the batch. A training loop that calls ``.train()`` on a parent
        module therefore leaves this one in eval mode.
        """
        del mode
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.model.conv.linear.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.conv.linear.weight.dtype

    def mel_db(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) 24 kHz audio → dB mel (B, 128, N // 240), float32."""
        return muq_mel_db(wav, self.stft_backend)

    def normalize(self, mel_db: torch.Tensor) -> torch.Tensor:
        """``(mel_db - mean) / std`` with the config's statistics."""
        return (mel_db - self.config.mel_mean) / self.config.mel_std

    def forward_mel(self, mel_norm: torch.Tensor) -> MuQOutput:
        """Run the network on a normalised mel (B, 128, T) (the step after :meth:`normalize`)."""
        if mel_norm.dim() != 3 or mel_norm.shape[1] != MUQ_N_MELS:
            raise ValueError(f"expected a mel of shape (B, {MUQ_N_MELS}, T), got {tuple(mel_norm.shape)}")
        x = self.model.conv(mel_norm.to(self.dtype))
        states = self.model.conformer(x)
        return MuQOutput(last_hidden_state=states[-1], hidden_states=states)

    def forward(self, wav: torch.Tensor) -> MuQOutput:
        """(B, N) float audio at 24 kHz (mono) → :class:`MuQOutput` with T = num_frames(N)."""
        if wav.dim() != 2:
            raise ValueError(f"expected 24 kHz mono audio of shape (B, N), got {tuple(wav.shape)}")
        if not wav.is_floating_point():
            raise ValueError(f"expected floating-point audio, got {wav.dtype}")
        return self.forward_mel(self.normalize(self.mel_db(wav.to(self.device))))

    def encode(self, wav, sample_rate: int, layers: int | Sequence[int] | None = None,
               window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
               overlap_seconds: float = DEFAULT_OVERLAP_SECONDS) -> torch.Tensor:
        """Features of one (N,) or (N, channels) signal at any rate: :func:`shirabe.ssl.muq_encode.encode`."""
        from shirabe.ssl.muq_encode import encode

        return encode(self, wav, sample_rate, layers=layers, window_seconds=window_seconds,
                      overlap_seconds=overlap_seconds)
