"""The log-mel front end of ACE-Step's music vocoder (used by the DCAE encoder side).

44.1 kHz audio, periodic Hann window of ``win_length``, STFT with ``n_fft`` and ``hop_length`` on
frames that are NOT centred: the signal is reflect-padded by ``(win_length - hop_length) / 2`` on
both sides first, so a signal of S samples gives ``S / hop_length`` frames and frame ``i`` covers
samples ``[hop·i - pad, hop·i - pad + n_fft)``. Magnitude ``sqrt(re² + im² + 1e-6)``, a Slaney
mel filterbank (Slaney scale, area-normalised) and the natural log of ``max(mel, 1e-5)``.

The window and the filterbank are buffers (``spectrogram.window``, ``mel_scale.fb``) so a loaded
checkpoint supplies them; fresh modules build both in float64 and cast them to float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

MAGNITUDE_EPS = 1e-6
LOG_FLOOR = 1e-5


def hann_window_np(n: int) -> np.ndarray:
    """Periodic Hann window of length ``n``, float64."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * k / n)


_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_slaney_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, lin)


def slaney_mel_filterbank_np(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular Slaney-scale filterbank ``(n_freqs, n_mels)`` with area normalisation, float64.

    FFT bins ``linspace(0, sample_rate // 2, n_freqs)``; centres evenly spaced on the Slaney mel
    scale between ``f_min`` and ``f_max``; each triangle is scaled by ``2 / (right - left)`` Hz.
    """
    bins = np.linspace(0.0, sample_rate // 2, n_freqs, dtype=np.float64)
    mel_pts = np.linspace(hz_to_slaney_mel(f_min), hz_to_slaney_mel(f_max), n_mels + 2)
    hz_pts = slaney_mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    dist = hz_pts[None, :] - bins[:, None]
    rising = -dist[:, :-2] / widths[:-1]
    falling = dist[:, 2:] / widths[1:]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    return fb * (2.0 / (hz_pts[2:] - hz_pts[:-2]))[None, :]


class _Window(nn.Module):
    def __init__(self, win_length: int):
        super().__init__()
        self.register_buffer("window", torch.from_numpy(hann_window_np(win_length)).to(torch.float32))


class _MelScale(nn.Module):
    def __init__(self, n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float):
        super().__init__()
        fb = slaney_mel_filterbank_np(n_freqs, n_mels, sample_rate, f_min, f_max)
        self.register_buffer("fb", torch.from_numpy(fb).to(torch.float32))


class LogMelSpectrogram(nn.Module):
    """``[..., S]`` audio → ``[..., n_mels, S // hop_length]`` natural-log mel (see the module docstring)."""

    def __init__(self, sample_rate: int = 44100, n_fft: int = 2048, win_length: int = 2048, hop_length: int = 512,
                 n_mels: int = 128, f_min: float = 40.0, f_max: float = 16000.0):
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.spectrogram = _Window(win_length)
        self.mel_scale = _MelScale(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        shape = audio.shape
        x = audio.reshape(-1, shape[-1])
        pad = (self.win_length - self.hop_length) // 2
        x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.spectrogram.window.to(x.dtype), center=False, normalized=False,
                          onesided=True, return_complex=True)
        spec = torch.view_as_real(spec)
        mag = torch.sqrt(spec.pow(2).sum(-1) + MAGNITUDE_EPS)
        mel = torch.matmul(mag.transpose(-1, -2), self.mel_scale.fb.to(mag.dtype)).transpose(-1, -2)
        mel = torch.log(torch.clamp(mel, min=LOG_FLOOR))
        return mel.reshape(*shape[:-1], mel.shape[-2], mel.shape[-1])
