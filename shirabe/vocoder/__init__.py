"""Mel vocoders: Vocos (weight-compatible, ONNX-exportable ISTFT), BigVGAN v2 and a Griffin-Lim fallback.

``load_vocoder(path)`` is what inference binaries call: a Vocos model from a
directory holding ``config.yaml`` + ``pytorch_model.bin``, or, when no path is
given, Griffin-Lim with a warning. Both expose ``decode(mel (B, 100, T)) -> (B, S)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shirabe.vocoder.bigvgan import (
    BigVGAN,
    bigvgan_mel,
    load_bigvgan,
    load_bigvgan_dir,
    load_bigvgan_vocoder,
)
from shirabe.vocoder.griffin_lim import GriffinLim, griffin_lim
from shirabe.vocoder.istft import ISTFT
from shirabe.vocoder.vocos import (
    VOCOS_MEL_24KHZ_CONFIG,
    Vocos,
    build_vocos,
    load_vocos,
    load_vocos_dir,
    read_vocos_config,
)

logger = logging.getLogger(__name__)


def load_vocoder(vocoder_path: str | Path | None = None, trust: bool = False) -> Vocos | GriffinLim:
    """Vocos from ``vocoder_path`` (a directory), or Griffin-Lim with a warning when None."""
    if vocoder_path is None:
        logger.warning(
            "no vocoder given (--vocoder-path): using Griffin-Lim, which sounds much worse than Vocos; "
            "pass a directory with the vocos-mel-24khz config.yaml and pytorch_model.bin"
        )
        return GriffinLim().eval()
    return load_vocos_dir(vocoder_path, trust=trust)


__all__ = [
    "BigVGAN",
    "bigvgan_mel",
    "load_bigvgan",
    "load_bigvgan_dir",
    "load_bigvgan_vocoder",
    "ISTFT",
    "VOCOS_MEL_24KHZ_CONFIG",
    "GriffinLim",
    "Vocos",
    "build_vocos",
    "griffin_lim",
    "load_vocoder",
    "load_vocos",
    "load_vocos_dir",
    "read_vocos_config",
]
