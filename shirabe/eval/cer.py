"""Character error rate (CER) of a transcript against the text that was synthesised.

Both strings are normalised first (:func:`normalize_for_cer`): Unicode NFKC
(full-width Latin and digits become half-width, half-width kana full-width),
lower case, and every whitespace, punctuation and symbol character removed, so
that ``「今日は、晴れ。」`` and ``今日は晴れ`` compare equal. With ``kana=True``
both sides are further read as katakana by the Japanese frontend
(pyopenjtalk), which makes the score blind to the choice between kanji and
kana spellings an ASR model makes.

``CER = (substitutions + deletions + insertions) / len(reference)``, from the
Levenshtein alignment; over a set of utterances the edits and reference
lengths are summed before dividing (:func:`corpus_cer`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def normalize_for_cer(text: str, kana: bool = False) -> str:
    """NFKC, lower case, no whitespace/punctuation/symbols; katakana reading if ``kana``."""
    text = unicodedata.normalize("NFKC", text).lower()
    if kana and text:
        import pyopenjtalk

        text = unicodedata.normalize("NFKC", pyopenjtalk.g2p(text, kana=True))
    return "".join(c for c in text if unicodedata.category(c)[0] not in "ZPSC")


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance (unit costs) between two sequences."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i]
        for j, h in enumerate(hyp, start=1):
            cur.append(min(prev[j - 1] + (r != h), prev[j] + 1, cur[j - 1] + 1))
        prev = cur
    return prev[-1]


def cer(ref: str, hyp: str, kana: bool = False) -> tuple[float, int, int]:
    """``(CER, edits, reference length)`` after :func:`normalize_for_cer`; CER is NaN for an empty reference."""
    r, h = normalize_for_cer(ref, kana), normalize_for_cer(hyp, kana)
    edits = edit_distance(r, h)
    return (edits / len(r) if r else float("nan")), edits, len(r)


def corpus_cer(pairs: Iterable[tuple[str, str]], kana: bool = False) -> float:
    """Summed edits over summed reference lengths for ``(reference, hypothesis)`` pairs."""
    edits = length = 0
    for ref, hyp in pairs:
        _, e, n = cer(ref, hyp, kana)
        edits += e
        length += n
    return edits / length if length else float("nan")
