"""Which characters are Japanese, and ``--clean-japanese``: text cut down to them.

:func:`clean_japanese` keeps

* kana: hiragana, katakana (with ``ー`` and ``・``), the katakana extension and
  half-width katakana;
* kanji (the CJK unified ideographs, extension A and beyond, the compatibility
  block) and ``々 〆 〇``;
* punctuation: Japanese (the CJK symbols block: ``、。「」『』〜`` ...; the
  full-width forms of ASCII punctuation), general punctuation (``… ‥ — ' "``)
  and ASCII punctuation;
* whitespace (left as it is, not counted).

Everything else (Latin letters, full-width Latin, digits, other scripts,
symbols) is removed and counted per character, so a song's report can say what
its lyrics lost (scat syllables such as ``LA BA DA`` written in Latin letters).
"""

from __future__ import annotations

import string
from collections import Counter

_KANA = ((0x3041, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF65, 0xFF9F))
_KANJI = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
_PUNCTUATION = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (also 々 〆 〇)
    (0x2010, 0x2027),  # dashes, quotes, … ‥
    (0xFF01, 0xFF0F),  # full-width ! " # ... /
    (0xFF1A, 0xFF20),  # full-width : ; < = > ? @
    (0xFF3B, 0xFF40),  # full-width [ \ ] ^ _ `
    (0xFF5B, 0xFF64),  # full-width { | } ~ and half-width 「」、｡
)
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _in(ch: str, ranges) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in ranges)


def is_kana(ch: str) -> bool:
    return _in(ch, _KANA)


def is_kanji(ch: str) -> bool:
    return _in(ch, _KANJI) or ch in "々〆〇"


def is_japanese_letter(ch: str) -> bool:
    """A character that is read aloud in Japanese: kana (not ``ー``/``・`` alone) or kanji."""
    return (is_kana(ch) and ch not in "ー・･") or is_kanji(ch)


def is_kept(ch: str) -> bool:
    """Kept by :func:`clean_japanese` (see the module docstring)."""
    return ch.isspace() or ch in _ASCII_PUNCTUATION or is_kana(ch) or is_kanji(ch) or _in(ch, _PUNCTUATION)


def has_japanese(text: str) -> bool:
    """True when ``text`` holds at least one kana or kanji that is read aloud."""
    return any(is_japanese_letter(ch) for ch in text)


def clean_japanese(text: str) -> tuple[str, Counter]:
    """``(kept text, Counter of removed characters)``."""
    kept, removed = [], Counter()
    for ch in text:
        if is_kept(ch):
            kept.append(ch)
        else:
            removed[ch] += 1
    return "".join(kept), removed


def describe_removed(removed: Counter, limit: int = 8) -> str:
    """``"12 (a x5, l x4, d x3)"`` for a report column; ``"0"`` when nothing was removed."""
    total = sum(removed.values())
    if not total:
        return "0"
    items = [f"{ch} x{n}" if n > 1 else ch for ch, n in sorted(removed.items(), key=lambda kv: (-kv[1], kv[0]))]
    shown = ", ".join(items[:limit]) + (f", +{len(items) - limit} more" if len(items) > limit else "")
    return f"{total} ({shown})"
