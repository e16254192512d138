"""Audio input/output and resampling."""

from shirabe.audio.io import AUDIO_FORMATS, load_audio, save_audio
from shirabe.audio.resample import resample

__all__ = ["AUDIO_FORMATS", "load_audio", "resample", "save_audio"]
