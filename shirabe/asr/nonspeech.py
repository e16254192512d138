"""Synthetic non-speech: training clips that should decode to no phones, and test signals.

A recognizer trained on speech alone hears phones in anything: fed noise, it
emits a phone sequence about as long as speech would give. The training set
therefore gets extra clips with an empty phone sequence (all blank), drawn by
:func:`random_nonspeech` from four families, each with random parameters:

* ``noise``: Gaussian noise with a random spectral slope (from brown to blue);
* ``pulses``: a train of short sine bursts or single-sample clicks at a random
  rate (2 to 60 per second), burst frequency and width;
* ``tones``: one to three steady or gliding sinusoids, optionally amplitude
  modulated;
* ``silence``: near-digital silence.

Levels are log-uniform between -50 and -10 dBFS RMS. :func:`white_noise` and
:func:`click_train` make the fixed test signals of the documentation (noise and
a 1 kHz sine-click train at the level of a given recording); they belong to the
``noise`` and ``pulses`` families, whose other members the training draws.
"""

from __future__ import annotations

import numpy as np

KINDS = ("noise", "pulses", "tones", "silence")


def _at_level(x: np.ndarray, rms: float) -> np.ndarray:
    level = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0
    if level > 0:
        x = x * (rms / level)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _coloured_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Gaussian noise whose power falls (slope < 0) or rises with frequency as f^slope."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    return np.fft.irfft(spec * f ** (slope / 2), n)


def _pulses(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    rate = rng.uniform(2.0, 60.0)
    out = np.zeros(n)
    period = max(1, int(sr / rate))
    if rng.random() < 0.3:  # single-sample clicks
        burst = np.ones(1)
    else:
        width = max(2, int(sr * rng.uniform(0.001, 0.02)))
        freq = np.exp(rng.uniform(np.log(150.0), np.log(6000.0)))
        burst = np.sin(2 * np.pi * freq * np.arange(width) / sr) * np.hanning(width)
    jitter = rng.uniform(0.0, 0.3)
    pos = int(rng.integers(0, period))
    while pos + burst.size <= n:
        out[pos:pos + burst.size] += burst
        pos += max(1, int(period * (1.0 + jitter * rng.uniform(-1, 1))))
    return out


def _tones(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        f0, f1 = np.exp(rng.uniform(np.log(80.0), np.log(5000.0), size=2))
        if rng.random() < 0.5:
            f1 = f0
        freq = f0 + (f1 - f0) * t / max(t[-1] if n else 1.0, 1e-9)
        phase = 2 * np.pi * np.cumsum(freq) / sr
        amp = 1.0 + (0.8 * np.sin(2 * np.pi * rng.uniform(0.5, 8.0) * t) if rng.random() < 0.5 else 0.0)
        out += amp * np.sin(phase + rng.uniform(0, 2 * np.pi))
    return out


def random_nonspeech(rng: np.random.Generator, num_samples: int, sample_rate: int = 24000,
                     kind: str | None = None) -> np.ndarray:
    """One clip of ``num_samples`` float32 samples from a random (or the given) family."""
    kind = KINDS[int(rng.integers(0, len(KINDS)))] if kind is None else kind
    rms = 10 ** (rng.uniform(-50.0, -10.0) / 20)
    if kind == "noise":
        x = _coloured_noise(rng, num_samples, rng.uniform(-2.0, 1.0))
    elif kind == "pulses":
        x = _pulses(rng, num_samples, sample_rate)
    elif kind == "tones":
        x = _tones(rng, num_samples, sample_rate)
    elif kind == "silence":
        x, rms = rng.standard_normal(num_samples), 1e-5
    else:
        raise ValueError(f"unknown non-speech kind {kind!r} (choose from {', '.join(KINDS)})")
    return _at_level(x, rms)


def white_noise(like: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian white noise as long as ``like`` and at its RMS level."""
    rng = np.random.default_rng(seed)
    return _at_level(rng.standard_normal(like.size), float(np.sqrt(np.mean(like.astype(np.float64) ** 2))))


def click_train(like: np.ndarray, sample_rate: int, freq: float = 1000.0, rate: float = 10.0,
                width_s: float = 0.005) -> np.ndarray:
    """Hann-windowed ``freq`` Hz sine bursts of ``width_s`` seconds, ``rate`` per second, as long as
    ``like`` and at its RMS level."""
    width = max(2, int(sample_rate * width_s))
    burst = np.sin(2 * np.pi * freq * np.arange(width) / sample_rate) * np.hanning(width)
    out = np.zeros(like.size)
    period = max(1, int(sample_rate / rate))
    for start in range(0, like.size - width + 1, period):
        out[start:start + width] = burst
    return _at_level(out, float(np.sqrt(np.mean(like.astype(np.float64) ** 2))))
