"""Cleaning of non-Japanese lyric lines before the lyric tokenizer (Japanese: :mod:`acestep.text.romaji`).

* Latin, Cyrillic, Arabic and Devanagari scripts (en de fr ru es it pt cs pl tr nl ar hu hi): NFC,
  lower case (Turkish dotted capital I → ``i``), double quotes removed, ``& @ %`` spelled out in
  English lines, runs of whitespace collapsed. Digits stay digits (no number expansion).
* ``zh``: NFKC and CJK punctuation to ASCII, then pypinyin, style TONE3 with the neutral tone written 5 (``你好吗`` → ``ni3hao3ma5``),
  syllables joined without spaces; characters without pinyin are kept.
* ``ko``: Hangul syllables romanised jamo by jamo (Revised Romanization letters, no sound-change
  rules), then the Latin cleaning above.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_EN_SYMBOLS = {"&": " and ", "@": " at ", "%": " percent "}


def basic_clean(text: str, language: str = "en") -> str:
    """Lower case, no double quotes, collapsed whitespace (see the module doc)."""
    text = unicodedata.normalize("NFC", text).replace('"', "")
    if language == "tr":
        text = text.replace("İ", "i")
    text = text.lower()
    if language == "en":
        for sym, word in _EN_SYMBOLS.items():
            text = text.replace(sym, word)
    return _WHITESPACE.sub(" ", text).strip()


def chinese_pinyin(text: str) -> str:
    """Hanzi → pinyin with tone numbers (neutral tone 5), syllables joined without spaces."""
    from pypinyin import Style, pinyin

    return "".join(p[0] for p in pinyin(text, style=Style.TONE3, heteronym=False, neutral_tone_with_five=True))


_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_VOWELS = ("a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi",
           "yu", "eu", "ui", "i")  # fmt: skip
_FINALS = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
           "ng", "t", "t", "k", "t", "p", "t")  # fmt: skip


def hangul_romanize(text: str) -> str:
    """Hangul syllables → Latin letters, one syllable at a time; other characters unchanged."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            out.append(_INITIALS[code // 588] + _VOWELS[(code % 588) // 28] + _FINALS[code % 28])
        else:
            out.append(ch)
    return "".join(out)


_CJK_PUNCTUATION = str.maketrans({"。": ".", "、": ",", "「": "", "」": "", "『": "", "』": "", "《": "", "》": ""})


def clean_line(text: str, language: str) -> str:
    """The cleaned form of a non-Japanese line in ``language``."""
    if language == "zh":
        text = unicodedata.normalize("NFKC", text).translate(_CJK_PUNCTUATION)
        return basic_clean(chinese_pinyin(text), language)
    if language == "ko":
        return basic_clean(hangul_romanize(text), language)
    return basic_clean(text, language)
