"""A song's lead vocal as phrase clips: the training data of a phone recognizer for singing.

The score says where the lead sings: its syllables (:func:`songbloom.data.phrases.syllables`,
a tied or melisma note lengthening the syllable before) are grouped into phrases at
silences of at least ``phrase_rest`` seconds (the rule that puts a ``,`` into the lyrics,
:func:`songbloom.data.phrases.boundary`). A phrase's clip runs from its first syllable's
start to its last syllable's end, widened by ``pad`` seconds on each side but never past
the middle of the silence to the next phrase (nor outside the recording). Its text is the
phrase's syllables joined, as the score writes them (kana in a ``_SVS`` score), cut down
to Japanese characters (:func:`songbloom.data.japanese.clean_japanese`).
"""

from __future__ import annotations

from dataclasses import dataclass

from songbloom.data.japanese import clean_japanese
from songbloom.data.lead import find_lead, lead_notes
from songbloom.data.musicxml import Score
from songbloom.data.phrases import DEFAULT_PHRASE_REST, EPSILON, Syllable, syllables

DEFAULT_PAD = 0.15  # seconds of audio kept before and after a phrase's notes


@dataclass(frozen=True)
class Phrase:
    """Sung syllables between two rests: ``start``/``end`` of its notes, ``clip_start``/``clip_end``
    of its audio clip (seconds), ``text`` its syllables joined and ``removed`` what cleaning dropped."""

    start: float
    end: float
    text: str
    syllables: int
    clip_start: float
    clip_end: float
    removed: str = ""


def group_phrases(sylls: list[Syllable], phrase_rest: float = DEFAULT_PHRASE_REST) -> list[list[Syllable]]:
    """Syllables split into phrases at silences of at least ``phrase_rest`` seconds."""
    groups: list[list[Syllable]] = []
    for s in sylls:
        if groups and s.start - groups[-1][-1].end < phrase_rest - EPSILON:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def clip_bounds(spans: list[tuple[float, float]], pad: float, total: float) -> list[tuple[float, float]]:
    """Each ``(start, end)`` widened by ``pad``, not past the middle of the gap to a neighbour nor
    outside ``[0, total]``."""
    out = []
    for i, (start, end) in enumerate(spans):
        lo = max(0.0, start - pad)
        hi = min(total, end + pad)
        if i > 0:
            lo = max(lo, (spans[i - 1][1] + start) / 2)
        if i + 1 < len(spans):
            hi = min(hi, (end + spans[i + 1][0]) / 2)
        lo = min(lo, total)
        out.append((lo, max(lo, hi)))
    return out


def score_phrases(score: Score, total: float, phrase_rest: float = DEFAULT_PHRASE_REST, pad: float = DEFAULT_PAD,
                  where: str = "") -> list[Phrase]:
    """The lead's phrases of ``score`` with their clips in a recording of ``total`` seconds (module
    docstring); raises :class:`~songbloom.data.lead.LeadError` without a lead part with lyrics."""
    groups = group_phrases(syllables(lead_notes(find_lead(score, where))), phrase_rest)
    spans = [(g[0].start, g[-1].end) for g in groups]
    out = []
    for g, (start, end), (lo, hi) in zip(groups, spans, clip_bounds(spans, pad, total), strict=True):
        text, removed = clean_japanese("".join(s.text for s in g))
        out.append(Phrase(start, end, "".join(text.split()), len(g), lo, hi,
                          "".join(sorted(removed.elements()))))
    return out
