"""What a lyric string says, for scoring: the sung text and the sections with their symbol counts.

The lyrics are SongBloom's (``[verse] かえるのうたが , きこえてくるよ . [inst] [inst] .``,
:mod:`songbloom.data.lyrics`). :func:`sung_text` keeps the phrases of the vocal sections,
joined by ``、``, without tags: what the phone recognizer and the ASR compare against.
:func:`section_symbols` gives each section's vocal flag and SongBloom symbol count (its
tag, phonemes and separators as the G2P writes them; a non-vocal tag counts once per
repeat), the weights of the structure layout (:mod:`songbloom.eval.structure`).
"""

from __future__ import annotations

from songbloom.data.lyrics import Section, format_lyrics, parse_lyrics


def vocal_phrases(sections: list[Section]) -> list[str]:
    return [p for s in sections if s.vocal for p in s.phrases]


def sung_text(lyrics: str) -> str:
    """The phrases of the vocal sections of ``lyrics``, joined by ``、`` (empty when nothing is sung)."""
    return "、".join(vocal_phrases(parse_lyrics(lyrics)))


def section_symbols(lyrics: str) -> list[tuple[str, bool, int]]:
    """``(tag, vocal, symbol count)`` of each section of ``lyrics``, in order."""
    from songbloom.g2p import lyrics_to_phonemes

    out = []
    for s in parse_lyrics(lyrics):
        count = len(lyrics_to_phonemes(format_lyrics([s]), allow_unknown=True).symbols)
        out.append((s.tag, s.vocal, count))
    return out
