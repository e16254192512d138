"""Vocos log-mel features in numpy (no torch): the tables and the front end.

The same features as :func:`shirabe.audio.mel.vocos_mel` and
:class:`shirabe.audio.fbank.VocosFbank` (24 kHz, n_fft 1024, hop 256, 100 HTK
mels without area normalisation, periodic Hann window, centred frames with
reflect padding, magnitude, natural log floored at 1e-7), for runtimes that do
not import torch (ONNX inference). The window and the filterbank are built in
float64 here and cast by their users, so both front ends share one definition.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 24000
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 100
LOG_FLOOR = 1e-7


def hann_window_np(n: int) -> np.ndarray:
    """Periodic Hann window of length ``n``, float64."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * k / n)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank_np(
    n_freqs: int = N_FFT // 2 + 1,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> np.ndarray:
    """Triangular HTK-scale mel filterbank ``(n_freqs, n_mels)``, float64.

    Bin centres are spaced evenly on the mel scale between ``f_min`` and
    ``f_max`` (default Nyquist); each filter rises linearly from the previous
    centre to its own and falls to the next one, peak value 1. The FFT bins are
    ``linspace(0, sample_rate // 2, n_freqs)``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = np.linspace(0.0, sample_rate // 2, n_freqs, dtype=np.float64)
    mel_pts = np.linspace(_hz_to_mel(np.float64(f_min)), _hz_to_mel(np.float64(f_max)), n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    dist = hz_pts[None, :] - bins[:, None]
    rising = -dist[:, :-2] / widths[:-1]
    falling = dist[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling))


_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _tables(n_fft: int, n_mels: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    key = (n_fft, n_mels, sample_rate)
    if key not in _TABLES:
        _TABLES[key] = (hann_window_np(n_fft).astype(np.float32),
                        mel_filterbank_np(n_fft // 2 + 1, n_mels, sample_rate).astype(np.float32))
    return _TABLES[key]


def vocos_mel_np(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
) -> np.ndarray:
    """Log-mel of ``audio`` (S,) or (B, S) → (B, n_mels, 1 + S // hop), float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"expected audio of shape (B, S), got {audio.shape}")
    window, fb = _tables(n_fft, n_mels, sample_rate)
    num_samples = audio.shape[-1]
    if num_samples <= n_fft // 2:  # too short to reflect-pad: zero-extend first
        audio = np.pad(audio, ((0, 0), (0, n_fft // 2 + 1 - num_samples)))
    half = n_fft // 2
    padded = np.pad(audio, ((0, 0), (half, half)), mode="reflect")
    num_frames = 1 + (padded.shape[-1] - n_fft) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop_length][:, :num_frames]
    spec = np.abs(np.fft.rfft(frames * window, axis=-1)).astype(np.float32)  # (B, T, F)
    mel = np.log(np.maximum(spec @ fb, LOG_FLOOR))  # (B, T, n_mels)
    return np.ascontiguousarray(mel.transpose(0, 2, 1)[..., : 1 + num_samples // hop_length])


def vocos_fbank_np(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono ``samples`` (S,) → (T, n_mels) with lhotse's frame count ``(S + hop/2) // hop``
    (extra frames dropped, or the last one repeated), as :class:`shirabe.audio.fbank.VocosFbank`."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0)
    feats = vocos_mel_np(samples, sample_rate)[0].T  # (T, M)
    num_frames = int((len(samples) + HOP_LENGTH // 2) // HOP_LENGTH)
    if feats.shape[0] >= num_frames:
        return np.ascontiguousarray(feats[:num_frames])
    return np.concatenate([feats, np.repeat(feats[-1:], num_frames - feats.shape[0], axis=0)], axis=0)
