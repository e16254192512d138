"""SongBloom lyric strings: structure tags, ``.`` and ``,`` separators, Japanese text.

The canonical form this package writes has every item separated by one
space::

    [intro] [intro] . [verse] かえるのうたが , きこえてくるよ . [chorus] ぐわぐわ .

A ``.`` ends a sentence, a ``,`` a phrase inside it; each section (a tag and
its text) ends with ``.``, as does the song. Non-vocal tags (``[intro]``,
``[inst]``, ``[outro]``, ``[silence]``) stand alone, repeated once per second.

:func:`parse_lyrics` reads lyrics written in that format (any spacing;
Japanese ``。！？`` count as ``.``, ``、，`` as ``,``) or as plain text, one
sung line per line (``[verse]`` then ``.`` after each line). Either way it
returns the sections, which :func:`format_lyrics` writes back canonically.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from songbloom.data.japanese import clean_japanese, has_japanese
from songbloom.data.structure import DEFAULT_TAG, TAGS, is_non_vocal

SENTENCE = "."
PHRASE = ","
SENTENCE_MARKS = frozenset(".。．!！?？")
PHRASE_MARKS = frozenset(",、，")
_ITEM = re.compile(r"\[[^\[\]\s]+\]|[.。．!！?？,、，]|[^\[\].。．!！?？,、，]+")
_TAG = re.compile(r"\[[^\[\]\s]+\]")


def stronger(a: str, b: str) -> str:
    """The stronger of two boundary marks (``.`` over ``,`` over none)."""
    order = {"": 0, PHRASE: 1, SENTENCE: 2}
    return a if order[a] >= order[b] else b


@dataclass
class Section:
    """A structure tag and its phrases; ``marks[i]`` follows ``phrases[i]`` (``,`` or ``.``).

    ``start``/``end`` are seconds in the song when known (from a score), else None.
    ``repeat`` is how many times a non-vocal tag is written.
    """

    tag: str
    phrases: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    repeat: int = 1

    @property
    def vocal(self) -> bool:
        return bool(self.phrases)


def format_lyrics(sections: list[Section]) -> str:
    """The canonical lyric string (module docstring); the last mark of a section is ``.``."""
    items: list[str] = []
    for s in sections:
        if not s.phrases:
            items.extend([s.tag] * max(1, s.repeat))
            items.append(SENTENCE)
            continue
        items.append(s.tag)
        for i, (phrase, mark) in enumerate(zip(s.phrases, s.marks, strict=True)):
            items.append(phrase)
            items.append(SENTENCE if i == len(s.phrases) - 1 else (mark or PHRASE))
    return " ".join(items)


def structure_of(sections: list[Section]) -> list[dict]:
    """One ``{"tag", "start", "end"}`` per tag written, in order (non-vocal repeats share their section evenly)."""
    out = []
    for s in sections:
        n = 1 if s.phrases else max(1, s.repeat)
        for k in range(n):
            if s.start is None or s.end is None:
                start = end = None
            else:
                step = (s.end - s.start) / n
                start, end = round(s.start + k * step, 3), round(s.start + (k + 1) * step, 3)
            out.append({"tag": s.tag, "start": start, "end": end})
    return out


def is_tagged(text: str) -> bool:
    """True when ``text`` holds a known structure tag (SongBloom format), else it is read as plain lines."""
    return any(t.lower() in TAGS for t in _TAG.findall(text))


def parse_lyrics(text: str) -> list[Section]:
    """Sections of SongBloom-format or plain lyrics (module docstring).

    In SongBloom format, text before the first tag goes to a ``[verse]``; an
    unknown ``[tag]`` is kept as text (the G2P check then names it). Line breaks
    inside a section end a sentence, like ``.``.
    """
    if not is_tagged(text):
        lines = [" ".join(line.split()) for line in text.splitlines()]
        text = f"{DEFAULT_TAG} " + " . ".join(line for line in lines if line) if any(lines) else ""
    sections: list[Section] = []
    for line in text.splitlines():
        for item in _ITEM.findall(line):
            item = item.strip()
            if not item:
                continue
            if item.lower() in TAGS:
                tag = item.lower()
                if sections and not sections[-1].phrases and sections[-1].tag == tag and is_non_vocal(tag):
                    sections[-1].repeat += 1
                else:
                    sections.append(Section(tag))
                continue
            if not sections:
                sections.append(Section(DEFAULT_TAG))
            s = sections[-1]
            if item in SENTENCE_MARKS or item in PHRASE_MARKS:
                if s.marks:
                    s.marks[-1] = stronger(s.marks[-1], SENTENCE if item in SENTENCE_MARKS else PHRASE)
                continue
            if s.phrases and s.marks[-1] == "":
                s.phrases[-1] += " " + " ".join(item.split())
            else:
                s.phrases.append(" ".join(item.split()))
                s.marks.append("")
        if sections and sections[-1].marks and not sections[-1].marks[-1]:
            sections[-1].marks[-1] = SENTENCE  # the end of a line ends a sentence
    for s in sections:
        s.marks = [m or SENTENCE for m in s.marks]
    return sections


def _has_content(text: str) -> bool:
    """Something to sing: a character that is neither punctuation nor space."""
    return any(not (ch.isspace() or unicodedata.category(ch).startswith("P")) for ch in text)


def clean_sections(sections: list[Section]) -> Counter:
    """Apply :func:`~songbloom.data.japanese.clean_japanese` to every phrase, in place.

    An unknown ``[tag]`` written in the text is left whole (the G2P check then
    names it). A phrase left with nothing to sing (only punctuation) goes, its
    mark merging into the phrase before (the stronger mark wins). Returns the
    removed characters.
    """
    removed: Counter = Counter()
    for s in sections:
        phrases, marks = [], []
        for phrase, mark in zip(s.phrases, s.marks, strict=True):
            pieces = []
            for piece in re.split(r"(\[[^\[\]\s]+\])", phrase):
                if _TAG.fullmatch(piece):  # an unknown [tag] stays whole, for the G2P check to name
                    pieces.append(piece)
                    continue
                kept, lost = clean_japanese(piece)
                removed += lost
                pieces.append(kept)
            kept = "".join(pieces)
            kept = " ".join(kept.split())
            if _has_content(kept):
                phrases.append(kept)
                marks.append(mark)
            elif marks:
                marks[-1] = stronger(marks[-1], mark)
        s.phrases, s.marks = phrases, marks
    return removed


def lyrics_have_japanese(sections: list[Section]) -> bool:
    return any(has_japanese(p) for s in sections for p in s.phrases)


def count_phrases(sections: list[Section]) -> int:
    return sum(len(s.phrases) for s in sections)
