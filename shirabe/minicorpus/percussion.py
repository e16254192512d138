"""Vocal percussion as filtered noise bursts on a song's kick/snare/hi-hat pattern.

Each hit is white noise band-limited in the frequency domain and shaped by an
exponential decay: a low thump for the kick, a mid-band burst for the snare, a
short hiss for the hi-hat. The noise comes from the caller's generator, so the
part is reproducible for a seed.
"""

from __future__ import annotations

import numpy as np

from shirabe.minicorpus.score import Note

# drum -> (low Hz, high Hz, decay time constant s, length s, level)
DRUM_SOUNDS = {
    "kick": (40.0, 180.0, 0.05, 0.20, 1.0),
    "snare": (900.0, 5000.0, 0.06, 0.18, 0.6),
    "hat": (6000.0, 14000.0, 0.015, 0.06, 0.35),
}


def _burst(drum: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    low, high, decay, seconds, level = DRUM_SOUNDS[drum]
    n = int(seconds * sr)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / sr
    envelope = np.exp(-t / decay) * np.minimum(1.0, t / 0.002)  # 2 ms attack
    burst = noise * envelope
    return level * burst / max(np.abs(burst).max(), 1e-9)


def render_percussion(
    notes: tuple[Note, ...], step_seconds: float, num_samples: int, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """The hits of ``notes`` (those with a ``drum``) as float32 audio of ``num_samples``."""
    out = np.zeros(num_samples, dtype=np.float64)
    for note in notes:
        if not note.drum:
            continue
        burst = _burst(note.drum, sr, rng) * rng.uniform(0.85, 1.0)
        start = int(round(note.start * step_seconds * sr))
        end = min(start + len(burst), num_samples)
        out[start:end] += burst[: end - start]
    return out.astype(np.float32)
