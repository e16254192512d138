"""Speaker embeddings: a CAM++-compatible encoder (192-d) and cosine similarity.

``load_campplus(path)`` loads ``campplus_cn_common.bin`` strictly;
``embed(audio, sr)`` gives the utterance embedding Seed-VC uses as its style
vector; ``cosine_similarity(a, b)`` compares two of them.
"""

from shirabe.speaker.campplus import CAMPPlus
from shirabe.speaker.encoder import (
    CAMPPLUS_FILENAME,
    SpeakerEncoder,
    campplus_features,
    cosine_similarity,
    default_campplus_path,
    embed,
    load_campplus,
)
from shirabe.speaker.fbank import kaldi_fbank

__all__ = [
    "CAMPPLUS_FILENAME",
    "CAMPPlus",
    "SpeakerEncoder",
    "campplus_features",
    "cosine_similarity",
    "default_campplus_path",
    "embed",
    "kaldi_fbank",
    "load_campplus",
]
