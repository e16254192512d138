"""Which language a lyric line is in, judged by its script.

ACE-Step's lyric tokenizer prefixes every line with a language token (``[ja]``,
``[zh-cn]``, ...) and cleans the line the way that language is cleaned. The
languages it knows are :data:`LANGUAGES`.

Two rules live here:

* :func:`detect_languages` (ours, used by ``language="auto"``): one language per
  line from the characters in it, looking at the whole song for lines written
  only in Han characters (kanji/hanzi): such a line is Japanese when another line
  of the song has kana, else Chinese. A line with kana is Japanese, Hangul is
  Korean, Cyrillic Russian, Arabic script Arabic, Devanagari Hindi, Latin English
  (the Latin-script languages cannot be told apart by script: name them with
  ``language=``). A line with no letters at all (digits, punctuation) takes the
  most frequent language of the other lines, English when there is none.
* :func:`upstream_language`: the rule ACE-Step applies per line, written down to
  show its flaw: a line of only kanji is classified Chinese (LangSegment sees Han
  characters without kana as Chinese), so a Japanese song's kanji-only line turns
  into pinyin.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

# The languages the lyric vocabulary has a token for (zh is written [zh-cn]).
LANGUAGES = ("en", "de", "fr", "ru", "es", "it", "pt", "cs", "pl", "tr", "nl", "ar", "zh", "ja", "hu", "ko", "hi")

# A line that starts with a bracketed tag ([verse], [chorus], ...) is a structure line.
STRUCTURE_TAG = re.compile(r"\[.*?\]")


def is_structure_line(line: str) -> bool:
    """Whether ``line`` (stripped) starts with a ``[...]`` tag: encoded as English."""
    return STRUCTURE_TAG.match(line.strip()) is not None


def script_of(ch: str) -> str | None:
    """The script class of one character: ``kana``, ``han``, ``hangul``, ``latin``,
    ``cyrillic``, ``arabic``, ``devanagari``, or None (digits, punctuation, spaces...)."""
    cp = ord(ch)
    if 0x3041 <= cp <= 0x309F or 0x30A0 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9D:
        return None if ch in "・゠" else "kana"  # ー (U+30FC) counts as kana
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F:
        return "han"
    if ch == "々" or ch == "〆":
        return "han"
    if 0xAC00 <= cp <= 0xD7A3 or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return "hangul"
    if 0x0400 <= cp <= 0x04FF:
        return "cyrillic"
    if 0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F:
        return "arabic"
    if 0x0900 <= cp <= 0x097F:
        return "devanagari"
    if ch.isalpha() and (cp < 0x0250 or 0x1E00 <= cp <= 0x1EFF or 0xFF21 <= cp <= 0xFF5A):
        return "latin"
    return None


def script_counts(line: str) -> Counter:
    """How many characters of each script ``line`` has (see :func:`script_of`)."""
    return Counter(s for s in map(script_of, line) if s is not None)


_SCRIPT_LANGUAGE = {"kana": "ja", "hangul": "ko", "cyrillic": "ru", "arabic": "ar", "devanagari": "hi", "latin": "en"}


def _line_language(counts: Counter, song_has_kana: bool) -> str | None:
    if not counts:
        return None
    if counts["kana"]:
        return "ja"
    if counts["hangul"]:
        return "ko"
    if counts["han"]:
        return "ja" if song_has_kana else "zh"
    script = max(sorted(counts), key=lambda s: counts[s])  # sorted: ties go the same way every time
    return _SCRIPT_LANGUAGE[script]


def detect_languages(lines: Sequence[str]) -> list[str | None]:
    """Our per-line language for every line of a song (None for empty and structure lines).

    See the module doc for the rule.
    """
    counts = [None if not ln.strip() or is_structure_line(ln) else script_counts(ln) for ln in lines]
    song_has_kana = any(c is not None and c["kana"] for c in counts)
    langs = [None if c is None else _line_language(c, song_has_kana) for c in counts]
    known = Counter(lang for lang in langs if lang is not None)
    fallback = max(sorted(known), key=lambda k: known[k]) if known else "en"
    return [None if c is None else (lang or fallback) for c, lang in zip(counts, langs, strict=True)]


def upstream_language(line: str) -> str:
    """ACE-Step's per-line language: the rule it applies, for comparison.

    Characters are counted per language the way LangSegment assigns them: kana to
    ``ja``; Han characters to ``ja`` when the line also has kana, else to ``zh``;
    Hangul ``ko``, Latin ``en``, Cyrillic ``ru``, Arabic ``ar``, Devanagari ``hi``.
    The line's language is the most frequent one, or the second most frequent when
    the first is ``en``; ``en`` for a line without letters.
    """
    counts = script_counts(line)
    per_lang: Counter = Counter()
    for script, n in counts.items():
        if script == "han":
            per_lang["ja" if counts["kana"] else "zh"] += n
        else:
            per_lang[_SCRIPT_LANGUAGE[script]] += n
    ranked = sorted(per_lang, key=lambda k: (-per_lang[k], k))
    if not ranked:
        return "en"
    if ranked[0] == "en" and len(ranked) > 1:
        return ranked[1]
    return ranked[0]
