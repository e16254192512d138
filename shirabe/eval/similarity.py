"""Speaker similarity (SECS): cosine of two CAM++ utterance embeddings."""

from __future__ import annotations

from shirabe.speaker import SpeakerEncoder, cosine_similarity, embed


def speaker_similarity(a, b, sr: int, sr_b: int | None = None, encoder: SpeakerEncoder | None = None) -> float:
    """Cosine similarity of the CAM++ embeddings of audio ``a`` (at ``sr``) and ``b`` (at ``sr_b``, default ``sr``).

    ``encoder`` defaults to :func:`shirabe.speaker.load_campplus`'s default weights.
    """
    return cosine_similarity(embed(a, sr, encoder), embed(b, sr if sr_b is None else sr_b, encoder))
