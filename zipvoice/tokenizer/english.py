"""A small English text normaliser for the espeak front end.

Expands common abbreviations, currency, percentages, ordinals, decimals and
integers (up to the trillions) into words, so that espeak reads them the way a
speaker would. It is deliberately small: anything it does not recognise is
left for espeak.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}

_ABBREVIATIONS = [
    (re.compile(rf"\b{abbr}\.", re.IGNORECASE), full)
    for abbr, full in [
        ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
        ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
        ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
        ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort"), ("vs", "versus"),
    ]
]  # fmt: skip


def number_to_words(n: int) -> str:
    """Cardinal number in words, e.g. ``1234 -> 'one thousand two hundred thirty-four'``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{number_to_words(head)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError(n)  # pragma: no cover


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n)
    head, sep, last = words.rpartition(" ")
    head_dash, dash, last_word = last.rpartition("-")
    if last_word in _ORDINAL_IRREGULAR:
        last_word = _ORDINAL_IRREGULAR[last_word]
    elif last_word.endswith("y"):
        last_word = last_word[:-1] + "ieth"
    else:
        last_word += "th"
    return head + sep + head_dash + dash + last_word


def _decimal(m: re.Match) -> str:
    whole, frac = m.group(1), m.group(2)
    return f"{number_to_words(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)}"


def _currency(m: re.Match) -> str:
    symbol, amount = m.group(1), m.group(2).replace(",", "")
    unit, sub = {"$": ("dollar", "cent"), "£": ("pound", "penny"), "€": ("euro", "cent")}[symbol]
    whole, _, frac = amount.partition(".")
    whole_n, frac_n = int(whole or 0), int((frac + "00")[:2]) if frac else 0
    parts = []
    if whole_n or not frac_n:
        parts.append(f"{number_to_words(whole_n)} {unit}{'' if whole_n == 1 else 's'}")
    if frac_n:
        parts.append(f"{number_to_words(frac_n)} {sub if frac_n == 1 else (sub + 's' if sub != 'penny' else 'pence')}")
    return " and ".join(parts)


def normalize_english(text: str) -> str:
    """Expand abbreviations and numbers in ``text`` into words."""
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    text = re.sub(r"([$£€])\s?(\d[\d,]*(?:\.\d+)?)", _currency, text)
    text = re.sub(r"(\d),(?=\d{3}\b)", r"\1", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s?%", lambda m: m.group(1) + " percent", text)
    text = re.sub(r"\b(\d+)\.(\d+)\b", _decimal, text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m.group(1))), text)
    text = re.sub(r"\d+", lambda m: number_to_words(int(m.group(0))), text)
    return text
