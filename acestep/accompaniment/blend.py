"""Latent blending: mix generated latents with a reference accompaniment's latents.

ACE-Step latents are [B, 8, 16, T]: the 16 rows of the height axis come from the DCAE's 128-bin
log-mel input (Slaney mel scale, 40–16000 Hz, bin 0 lowest) downsampled 8×, so row ``r`` stands,
approximately (the encoder's convolutions overlap neighbouring rows), for mel bins ``8r … 8r+7``.
:func:`row_edges_hz` gives each row's frequency span: the boundary between rows ``r−1`` and ``r``
lies halfway (on the mel scale) between the centres of bins ``8r−1`` and ``8r``.

:func:`blend_latents` computes ``(1 − ratio)·generated + ratio·reference`` on the chosen rows (all
rows without a band list) and leaves the other rows untouched; frames past the reference's end
stay as generated. :func:`parse_bands` reads band lists such as ``0-2`` (rows 0, 1 and 2),
``0,5-7`` or ``40-250Hz`` (every row whose span overlaps 40–250 Hz; ``k`` for kHz: ``2k-4kHz``).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from acestep.dcae.mel import hz_to_slaney_mel, slaney_mel_to_hz

LATENT_ROWS = 16
MEL_BINS = 128
MEL_FMIN = 40.0
MEL_FMAX = 16000.0
BINS_PER_ROW = MEL_BINS // LATENT_ROWS


def row_edges_hz() -> np.ndarray:
    """[17] boundaries in Hz: row ``r`` spans ``edges[r] … edges[r+1]`` (first 40 Hz, last 16 kHz)."""
    lo, hi = hz_to_slaney_mel(np.array(MEL_FMIN)), hz_to_slaney_mel(np.array(MEL_FMAX))
    step = (hi - lo) / (MEL_BINS + 1)  # bin k's centre is at lo + (k + 1)·step
    inner = lo + (np.arange(1, LATENT_ROWS) * BINS_PER_ROW + 0.5) * step
    edges = slaney_mel_to_hz(np.concatenate([[lo], inner, [hi]]))
    edges[0], edges[-1] = MEL_FMIN, MEL_FMAX
    return edges


def _hz(text: str) -> float:
    text = text.strip().lower()
    scale = 1000.0 if text.endswith("k") else 1.0
    return float(text.rstrip("k")) * scale


_ROWS = re.compile(r"^(\d+)(?:-(\d+))?$")
_HZ = re.compile(r"^([\d.]+k?)(?:hz)?-([\d.]+k?)hz$")


def parse_bands(spec: str) -> list[int]:
    """Sorted latent rows of a band list (see the module docstring); ValueError names the bad item."""
    rows: set[int] = set()
    edges = row_edges_hz()
    for item in spec.replace(" ", "").split(","):
        low = item.lower()
        if not item:
            raise ValueError(f"empty item in band list {spec!r}")
        match = _ROWS.match(low)
        if match:
            a = int(match.group(1))
            b = int(match.group(2)) if match.group(2) is not None else a
            if not 0 <= a <= b < LATENT_ROWS:
                raise ValueError(f"band {item!r}: rows must satisfy 0 <= first <= last <= {LATENT_ROWS - 1}")
            rows.update(range(a, b + 1))
            continue
        match = _HZ.match(low)
        if not match:
            raise ValueError(f"band {item!r}: expected rows (e.g. 0-2) or a frequency range (e.g. 40-250Hz)")
        try:
            f0, f1 = _hz(match.group(1)), _hz(match.group(2))
        except ValueError:
            raise ValueError(f"band {item!r}: not a number") from None
        if not f0 < f1:
            raise ValueError(f"band {item!r}: the lower frequency must be below the upper one")
        hit = [r for r in range(LATENT_ROWS) if edges[r] < f1 and edges[r + 1] > f0]
        if not hit:
            raise ValueError(f"band {item!r} lies outside the latent's {MEL_FMIN:g}-{MEL_FMAX:g} Hz")
        rows.update(hit)
    return sorted(rows)


def blend_latents(generated: torch.Tensor, reference: torch.Tensor, ratio: float,
                  rows: list[int] | None = None) -> torch.Tensor:
    """``generated`` [B, C, 16, T] with the chosen rows mixed toward ``reference`` [B or 1, C, 16, T']."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"blend ratio must lie in [0, 1], got {ratio}")
    if generated.shape[1:3] != reference.shape[1:3]:
        raise ValueError(f"latents {list(generated.shape)} and reference {list(reference.shape)} differ in "
                         "channels or height")
    out = generated.clone()
    frames = min(generated.shape[-1], reference.shape[-1])
    index = list(range(generated.shape[2])) if rows is None else list(rows)
    ref = reference[..., index, :frames].to(out)
    out[..., index, :frames] = (1.0 - ratio) * out[..., index, :frames] + ratio * ref
    return out
