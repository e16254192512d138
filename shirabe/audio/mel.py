"""Magnitude mel spectrograms in plain PyTorch (no torchaudio, no lhotse).

The Vocos / ZipVoice front end: periodic Hann window, ``n_fft`` = window
length, centred frames with reflect padding, magnitude (not power) STFT, an HTK
mel filterbank without area normalisation, and the natural log clamped at
``1e-7``. A signal of S samples gives ``1 + S // hop`` frames.

The window and the filterbank are computed in float64 and cast to float32, so
the features are the same in every process (a float32 ``torch.hann_window`` is
not always bit-stable on some CPUs).
"""

from __future__ import annotations

import torch

from shirabe.audio.mel_numpy import (
    HOP_LENGTH,
    LOG_FLOOR,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    hann_window_np,
    mel_filterbank_np,
)

__all__ = ["HOP_LENGTH", "LOG_FLOOR", "N_FFT", "N_MELS", "SAMPLE_RATE", "hann_window", "log_mel_spectrogram",
           "magnitude_spectrogram", "mel_filterbank", "vocos_mel"]


def hann_window(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Periodic Hann window of length ``n`` (built in float64, then cast)."""
    return torch.from_numpy(hann_window_np(n)).to(dtype)


def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = 0.0,
    f_max: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Triangular HTK-scale mel filterbank, shape ``(n_freqs, n_mels)``.

    Bin centres are spaced evenly on the mel scale between ``f_min`` and
    ``f_max`` (default Nyquist); each filter rises linearly from the previous
    centre to its own and falls to the next one, peak value 1 (no area
    normalisation). The FFT bins are ``linspace(0, sample_rate // 2, n_freqs)``.
    Built in float64 by :func:`shirabe.audio.mel_numpy.mel_filterbank_np`.
    """
    return torch.from_numpy(mel_filterbank_np(n_freqs, n_mels, sample_rate, f_min, f_max)).to(dtype)


def magnitude_spectrogram(
    audio: torch.Tensor, window: torch.Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, center: bool = True
) -> torch.Tensor:
    """``|STFT|`` of ``audio`` (B, S) → (B, n_fft // 2 + 1, T)."""
    spec = torch.stft(
        audio,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=window.shape[0],
        window=window.to(audio.dtype),
        center=center,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return spec.abs()


def log_mel_spectrogram(
    audio: torch.Tensor,
    window: torch.Tensor,
    filterbank: torch.Tensor,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    center: bool = True,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """Natural-log magnitude mel spectrogram: (B, S) → (B, n_mels, T).

    ``filterbank`` is ``(n_fft // 2 + 1, n_mels)``.
    """
    mag = magnitude_spectrogram(audio, window, n_fft, hop_length, center)
    mel = torch.matmul(mag.transpose(1, 2), filterbank.to(mag.dtype)).transpose(1, 2)
    return torch.log(torch.clamp(mel, min=floor))


_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _vocos_tables(n_fft: int, n_mels: int, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    key = (n_fft, n_mels, sample_rate)
    if key not in _CACHE:
        _CACHE[key] = (hann_window(n_fft), mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate))
    return _CACHE[key]


def vocos_mel(
    audio: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
) -> torch.Tensor:
    """Vocos log-mel features of ``audio`` (B, S) or (S,) → (B, n_mels, 1 + S // hop).

    The same features as the ``vocos-mel-24khz`` vocoder's own front end and
    ZipVoice's training features (before lhotse's frame-count adjustment).
    Signals of at most ``n_fft // 2`` samples, which cannot be reflect-padded,
    are zero-extended first.
    """
    if audio.dim() == 1:
        audio = audio.unsqueeze(0)
    if audio.dim() != 2:
        raise ValueError(f"expected audio of shape (B, S), got {tuple(audio.shape)}")
    window, fb = _vocos_tables(n_fft, n_mels, sample_rate)
    window, fb = window.to(audio.device), fb.to(audio.device)
    num_samples = audio.shape[-1]
    if num_samples <= n_fft // 2:
        # Too short to reflect-pad: zero-extend, then keep 1 + S // hop frames.
        audio = torch.nn.functional.pad(audio, (0, n_fft // 2 + 1 - num_samples))
    mel = log_mel_spectrogram(audio, window, fb, n_fft, hop_length, center=True)
    return mel[..., : 1 + num_samples // hop_length]
