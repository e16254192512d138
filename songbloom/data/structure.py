"""SongBloom's structure tags, and the score marks (rehearsal marks, section words) that name them.

A mark's text is normalised (NFKC, case folded; spaces, digits, primes,
brackets and ``- _ . : /`` dropped: ``"Verse 2"`` -> ``verse``, ``"[Chorus]"``
-> ``chorus``, ``"Ａメロ"`` -> ``aメロ``, ``"A'"`` -> ``a``) and looked up here:

=================  ==============================================================
tag                normalised words
=================  ==============================================================
``[verse]``        verse, aメロ, bメロ, prechorus, pre, ヴァース, バース, 歌
``[chorus]``       chorus, refrain, hook, サビ, 大サビ, 落ちサビ, コーラス
``[bridge]``       bridge, middle, cメロ, dメロ, ブリッジ
``[intro]``        intro, introduction, イントロ, 前奏
``[outro]``        outro, ending, coda, アウトロ, 後奏, エンディング
``[inst]``         inst, instrumental, interlude, solo, break, 間奏, ソロ
=================  ==============================================================

A single letter (rehearsal letters ``A``, ``B``, ``C`` ..., also ``A'`` or
``B2``) is a label without a role and counts as ``[verse]``; J-pop's ``Aメロ``
and ``Bメロ`` are verse parts, ``Cメロ`` is the bridge.

A ``<rehearsal>`` mark always starts a section: text that is not in the table
gives ``[verse]``. A ``<words>`` direction starts a section only when its text
is in the table (or a single letter), because words directions also carry
performance text (``rit.``, ``a tempo``, ``soft``) that is not a section.

``[intro]``, ``[inst]``, ``[outro]`` (and ``[silence]``) are SongBloom's
non-vocal tags: written once per second of the section, without text.
"""

from __future__ import annotations

import re
import unicodedata

VOCAL_TAGS = ("[verse]", "[chorus]", "[bridge]")
NON_VOCAL_TAGS = ("[intro]", "[inst]", "[outro]", "[silence]")
TAGS = VOCAL_TAGS + NON_VOCAL_TAGS
DEFAULT_TAG = "[verse]"

SECTION_WORDS: dict[str, tuple[str, ...]] = {
    "[verse]": ("verse", "aメロ", "bメロ", "prechorus", "pre", "ヴァース", "バース", "歌"),
    "[chorus]": ("chorus", "refrain", "hook", "サビ", "大サビ", "落ちサビ", "コーラス"),
    "[bridge]": ("bridge", "middle", "cメロ", "dメロ", "ブリッジ"),
    "[intro]": ("intro", "introduction", "イントロ", "前奏"),
    "[outro]": ("outro", "ending", "coda", "アウトロ", "後奏", "エンディング"),
    "[inst]": ("inst", "instrumental", "interlude", "solo", "break", "間奏", "ソロ"),
}
_WORD_TO_TAG = {word: tag for tag, words in SECTION_WORDS.items() for word in words}
_DROP = re.compile(r"[\s\d'\u2019\u2032\"()\[\]{}【】「」『』<>\-_.:/・,]+")


def normalize_mark(text: str) -> str:
    """The lookup key of a mark's text (see the module docstring)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def tag_of_words(text: str) -> str | None:
    """The tag a section word names, or None when it names none (performance text)."""
    key = normalize_mark(text)
    if key in _WORD_TO_TAG:
        return _WORD_TO_TAG[key]
    if len(key) == 1 and "a" <= key <= "z":
        return DEFAULT_TAG
    return None


def tag_of_rehearsal(text: str) -> str:
    """The tag a rehearsal mark starts: from the table, else ``[verse]``."""
    return tag_of_words(text) or DEFAULT_TAG


def is_non_vocal(tag: str) -> bool:
    return tag in NON_VOCAL_TAGS
