"""A score's lead part -> SongBloom lyrics: syllables joined into phrases, rests into punctuation.

The rule (:func:`boundary`), applied to the silence between two syllables of
one section (a rest, consecutive rests, or any other gap in the lead voice):

=====================================  =======
silence                                mark
=====================================  =======
shorter than ``phrase_rest``           none: the syllables join (no space)
``phrase_rest`` <= s < ``sentence_rest``  `` , ``
``sentence_rest`` or longer            `` . ``
the end of a section (and the song)    `` . ``, then the next tag
=====================================  =======

Defaults: ``phrase_rest`` 0.25 s is an eighth rest at 120 BPM (0.3-0.5 s at
the 60-100 BPM of most songs, 0.19 s only above 160 BPM), the shortest rest a
singer breathes in between phrases; a sixteenth rest (0.09-0.25 s between 60
and 160 BPM) is articulation inside a phrase. ``sentence_rest`` 1.0 s is two
beats at 120 BPM (a half rest): a full stop between lines rather than a breath.

A syllable is a lead note with a lyric; a note tied from the one before, a
melisma note (``<extend/>`` or ``_``) and a note without a lyric that follows
straight on lengthen the syllable before, so the silence after it is measured
from its real end.

Sections come from the score's marks (:mod:`songbloom.data.structure`); a score
without marks is one ``[verse]``. Lyrics sung before the first mark form a
``[verse]`` of their own; otherwise the first section starts the song. After
``--clean-japanese`` (which may empty phrases or whole sections),
:func:`settle_sections` gives every section without lyrics a non-vocal tag
(``[intro]`` at the start, ``[outro]`` at the end, ``[inst]`` between; an
``Intro``/``Interlude``/``Outro`` mark keeps its own), written once per second
(at least once), and a section with lyrics under a non-vocal mark becomes
``[verse]``: SongBloom's non-vocal tags carry no text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from songbloom.data.lead import find_lead, lead_notes
from songbloom.data.lyrics import PHRASE, SENTENCE, Section, clean_sections
from songbloom.data.musicxml import Mark, Note, Score
from songbloom.data.structure import DEFAULT_TAG, is_non_vocal, tag_of_rehearsal, tag_of_words

DEFAULT_PHRASE_REST = 0.25
DEFAULT_SENTENCE_REST = 1.0
EPSILON = 1e-6  # seconds: tempo arithmetic leaves 0.25 as 0.2499999...
MIN_SECTION = 0.5  # seconds: a shorter section without lyrics is dropped


def boundary(rest: float, section_end: bool, phrase_rest: float = DEFAULT_PHRASE_REST,
             sentence_rest: float = DEFAULT_SENTENCE_REST) -> str:
    """The mark after a syllable followed by ``rest`` seconds of silence: ``""``, ``","`` or ``"."``."""
    if section_end or rest >= sentence_rest - EPSILON:
        return SENTENCE
    if rest >= phrase_rest - EPSILON:
        return PHRASE
    return ""


@dataclass
class Syllable:
    start: float
    end: float
    text: str


def syllables(notes: list[Note]) -> list[Syllable]:
    """The sung syllables of one voice, each lasting until its last tied/melisma note ends."""
    out: list[Syllable] = []
    for n in notes:
        if n.rest:
            continue
        if n.lyric and not n.melisma:
            out.append(Syllable(n.start, n.end, n.lyric))
        elif out and (n.tie_stop or n.melisma or n.start <= out[-1].end + EPSILON):
            out[-1].end = max(out[-1].end, n.end)
    return out


def section_starts(marks: list[Mark]) -> list[tuple[float, str]]:
    """(seconds, tag) of every mark that starts a section; at one place a table word beats a default."""
    out: list[tuple[float, str, bool]] = []
    for m in marks:
        known = tag_of_words(m.text)
        tag = known if m.kind == "words" else tag_of_rehearsal(m.text)
        if tag is None:
            continue
        if out and abs(out[-1][0] - m.time) < EPSILON:
            if known and not out[-1][2]:
                out[-1] = (out[-1][0], tag, True)
            continue
        out.append((m.time, tag, known is not None))
    return [(t, tag) for t, tag, _ in out]


def build_sections(sylls: list[Syllable], starts: list[tuple[float, str]], song_end: float,
                   phrase_rest: float = DEFAULT_PHRASE_REST,
                   sentence_rest: float = DEFAULT_SENTENCE_REST) -> list[Section]:
    """Sections with phrases and marks (module docstring), before cleaning and settling."""
    starts = list(starts) or [(0.0, DEFAULT_TAG)]
    if sylls and sylls[0].start < starts[0][0] - EPSILON:
        starts.insert(0, (0.0, DEFAULT_TAG))
    else:
        starts[0] = (0.0, starts[0][1])
    end = max([song_end] + [s.end for s in sylls])
    sections = []
    for i, (t, tag) in enumerate(starts):
        t_next = starts[i + 1][0] if i + 1 < len(starts) else end
        sections.append(Section(tag, start=round(t, 3), end=round(t_next, 3)))
    k = 0
    for i, section in enumerate(sections):
        t_next = starts[i + 1][0] if i + 1 < len(starts) else float("inf")
        inside = []
        while k < len(sylls) and sylls[k].start < t_next - EPSILON:
            inside.append(sylls[k])
            k += 1
        for j, syl in enumerate(inside):
            if section.phrases and section.marks[-1] == "":
                section.phrases[-1] += syl.text
            else:
                section.phrases.append(syl.text)
                section.marks.append("")
            last = j == len(inside) - 1
            rest = 0.0 if last else inside[j + 1].start - syl.end
            section.marks[-1] = boundary(rest, last, phrase_rest, sentence_rest)
    return sections


def settle_sections(sections: list[Section]) -> list[Section]:
    """Non-vocal tags for sections without lyrics, ``[verse]`` for lyrics under a non-vocal mark (docstring)."""
    timed = [s for s in sections if s.phrases or (s.end - s.start) >= MIN_SECTION]
    for i, s in enumerate(timed):
        if s.phrases:
            if is_non_vocal(s.tag):
                s.tag = DEFAULT_TAG
            continue
        if not is_non_vocal(s.tag):
            s.tag = "[intro]" if i == 0 else "[outro]" if i == len(timed) - 1 else "[inst]"
        s.repeat = max(1, round(s.end - s.start))
    return timed


@dataclass
class ScoreLyrics:
    sections: list[Section]
    removed: Counter
    lead: str  # the part read, for the log
    verses: int  # lyric lines the lead carries (only the first is read)


def lyrics_from_score(score: Score, phrase_rest: float = DEFAULT_PHRASE_REST,
                      sentence_rest: float = DEFAULT_SENTENCE_REST, clean: bool = False,
                      where: str = "") -> ScoreLyrics:
    """The lead part's lyrics as sections; raises :class:`~songbloom.data.lead.LeadError`."""
    part = find_lead(score, where)
    sections = build_sections(syllables(lead_notes(part)), section_starts(score.marks), score.end,
                              phrase_rest, sentence_rest)
    removed = clean_sections(sections) if clean else Counter()
    return ScoreLyrics(settle_sections(sections), removed, part.describe(), part.verses)
