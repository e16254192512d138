"""RMVPE pitch estimator, weight-compatible with ``rmvpe.pt`` (the RVC / Seed-VC file).

Network (``E2E``): a U-Net over the log-mel image, a 3-channel convolution,
a bidirectional GRU and a linear layer to 360 pitch bins, each passed through
a sigmoid ("salience"). Parameter names follow the released file:

- ``unet.encoder``: ``bn`` (BatchNorm2d on the input) and ``layers.{i}``, each
  a residual encoder block (``conv.{j}``: :class:`ConvBlockRes`) followed by
  2x2 average pooling; channels ``c, 2c, 4c, ...`` (``c`` = 16 in ``rmvpe.pt``);
- ``unet.intermediate.layers.{i}``: residual blocks without pooling, the
  first doubling the channels;
- ``unet.decoder.layers.{i}``: ``conv1`` (ConvTranspose2d 3x3, stride 2x2,
  output padding 1x1, no bias → BatchNorm → ReLU), concatenation with the
  encoder's skip tensor ``[upsampled, skip]``, then ``conv2.{j}`` residual blocks;
- ``cnn``: Conv2d(c → 3, 3x3); ``fc.0.gru``: BiGRU(3·128 → 256 per direction);
  ``fc.1``: Linear(512 → 360).

:class:`ConvBlockRes` is ``conv`` = [Conv 3x3 (no bias), BN, ReLU, Conv 3x3
(no bias), BN, ReLU] plus a residual path (a 1x1 ``shortcut`` convolution with
bias when the channel count changes).

Front end: 16 kHz audio → STFT (n_fft = window = 1024, hop 160, periodic Hann,
centred with reflect padding) → magnitude ``sqrt(re² + im²)`` → librosa's HTK
mel filterbank (128 bands, 30–8000 Hz, Slaney area normalisation) → natural
log of ``max(x, 1e-5)``: ``N // 160 + 1`` frames at 100 frames/s. The frame
axis is zero-padded on the right to a multiple of 32 for the network, and the
output cropped back.

Decoding: per frame, the salience-weighted mean of the cents of the 9 bins
around the arg-max (bin ``k`` is ``20·k + 1997.379…`` cents above 10 Hz);
frames whose largest salience is ``<= threshold`` are unvoiced (0 Hz);
``f0 = 10 · 2^(cents / 1200)``. Seed-VC uses threshold 0.03.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shirabe.audio.mel import hann_window
from shirabe.cli import InputError
from shirabe.train.checkpoint import load_state_dict_file

SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 160
N_MELS = 128
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
LOG_FLOOR = 1e-5
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # 100 frames/s
N_BINS = 360
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 above 10 Hz
CENTS_PER_BIN = 20.0
DEFAULT_THRESHOLD = 0.03
PAD_MULTIPLE = 32


class ConvBlockRes(nn.Module):
    """Two 3x3 conv + BN + ReLU layers with a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + residual


class ResEncoderBlock(nn.Module):
    """``n_blocks`` residual blocks, optionally followed by average pooling.

    With pooling, returns ``(features before pooling, pooled)``.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int] | None, n_blocks: int):
        super().__init__()
        blocks = [ConvBlockRes(in_channels, out_channels)]
        blocks += [ConvBlockRes(out_channels, out_channels) for _ in range(n_blocks - 1)]
        self.conv = nn.ModuleList(blocks)
        self.pool = nn.AvgPool2d(kernel_size=pool) if pool is not None else None

    def forward(self, x: torch.Tensor):
        for block in self.conv:
            x = block(x)
        if self.pool is None:
            return x
        return x, self.pool(x)


class Encoder(nn.Module):
    def __init__(self, in_channels: int, n_layers: int, pool: tuple[int, int], n_blocks: int, out_channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=0.01)
        layers = []
        for _ in range(n_layers):
            layers.append(ResEncoderBlock(in_channels, out_channels, pool, n_blocks))
            in_channels, out_channels = out_channels, out_channels * 2
        self.layers = nn.ModuleList(layers)
        self.out_channels = out_channels  # twice the last layer's channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.bn(x)
        skips = []
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_layers: int, n_blocks: int):
        super().__init__()
        layers = [ResEncoderBlock(in_channels, out_channels, None, n_blocks)]
        layers += [ResEncoderBlock(out_channels, out_channels, None, n_blocks) for _ in range(n_layers - 1)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], n_blocks: int):
        super().__init__()
        output_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels, out_channels, 3, stride, padding=1, output_padding=output_padding, bias=False
            ),
            nn.BatchNorm2d(out_channels, momentum=0.01),
            nn.ReLU(),
        )
        blocks = [ConvBlockRes(out_channels * 2, out_channels)]
        blocks += [ConvBlockRes(out_channels, out_channels) for _ in range(n_blocks - 1)]
        self.conv2 = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.conv1(x), skip], dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels: int, n_layers: int, stride: tuple[int, int], n_blocks: int):
        super().__init__()
        layers = []
        for _ in range(n_layers):
            layers.append(ResDecoderBlock(in_channels, in_channels // 2, stride, n_blocks))
            in_channels //= 2
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips)):
            x = layer(x, skip)
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels):
        super().__init__()
        self.encoder = Encoder(in_channels, en_de_layers, kernel_size, n_blocks, en_out_channels)
        self.intermediate = Intermediate(
            self.encoder.out_channels // 2, self.encoder.out_channels, inter_layers, n_blocks
        )
        self.decoder = Decoder(self.encoder.out_channels, en_de_layers, kernel_size, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class E2E(nn.Module):
    """RMVPE network: log-mel (B, 128, T) → salience (B, T, 360), T a multiple of 32."""

    def __init__(
        self,
        n_blocks: int = 4,
        n_gru: int = 1,
        kernel_size: tuple[int, int] = (2, 2),
        en_de_layers: int = 5,
        inter_layers: int = 4,
        in_channels: int = 1,
        en_out_channels: int = 16,
    ):
        super().__init__()
        self.unet = DeepUnet(tuple(kernel_size), n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, 3, padding=1)
        if n_gru:
            self.fc = nn.Sequential(
                BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_BINS), nn.Dropout(0.25), nn.Sigmoid()
            )
        else:
            self.fc = nn.Sequential(nn.Linear(3 * N_MELS, N_BINS), nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(-1, -2).unsqueeze(1)  # (B, 1, T, mels)
        x = self.cnn(self.unet(x))  # (B, 3, T, mels)
        x = x.transpose(1, 2).flatten(-2)  # (B, T, 3 * mels), channel-major
        return self.fc(x)


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> dict:
    """E2E constructor arguments that produce exactly the keys of ``state_dict``."""

    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return len({m.group(1) for k in state_dict if (m := rx.match(k))})

    try:
        return {
            "n_blocks": count(r"unet\.encoder\.layers\.0\.conv\.(\d+)\."),
            "n_gru": count(r"fc\.0\.gru\.weight_ih_l(\d+)$"),
            "kernel_size": (2, 2),
            "en_de_layers": count(r"unet\.encoder\.layers\.(\d+)\."),
            "inter_layers": count(r"unet\.intermediate\.layers\.(\d+)\."),
            "in_channels": int(state_dict["unet.encoder.bn.weight"].shape[0]),
            "en_out_channels": int(state_dict["unet.encoder.layers.0.conv.0.conv.0.weight"].shape[0]),
        }
    except KeyError as e:
        raise InputError(f"not an RMVPE state_dict (missing {e.args[0]})") from e


def mel_filterbank() -> torch.Tensor:
    """librosa's HTK mel matrix (128, 513) with Slaney area normalisation."""
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX, htk=True)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


class RMVPE(nn.Module):
    """Front end + network + decoding; see the module docstring."""

    def __init__(self, model: E2E):
        super().__init__()
        self.model = model.eval()
        self.register_buffer("window", hann_window(N_FFT), persistent=False)
        self.register_buffer("mel_basis", mel_filterbank(), persistent=False)
        cents = CENTS_PER_BIN * np.arange(N_BINS, dtype=np.float64) + CENTS_OFFSET
        self.cents_mapping = np.pad(cents, (4, 4))

    @property
    def device(self) -> torch.device:
        return self.window.device

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz audio (B, S) or (S,) → log-mel (B, 128, S // 160 + 1)."""
        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        spec = torch.stft(
            audio.float(), N_FFT, HOP_LENGTH, N_FFT, self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2))
        mel = torch.matmul(self.mel_basis, magnitude)
        return torch.log(torch.clamp(mel, min=LOG_FLOOR))

    @torch.no_grad()
    def salience(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, 128, T) → salience (B, T, 360) (zero-pads T to a multiple of 32 inside)."""
        n_frames = mel.shape[-1]
        n_pad = -n_frames % PAD_MULTIPLE
        padded = F.pad(mel, (0, n_pad), mode="constant")
        return self.model(padded)[:, :n_frames]

    def decode(self, salience: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """Salience (T, 360) → F0 in Hz (T,), float64, 0 where unvoiced."""
        return decode_salience(salience, threshold, self.cents_mapping)

    @torch.no_grad()
    def infer(self, audio_16k: np.ndarray | torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """Mono 16 kHz audio (S,) → F0 (S // 160 + 1,) in Hz at 100 frames/s."""
        audio = torch.as_tensor(np.asarray(audio_16k, dtype=np.float32)).to(self.device)
        if audio.dim() != 1:
            raise ValueError(f"expected mono audio (S,), got shape {tuple(audio.shape)}")
        sal = self.salience(self.mel(audio))[0]
        return self.decode(sal.float().cpu().numpy(), threshold)


def decode_salience(
    salience: np.ndarray, threshold: float = DEFAULT_THRESHOLD, cents_mapping: np.ndarray | None = None
) -> np.ndarray:
    """Local weighted average of cents around the peak (9 bins); see the module docstring."""
    salience = np.asarray(salience)
    if cents_mapping is None:
        cents_mapping = np.pad(CENTS_PER_BIN * np.arange(N_BINS, dtype=np.float64) + CENTS_OFFSET, (4, 4))
    center = np.argmax(salience, axis=1) + 4
    padded = np.pad(salience, ((0, 0), (4, 4)))
    idx = center[:, None] + np.arange(-4, 5)[None, :]
    window = np.take_along_axis(padded, idx, axis=1)
    cents = np.sum(window * cents_mapping[idx], axis=1) / np.sum(window, axis=1)
    cents[np.max(padded, axis=1) <= threshold] = 0.0
    f0 = 10.0 * 2.0 ** (cents / 1200.0)
    f0[f0 == 10.0] = 0.0
    return f0


def load_rmvpe(model_path: str | Path, device: str | torch.device = "cpu", trust: bool = False) -> RMVPE:
    """RMVPE from a plain state_dict file (``rmvpe.pt``), loaded strictly with ``weights_only``.

    The network sizes are read off the keys, so reduced models load too.
    """
    state = load_state_dict_file(model_path, trust=trust, key=None)
    try:
        model = E2E(**config_from_state_dict(state))
    except InputError as e:
        raise InputError(f"{model_path}: {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{model_path}: does not match the RMVPE network ({str(e).splitlines()[0]})") from e
    return RMVPE(model).to(device).eval()
