"""MuQ features of audio at any rate and length: :func:`encode`.

``encode(model, wav, sample_rate, layers=None)`` downmixes to mono (the mean of the
channels), resamples to 24 kHz (soxr, :func:`shirabe.audio.resample.resample`), and returns
25 Hz features on the model's device:

- ``layers=None``: ``last_hidden_state``, (T, D);
- ``layers=i`` (an int, negative counts from the end): ``hidden_states[i]``, (T, D), where
  index 0 is the subsampling output and index ``depth`` the last hidden state;
- ``layers=[i, j, ...]``: those hidden states stacked, (L, T, D).

T is always :func:`~shirabe.ssl.muq_model.num_frames` of the 24 kHz length.

Long audio runs in windows (:func:`plan_windows`) of ``window_seconds`` (default 30 s)
overlapping by ``overlap_seconds`` (default 10 s); ``window_seconds=None`` runs the whole
signal at once. Both lengths are rounded to whole output frames (960 samples, 40 ms). Every
window starts on a multiple of 960 samples, so its local frame i is global frame
``start / 960 + i``: the windows share one 25 Hz grid. Seam rule: between two consecutive
windows the seam is the frame nearest the middle of their overlap; each window contributes the
frames between its two seams (the first from frame 0, the last up to the end). So each kept
frame has at least about half the overlap of context on both sides, except at the true ends
of the signal, where windowed and whole-signal runs see the same edge. The last window is
moved back to end exactly at the end of the signal (it is then up to 959 samples longer than
the others) so that it is never a short remainder.

The convolutional front end only sees a few frames around each output frame, so the
subsampling output (``layers=0``) of a windowed run matches the whole-signal run up to
float rounding. The conformer attends over its whole input, so deeper layers of a windowed run
differ somewhat from a whole-signal run of the same audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shirabe.audio.resample import resample
from shirabe.ssl.muq_config import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    MUQ_SAMPLE_RATE,
    MUQ_SAMPLES_PER_FRAME,
)
from shirabe.ssl.muq_mel import MIN_SAMPLES
from shirabe.ssl.muq_model import MuQ, num_frames

__all__ = ["Window", "encode", "plan_windows",
           "to_mono_24k"]


@dataclass(frozen=True)
class Window:
    """Samples ``[start, end)`` of the 24 kHz signal; global output frames ``[keep_from, keep_to)`` are kept."""

    start: int
    end: int
    keep_from: int
    keep_to: int

    @property
    def first_frame(self) -> int:
        """The global index of the window's local frame 0."""
        return self.start // MUQ_SAMPLES_PER_FRAME


def _seconds_to_frames(seconds: float) -> int:
    return int(round(float(seconds) * MUQ_SAMPLE_RATE / MUQ_SAMPLES_PER_FRAME))


def plan_windows(num_samples: int, window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
                 overlap_seconds: float = DEFAULT_OVERLAP_SECONDS) -> list[Window]:
    """The windows of a ``num_samples``-long 24 kHz signal (see the module docstring)."""
    total = num_frames(num_samples)
    if window_seconds is None:
        return [Window(0, num_samples, 0, total)]
    frame = MUQ_SAMPLES_PER_FRAME
    window_frames, overlap_frames = _seconds_to_frames(window_seconds), _seconds_to_frames(overlap_seconds)
    if window_frames * frame < MIN_SAMPLES or overlap_frames < 0 or window_frames - overlap_frames < 1:
        raise ValueError(f"bad MuQ windows: window {window_seconds} s and overlap {overlap_seconds} s give "
                         f"{window_frames} and {overlap_frames} frames of 40 ms; the window needs at least "
                         f"{-(-MIN_SAMPLES // frame)} frames and must exceed the overlap by one frame")
    window = window_frames * frame
    if num_samples <= window:
        return [Window(0, num_samples, 0, total)]
    hop = (window_frames - overlap_frames) * frame
    last = (num_samples - window) // frame * frame
    starts = list(range(0, last, hop)) + [last]
    ends = [s + window for s in starts[:-1]] + [num_samples]
    seams = [(starts[k + 1] + ends[k]) // (2 * frame) for k in range(len(starts) - 1)]
    bounds = [0, *seams, total]
    return [Window(s, e, bounds[k], bounds[k + 1]) for k, (s, e) in enumerate(zip(starts, ends))]


def to_mono_24k(wav, sample_rate: int) -> torch.Tensor:
    """(N,) or (N, channels) audio (numpy or torch) at ``sample_rate`` → (N',) float32 at 24 kHz."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.ndim != 1:
        raise ValueError(f"expected mono (N,) or (N, channels) audio, got shape {wav.shape}")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    wav = resample(wav, int(sample_rate), MUQ_SAMPLE_RATE)
    return torch.from_numpy(np.ascontiguousarray(wav))


def _layer_indices(layers, depth: int) -> list[int]:
    count = depth + 1
    items = [layers] if isinstance(layers, int) else list(layers)
    out = []
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int) or not -count <= i < count:
            raise ValueError(f"layer index {i!r} out of range: the model has hidden states 0..{depth}")
        out.append(i % count)
    if not out:
        raise ValueError("layers is an empty list")
    return out


@torch.no_grad()
def encode(model: MuQ, wav, sample_rate: int, layers: int | Sequence[int] | None = None,
           window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
           overlap_seconds: float = DEFAULT_OVERLAP_SECONDS) -> torch.Tensor:
    """MuQ features of one signal (see the module docstring for shapes, layers and windows)."""
    mono = to_mono_24k(wav, sample_rate)
    if mono.shape[0] < MIN_SAMPLES:
        raise ValueError(f"audio too short for MuQ: {mono.shape[0] / MUQ_SAMPLE_RATE:.3f} s at 24 kHz "
                         f"({mono.shape[0]} samples, at least {MIN_SAMPLES} needed), input shape "
                         f"{tuple(np.shape(wav))}")
    depth = len(model.model.conformer.layers)
    indices = _layer_indices(depth if layers is None else layers, depth)
    pieces: list[torch.Tensor] = []
    for w in plan_windows(mono.shape[0], window_seconds, overlap_seconds):
        out = model(mono[w.start:w.end].unsqueeze(0).to(model.device))
        states = torch.stack([out.hidden_states[i][0] for i in indices])  # (L, T_w, D)
        pieces.append(states[:, w.keep_from - w.first_frame:w.keep_to - w.first_frame])
    features = torch.cat(pieces, dim=1)
    return features if isinstance(layers, Sequence) else features[0]
