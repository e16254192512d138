"""The MuQ front end: 128-band dB mel spectrogram of 24 kHz audio.

Steps: periodic Hann window of 2048, centred frames with reflect padding (1024 each side),
hop 240, power spectrum ``|STFT|^2``, HTK mel filterbank (0-12 kHz, 128 bands, peak 1, no
area normalisation), ``10·log10(max(p, 1e-10))`` without a top-dB clamp, and the last frame
dropped: N samples give ``N // 240`` frames. It is always computed in float32 (autocast off),
whatever the dtype of the encoder.

The window, the filterbank and the DFT tables are built in float64 and cast, so the features
are the same in every process (a float32 window from torch can come out slightly wrong on
some CPUs with several threads).

Two STFT implementations give the same power spectrum:

- ``"fft"``: ``torch.stft`` with complex output (CPU, CUDA);
- ``"matmul"``: frames times precomputed window·cos / window·sin tables, real-valued
  throughout, for devices without complex FFT support (MPS).

``"auto"`` picks ``"matmul"`` on MPS and ``"fft"`` elsewhere.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from shirabe.audio.mel_numpy import hann_window_np, mel_filterbank_np
from shirabe.ssl.muq_config import MUQ_HOP_LENGTH, MUQ_N_FFT, MUQ_N_MELS, MUQ_SAMPLE_RATE

__all__ = ["DB_FLOOR", "MIN_SAMPLES", "STFT_BACKENDS", "muq_mel_db", "muq_power_spectrum", "resolve_stft_backend"]

DB_FLOOR = 1e-10
#: reflect padding of n_fft // 2 needs more samples than that
MIN_SAMPLES = MUQ_N_FFT // 2 + 1
STFT_BACKENDS = ("auto", "fft", "matmul")

_TABLES: dict[tuple[str, str], torch.Tensor] = {}


def _table(name: str, device: torch.device) -> torch.Tensor:
    key = (name, str(device))
    if key not in _TABLES:
        if name == "window":
            value = hann_window_np(MUQ_N_FFT)
        elif name == "filterbank":
            value = mel_filterbank_np(MUQ_N_FFT // 2 + 1, MUQ_N_MELS, MUQ_SAMPLE_RATE)
        elif name == "dft":
            # (n_fft, 2 * n_bins): window·cos | -window·sin, the angles reduced mod n_fft exactly
            n = np.arange(MUQ_N_FFT, dtype=np.int64)
            k = np.arange(MUQ_N_FFT // 2 + 1, dtype=np.int64)
            angle = 2.0 * math.pi * ((n[:, None] * k[None, :]) % MUQ_N_FFT) / MUQ_N_FFT
            window = hann_window_np(MUQ_N_FFT)[:, None]
            value = np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)
        else:  # pragma: no cover - internal
            raise KeyError(name)
        _TABLES[key] = torch.from_numpy(np.ascontiguousarray(value)).to(device=device, dtype=torch.float32)
    return _TABLES[key]


def resolve_stft_backend(backend: str, device: torch.device | str) -> str:
    """``"fft"`` or ``"matmul"`` for ``backend`` on ``device`` (``"auto"``: matmul on MPS only)."""
    if backend not in STFT_BACKENDS:
        raise ValueError(f"unknown STFT backend {backend!r} (use one of: {', '.join(STFT_BACKENDS)})")
    if backend == "auto":
        return "matmul" if torch.device(device).type == "mps" else "fft"
    return backend


def muq_power_spectrum(wav: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Power spectrum of (B, N) float audio → (B, 1025, N // 240), float32, last frame dropped."""
    if wav.dim() != 2:
        raise ValueError(f"expected audio of shape (B, N), got {tuple(wav.shape)}")
    num_samples = wav.shape[-1]
    if num_samples < MIN_SAMPLES:
        raise ValueError(f"audio too short for the MuQ front end: {num_samples} samples at 24 kHz "
                         f"(at least {MIN_SAMPLES} are needed), input shape {tuple(wav.shape)}")
    backend = resolve_stft_backend(backend, wav.device)
    wav = wav.float()
    num_frames = num_samples // MUQ_HOP_LENGTH
    if backend == "fft":
        spec = torch.stft(wav, n_fft=MUQ_N_FFT, hop_length=MUQ_HOP_LENGTH, win_length=MUQ_N_FFT,
                          window=_table("window", wav.device), center=True, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
        spec = spec[..., :num_frames]
        return spec.real.square() + spec.imag.square()
    padded = F.pad(wav.unsqueeze(1), (MUQ_N_FFT // 2, MUQ_N_FFT // 2), mode="reflect").squeeze(1)
    frames = padded.unfold(-1, MUQ_N_FFT, MUQ_HOP_LENGTH)[:, :num_frames]  # (B, T, n_fft)
    out = torch.matmul(frames, _table("dft", wav.device))  # (B, T, 2 * n_bins)
    n_bins = MUQ_N_FFT // 2 + 1
    power = out[..., :n_bins].square() + out[..., n_bins:].square()
    return power.transpose(1, 2)


def muq_mel_db(wav: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """dB mel of (B, N) 24 kHz audio → (B, 128, N // 240), float32 (see the module docstring)."""
    device_type = wav.device.type
    no_autocast = (torch.autocast(device_type=device_type, enabled=False)
                   if device_type in ("cpu", "cuda", "mps") else contextlib.nullcontext())
    with no_autocast:
        power = muq_power_spectrum(wav, backend)
        mel = torch.matmul(power.transpose(1, 2), _table("filterbank", wav.device)).transpose(1, 2)
        return 10.0 * torch.log10(torch.clamp(mel, min=DB_FLOOR))

