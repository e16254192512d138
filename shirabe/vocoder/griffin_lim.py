"""Griffin-Lim inversion of Vocos log-mel features (no trained vocoder needed).

Used as a fallback when no vocoder weights are available: intelligible but
phasey audio, good enough to check a pipeline end to end.

1. Mel → linear magnitude: ``exp(mel)`` through the pseudo-inverse of the mel
   filterbank (float64), clamped at 0, then refined by a few multiplicative
   non-negative least-squares updates so that the filterbank maps it back onto
   the requested mel.
2. Phase: fast Griffin-Lim (momentum 0.99) from a seeded random phase, with
   the analysis of :func:`shirabe.audio.mel.vocos_mel` (centred frames, periodic
   Hann window).

Output length is ``T * hop`` samples, the same as the Vocos vocoder, and the
Vocos mel of the output has frame t centred on sample ``t * hop`` like the
input.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shirabe.audio.mel import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, hann_window, mel_filterbank

MAX_LOG_MEL = 15.0

class GriffinLim(nn.Module):
    """Log-mel (B, n_mels, T) → audio (B, T * hop) by Griffin-Lim; see module doc."""

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        n_mels: int = N_MELS,
        n_iter: int = 32,
        momentum: float = 0.99,
        nnls_iter: int = 20,
        seed: int = 0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.n_iter = n_iter
        self.momentum = momentum
        self.nnls_iter = nnls_iter
        self.seed = seed
        fb = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, dtype=torch.float64)  # (F, M)
        pinv = np.linalg.pinv(fb.numpy().T)  # (F, M)
        self.register_buffer("window", hann_window(n_fft), persistent=False)
        self.register_buffer("fb", fb.float(), persistent=False)
        self.register_buffer("fb_pinv", torch.from_numpy(pinv).float(), persistent=False)

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, M, T) → non-negative magnitude spectrogram (B, F, T)."""
        # Real log-mels stay below ~5; clamping keeps float32 finite on wild inputs
        # (e.g. an untrained model's output) instead of overflowing to NaN.
        target = torch.exp(mel.float().clamp(max=MAX_LOG_MEL))
        mag = torch.clamp(torch.matmul(self.fb_pinv, target), min=0.0)
        # Multiplicative updates for min ||fb^T mag - target||, mag >= 0.
        # Bins no filter covers keep the pseudo-inverse value (zero).
        fb_t = self.fb.t()  # (M, F)
        numer = torch.matmul(self.fb, target)
        mag = mag + 1e-8 * (numer > 0)
        for _ in range(self.nnls_iter):
            denom = torch.matmul(self.fb, torch.matmul(fb_t, mag))
            mag = mag * numer / torch.clamp(denom, min=1e-12)
        return mag

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            audio, self.n_fft, self.hop_length, self.n_fft, self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True, length=length)

    @torch.no_grad()
    def decode(self, mel: torch.Tensor, n_iter: int | None = None) -> torch.Tensor:
        """Log-mel (B, n_mels, T) → audio (B, T * hop)."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"expected mel of shape (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        n_iter = self.n_iter if n_iter is None else n_iter
        num_frames = mel.shape[-1]
        length = num_frames * self.hop_length
        mag = self.mel_to_magnitude(mel)
        # A signal of T * hop samples has T + 1 centred frames: repeat the last one.
        mag = torch.cat([mag, mag[..., -1:]], dim=-1)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=torch.float32).to(mag.device) * (2 * np.pi)
        angles = torch.polar(torch.ones_like(mag), phase)
        previous = torch.zeros_like(angles)
        keep = self.momentum / (1.0 + self.momentum)
        for _ in range(n_iter):
            rebuilt = self._stft(self._istft(mag * angles, length))
            angles = rebuilt - keep * previous
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        return self._istft(mag * angles, length)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.decode(mel)


def griffin_lim(mel: torch.Tensor, n_iter: int = 32, **kwargs) -> torch.Tensor:
    """Log-mel (B, 100, T) → audio (B, T * 256) at 24 kHz by Griffin-Lim.

    ``kwargs`` go to :class:`GriffinLim` (sample_rate, n_fft, hop_length, n_mels,
    momentum, nnls_iter, seed).
    """
    return GriffinLim(n_iter=n_iter, **kwargs).to(mel.device).decode(mel)
