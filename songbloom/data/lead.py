"""Which part of a score is the lead vocal, and which of its voices carries the lyrics.

A choir or a cappella score holds every part; the harmony parts sing scat
syllables (``る``, ``LA BA DA``) that are not the song's lyrics, so only the
lead part is read. The rule, over each part's labels (its id, part name,
abbreviation and instrument names), normalised (NFKC, case folded; spaces,
digits and ``_ - . :`` dropped):

1. a label containing ``lead`` or ``リード`` (``Lead Vocal``, ``lead_vocal``, ``Lead``);
2. else a label containing ``melody``, ``メロディ`` or ``主旋律``, but not ``counter``;
3. else a label that is ``vocal``, ``vocals``, ``voice``, ``vo``, ``vox``,
   ``singer``, ``song``, ``ボーカル``, ``ヴォーカル``, ``歌`` or ``うた``;

never a part whose labels name percussion (``perc``, ``beatbox``, ``drum``,
``vp``, ``ボイパ``, ``パーカッション``: "Vocal Percussion" is not the lead). The
first part (in score order) that satisfies the earliest rule wins. When no
part is named so, the first part with lyrics is taken and the choice is
logged. Within the part, the voice with the most lyric notes is read.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter

from songbloom.data.musicxml import Note, Part, Score

logger = logging.getLogger(__name__)

LEAD_WORDS = ("lead", "リード")
MELODY_WORDS = ("melody", "メロディ", "主旋律")
VOCAL_NAMES = frozenset({"vocal", "vocals", "voice", "vo", "vox", "singer", "song", "ボーカル", "ヴォーカル", "歌", "うた"})
PERCUSSION_WORDS = ("perc", "beatbox", "drum", "ボイパ", "パーカッション")


class LeadError(Exception):
    """No lead part (``no lead part: ...``) or a lead without lyrics (``no lyrics in lead part: ...``)."""


def _normalize(label: str) -> str:
    return re.sub(r"[\s\d_\-.:]+", "", unicodedata.normalize("NFKC", label).casefold())


def _is_percussion(part: Part) -> bool:
    keys = [_normalize(x) for x in part.labels]
    return any(k == "vp" or any(w in k for w in PERCUSSION_WORDS) for k in keys)


def named_lead(score: Score) -> Part | None:
    """The part named as the lead (rules 1-3 of the module docstring), or None."""
    rules = (
        lambda k: any(w in k for w in LEAD_WORDS),
        lambda k: any(w in k for w in MELODY_WORDS) and "counter" not in k,
        lambda k: k in VOCAL_NAMES,
    )
    candidates = [p for p in score.parts if not _is_percussion(p)]
    for rule in rules:
        for p in candidates:
            if any(rule(_normalize(x)) for x in p.labels):
                return p
    return None


def find_lead(score: Score, where: str = "") -> Part:
    """The lead part; raises :class:`LeadError` when there is none or it has no lyrics."""
    part = named_lead(score)
    if part is not None:
        if not part.lyric_notes():
            raise LeadError(f"no lyrics in lead part: {part.describe()} has no lyric syllables")
        return part
    with_lyrics = [p for p in score.parts if p.lyric_notes()]
    if not with_lyrics:
        names = ", ".join(p.describe() for p in score.parts) or "none"
        raise LeadError(f"no lead part: no part is named as the lead and none has lyrics (parts: {names})")
    part = with_lyrics[0]
    logger.info("%sno part is named as the lead; reading the first part with lyrics, %s",
                f"{where}: " if where else "", part.describe())
    return part


def lead_notes(part: Part) -> list[Note]:
    """The notes of the part's voice with the most lyric notes (the first such voice on a tie)."""
    counts = Counter(n.voice for n in part.lyric_notes())
    order = list(dict.fromkeys(n.voice for n in part.notes))
    voice = max(order, key=lambda v: (counts[v], -order.index(v)))
    return [n for n in part.notes if n.voice == voice]
