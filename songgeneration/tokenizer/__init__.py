"""Audio tokenizers of SongGeneration: the interface, the registry and the mini stand-in.

``load_tokenizer(name, path, device)`` builds a registered tokenizer; see
:mod:`songgeneration.tokenizer.base` for the shapes and the frame rule and
:mod:`songgeneration.tokenizer.standin` for the "mini" tokenizer.
"""

from songgeneration.tokenizer.base import (
    CODE_SIZE,
    EOS_ID,
    FRAME_RATE,
    HOP_SAMPLES,
    PAD_ID,
    SAMPLE_RATE,
    AudioTokenizer,
    as_stereo,
    check_codes,
    known_tokenizers,
    load_tokenizer,
    num_frames,
    register,
    tokenizer_class,
    trim_at_eos,
)
from songgeneration.tokenizer.standin import MiniTokenizer, read_stereo_48k, train_codebook

__all__ = [
    "CODE_SIZE",
    "EOS_ID",
    "FRAME_RATE",
    "HOP_SAMPLES",
    "PAD_ID",
    "SAMPLE_RATE",
    "AudioTokenizer",
    "MiniTokenizer",
    "as_stereo",
    "check_codes",
    "known_tokenizers",
    "load_tokenizer",
    "num_frames",
    "read_stereo_48k",
    "register",
    "tokenizer_class",
    "train_codebook",
    "trim_at_eos",
]
