"""Band-limited resampling with a Hann-windowed sinc kernel (the rule ACE-Step's DCAE pipeline uses).

With ``o / n`` = ``orig_sr / new_sr`` reduced by their gcd, ``base = min(o, n) · rolloff`` and
``width = ceil(lowpass_filter_width · o / base)``, the kernel for output phase ``p`` (0..n-1) and
tap ``k`` (0..2·width + o - 1) is ``sinc(π t) · cos²(π t / (2·lowpass_filter_width)) · base / o``
with ``t = clamp(((k - width) / o - p / n) · base, ±lowpass_filter_width)``. Each signal is
zero-padded by ``width`` on the left and ``width + o`` on the right; output sample ``j·n + p`` is
the dot product of the kernel row ``p`` with the padded input from ``j·o``; the result is cut to
``ceil(n · N / o)`` samples. The kernel is built in float64 and cached in float32, except that the
phase offset ``p / n`` is first rounded to float32 (as the reference resampler does; this makes the
output bit-identical to it rather than within a few 1e-6).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99

_KERNELS: dict[tuple[int, int, int, float], tuple[torch.Tensor, int]] = {}


def sinc_kernel(orig_sr: int, new_sr: int, lowpass_filter_width: int = LOWPASS_FILTER_WIDTH,
                rolloff: float = ROLLOFF) -> tuple[torch.Tensor, int]:
    """``(kernel [n, 1, 2·width + o] float32, width)`` for ``orig_sr → new_sr`` (cached)."""
    key = (int(orig_sr), int(new_sr), int(lowpass_filter_width), float(rolloff))
    if key in _KERNELS:
        return _KERNELS[key]
    g = math.gcd(int(orig_sr), int(new_sr))
    o, n = int(orig_sr) // g, int(new_sr) // g
    base = min(o, n) * rolloff
    width = math.ceil(lowpass_filter_width * o / base)
    taps = torch.arange(0, 2 * width + o, dtype=torch.float64)
    phases = (torch.arange(0, n, dtype=torch.float32) / n).to(torch.float64)  # p / n rounded to float32
    t = ((taps[None, :] - width) / o - phases[:, None]) * base
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / (2 * lowpass_filter_width)) ** 2
    pit = t * math.pi
    sinc = torch.where(pit == 0, torch.ones_like(pit), torch.sin(pit) / torch.where(pit == 0, 1.0, pit))
    kernel = (sinc * window * (base / o)).to(torch.float32).unsqueeze(1)
    _KERNELS[key] = (kernel, width)
    return kernel, width


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``wav`` ``[..., N]`` along its last axis; returns ``wav`` itself when the rates are equal."""
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if int(orig_sr) == int(new_sr):
        return wav
    g = math.gcd(int(orig_sr), int(new_sr))
    o, n = int(orig_sr) // g, int(new_sr) // g
    kernel, width = sinc_kernel(orig_sr, new_sr)
    shape = wav.shape
    length = shape[-1]
    x = wav.reshape(-1, 1, length)
    x = F.pad(x, (width, width + o))
    y = F.conv1d(x, kernel.to(device=x.device, dtype=x.dtype), stride=o)  # [M, n, frames]
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(n * length / o)
    return y[:, :target].reshape(*shape[:-1], target)
