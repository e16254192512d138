"""F0 extraction (WORLD Harvest, CREPE, RMVPE) and F0-track utilities.

``extract_f0(audio, sr, method)`` resamples from the true rate to 16 kHz and
returns Hz per frame (0 = unvoiced) at 100 frames/s by default;
``resample_f0`` moves a track to another frame rate (e.g. Seed-VC's mel rate,
``SEEDVC_MEL_FPS`` = 22050 / 256); ``shift_semitones`` and ``auto_f0_adjust``
transpose it.
"""

from shirabe.pitch.extract import DEFAULT_FRAME_RATE, METHODS, extract_f0, num_frames
from shirabe.pitch.f0 import (
    SEEDVC_MEL_FPS,
    auto_f0_adjust,
    auto_shift_semitones,
    median_log_f0,
    resample_f0,
    shift_semitones,
)

__all__ = [
    "DEFAULT_FRAME_RATE",
    "METHODS",
    "SEEDVC_MEL_FPS",
    "auto_f0_adjust",
    "auto_shift_semitones",
    "extract_f0",
    "median_log_f0",
    "num_frames",
    "resample_f0",
    "shift_semitones",
]
