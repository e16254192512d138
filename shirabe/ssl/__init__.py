"""Self-supervised audio encoders: MuQ music features at 25 Hz.

``MuQ.from_pretrained(dir)`` (or :func:`load_muq`) loads a released MuQ checkpoint directory
(``config.json`` + ``model.safetensors``, e.g. ``OpenMuQ/MuQ-large-msd-iter``) strictly and in
eval mode. ``muq(wav_24k)`` on (B, N) audio gives :class:`MuQOutput` (``last_hidden_state``
(B, T, D) and the ``hidden_states`` tuple); ``muq.encode(wav, sample_rate, layers=...)`` takes
one signal at any rate, mono or multichannel, of any length (processed in overlapping
windows). ``num_frames(N)`` is the frame count T of N samples at 24 kHz.
"""

from shirabe.ssl.conformer import ConformerEncoder
from shirabe.ssl.muq_config import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    MUQ_FRAME_RATE,
    MUQ_HOP_LENGTH,
    MUQ_N_FFT,
    MUQ_N_MELS,
    MUQ_SAMPLE_RATE,
    MUQ_SAMPLES_PER_FRAME,
    MuQConfig,
)
from shirabe.ssl.muq_encode import Window, encode, plan_windows, to_mono_24k
from shirabe.ssl.muq_load import TRAINING_ONLY_PATTERNS, is_training_only_key, load_muq
from shirabe.ssl.muq_mel import STFT_BACKENDS, muq_mel_db, muq_power_spectrum
from shirabe.ssl.muq_model import Conv2dSubsampling, MuQ, MuQOutput, Res2d, num_frames

__all__ = [
    "DEFAULT_OVERLAP_SECONDS",
    "DEFAULT_WINDOW_SECONDS",
    "MUQ_FRAME_RATE",
    "MUQ_HOP_LENGTH",
    "MUQ_N_FFT",
    "MUQ_N_MELS",
    "MUQ_SAMPLES_PER_FRAME",
    "MUQ_SAMPLE_RATE",
    "STFT_BACKENDS",
    "TRAINING_ONLY_PATTERNS",
    "ConformerEncoder",
    "Conv2dSubsampling",
    "MuQ",
    "MuQConfig",
    "MuQOutput",
    "Res2d",
    "Window",
    "encode",
    "is_training_only_key",
    "load_muq",
    "muq_mel_db",
    "muq_power_spectrum",
    "num_frames",
    "plan_windows",
    "to_mono_24k",
]
