"""Kaldi-style log mel filterbank features in plain PyTorch (no torchaudio).

The settings CAM++ (and Seed-VC's style encoder) use, i.e. Kaldi's
``compute-fbank-feats`` defaults with 80 bins and no dither, on audio scaled to
[-1, 1] as given:

- 16 kHz; frames of 25 ms (400 samples) every 10 ms (160), ``snip_edges``:
  only whole frames, ``1 + (S - 400) // 160`` of them (none if S < 400);
- per frame: remove the DC offset (subtract the frame mean), pre-emphasis
  ``x[n] - 0.97·x[n-1]`` (``x[-1] = x[0]``), Povey window (symmetric Hann to
  the power 0.85), zero-pad to 512 (next power of two);
- power spectrum ``|FFT|²`` (257 bins) through 80 triangular filters evenly
  spaced on the mel scale ``1127·ln(1 + f/700)`` from 20 Hz to Nyquist
  (8 kHz), peak 1, the Nyquist bin unused;
- natural log of ``max(energy, float32 eps)``.

Tables are built in float64 and cast, so the features are reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512
NUM_MEL_BINS = 80
LOW_FREQ = 20.0
PREEMPHASIS = 0.97
POVEY_POWER = 0.85
ENERGY_FLOOR = float(np.finfo(np.float32).eps)


def povey_window(n: int = FRAME_LENGTH) -> torch.Tensor:
    """Symmetric Hann window to the power 0.85 (float64 → float32)."""
    k = np.arange(n, dtype=np.float64)
    w = (0.5 - 0.5 * np.cos(2.0 * math.pi * k / (n - 1))) ** POVEY_POWER
    return torch.from_numpy(w).float()


def _mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + f / 700.0)


def kaldi_mel_banks(
    num_bins: int = NUM_MEL_BINS,
    n_fft: int = N_FFT,
    sample_rate: int = SAMPLE_RATE,
    low_freq: float = LOW_FREQ,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """Kaldi's mel filterbank, shape ``(n_fft // 2 + 1, num_bins)``.

    ``high_freq <= 0`` counts back from Nyquist (0 = Nyquist). Filter ``b``
    rises from mel ``m_lo + b·Δ`` to ``m_lo + (b+1)·Δ`` and falls to
    ``m_lo + (b+2)·Δ``, ``Δ = (m_hi - m_lo) / (num_bins + 1)``, evaluated at
    the mel value of each FFT bin's frequency; the Nyquist bin gets no weight.
    """
    nyquist = sample_rate / 2.0
    if high_freq <= 0.0:
        high_freq += nyquist
    n_bins = n_fft // 2
    mel_lo, mel_hi = _mel(np.float64(low_freq)), _mel(np.float64(high_freq))
    delta = (mel_hi - mel_lo) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[:, None]
    left, center, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
    mel = _mel((sample_rate / n_fft) * np.arange(n_bins, dtype=np.float64))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))  # (num_bins, n_bins)
    banks = np.pad(banks, ((0, 0), (0, 1)))  # no weight on the Nyquist bin
    return torch.from_numpy(banks.T.copy()).float()


_TABLES: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def _tables(num_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    if num_bins not in _TABLES:
        _TABLES[num_bins] = (povey_window(), kaldi_mel_banks(num_bins))
    return _TABLES[num_bins]


def kaldi_fbank(waveform: torch.Tensor, num_mel_bins: int = NUM_MEL_BINS) -> torch.Tensor:
    """16 kHz mono audio (S,) → log mel filterbank (frames, num_mel_bins), float32."""
    if waveform.dim() == 2 and waveform.shape[0] == 1:
        waveform = waveform[0]
    if waveform.dim() != 1:
        raise ValueError(f"expected mono audio (S,), got shape {tuple(waveform.shape)}")
    window, banks = _tables(num_mel_bins)
    window, banks = window.to(waveform.device), banks.to(waveform.device)
    x = waveform.float()
    if x.shape[0] < FRAME_LENGTH:
        return x.new_zeros((0, num_mel_bins))
    frames = x.unfold(0, FRAME_LENGTH, FRAME_SHIFT)  # (T, 400)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = (frames - PREEMPHASIS * previous) * window
    spectrum = torch.fft.rfft(frames, n=N_FFT).abs().pow(2)  # (T, 257)
    energies = torch.matmul(spectrum, banks)
    return torch.log(torch.clamp(energies, min=ENERGY_FLOOR))
