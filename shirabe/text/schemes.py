"""Token schemes: how an :class:`~shirabe.text.openjtalk.Utterance` becomes tokens.

All schemes keep OpenJTalk's phonemes as they are (``cl`` for the first half of
a geminate, ``N`` for the moraic nasal, ``I``/``U`` for devoiced vowels);
``lowercase_devoiced=True`` writes devoiced vowels in lower case instead.

``prosody`` (default)
    Phonemes with the prosody marks of Kurihara et al. (2021): ``^`` at the
    start; ``$`` at the end, or ``?`` instead when the utterance is a question;
    ``_`` for a pause; after a mora, ``#`` when it ends its accent phrase and
    the next mora starts a new one, else ``]`` when it is the accent nucleus
    and the phrase continues (the pitch falls), else ``[`` when it is the first
    mora of its phrase and the second mora is high (the pitch rises).
    ``箸が`` → ``^ h a ] sh i g a $``, ``橋が`` → ``^ h a [ sh i ] g a $``,
    ``端が`` → ``^ h a [ sh i g a $``.
``hl``
    The marks of the ZipVoice-ja token file (``tokens_japanese_extended.txt``):
    after each mora's phonemes ``[H]`` when the mora is at or before the accent
    nucleus (A1 ≤ 0), ``[L]`` after it; ``|`` between two accent phrases that
    follow each other without a pause; ``_`` for a pause; ``[Q]`` at the end of
    a question. ``箸が`` → ``h a [H] sh i [L] g a [L]``.
``phone``
    Phonemes and ``_`` pauses only (singing, where pitch comes from the score).
``kana``
    One katakana token per mora (``ン``, ``ッ``; a vowel-only mora repeating the
    vowel of the mora before it in the same accent phrase is written ``ー``) and
    ``_`` pauses, for inspection and lyric alignment. ``東京`` → ``ト ー キョ ー``.
"""

from __future__ import annotations

from shirabe.text.openjtalk import Mora, Utterance
from shirabe.text.phonemes import (
    DEVOICED_VOWELS,
    KANA_TOKENS,
    LONG_VOWEL_MARK,
    PHONEMES,
    mora_kana,
    voiced,
)

PAUSE_TOKEN = "_"


class UnknownSchemeError(ValueError):
    """No token scheme has the requested name."""


class Scheme:
    """Base class: ``scheme(utterance) -> tokens`` and the full token inventory."""

    name = ""
    marks: tuple[str, ...] = ()

    def __init__(self, lowercase_devoiced: bool = False):
        self.lowercase_devoiced = lowercase_devoiced

    def __call__(self, utt: Utterance) -> list[str]:
        raise NotImplementedError

    def phones(self, mora: Mora) -> tuple[str, ...]:
        if self.lowercase_devoiced and mora.phones[-1] in DEVOICED_VOWELS:
            return (*mora.phones[:-1], voiced(mora.phones[-1]))
        return mora.phones

    def phoneme_inventory(self) -> list[str]:
        if self.lowercase_devoiced:
            return [p for p in PHONEMES if p not in DEVOICED_VOWELS]
        return list(PHONEMES)

    def inventory(self) -> list[str]:
        """Every token this scheme can emit: the pause, the scheme's marks, then the units."""
        return list(dict.fromkeys([PAUSE_TOKEN, *self.marks, *self.phoneme_inventory()]))


def _next(items: list, i: int) -> Mora | None:
    return items[i + 1] if i + 1 < len(items) else None


class ProsodyScheme(Scheme):
    name = "prosody"
    marks = ("^", "$", "?", "#", "[", "]")

    def __call__(self, utt: Utterance) -> list[str]:
        out = ["^"]
        items = utt.items
        for i, m in enumerate(items):
            if m is None:
                out.append(PAUSE_TOKEN)
                continue
            out += self.phones(m)
            nxt = _next(items, i)
            if nxt is None:
                continue
            if m.a3 == 1 and nxt.a2 == 1:
                out.append("#")
            elif m.a1 == 0 and m.a2 != m.f1 and nxt.a2 == m.a2 + 1:
                out.append("]")
            elif m.a2 == 1 and nxt.a2 == 2:
                out.append("[")
        out.append("?" if utt.interrogative else "$")
        return out


class HLScheme(Scheme):
    name = "hl"
    marks = ("[H]", "[L]", "|", "[Q]")

    def __call__(self, utt: Utterance) -> list[str]:
        out: list[str] = []
        items = utt.items
        for i, m in enumerate(items):
            if m is None:
                out.append(PAUSE_TOKEN)
                continue
            out += self.phones(m)
            out.append("[H]" if m.a1 <= 0 else "[L]")
            nxt = _next(items, i)
            if nxt is not None and m.a3 == 1 and nxt.a2 == 1:
                out.append("|")
        if utt.interrogative:
            out.append("[Q]")
        return out


class PhoneScheme(Scheme):
    name = "phone"

    def __call__(self, utt: Utterance) -> list[str]:
        out: list[str] = []
        for m in utt.items:
            if m is None:
                out.append(PAUSE_TOKEN)
            else:
                out += self.phones(m)
        return out


class KanaScheme(Scheme):
    name = "kana"

    def __call__(self, utt: Utterance) -> list[str]:
        out: list[str] = []
        prev_vowel = None
        for m in utt.items:
            if m is None:
                out.append(PAUSE_TOKEN)
                prev_vowel = None
                continue
            vowel = voiced(m.phones[-1])
            if len(m.phones) == 1 and vowel == prev_vowel and m.a2 > 1:
                out.append(LONG_VOWEL_MARK)
            else:
                kana = mora_kana(m.phones)
                out.append(kana if kana is not None else "".join(m.phones))
            prev_vowel = vowel if vowel in "aiueo" else None
        return out

    def inventory(self) -> list[str]:
        return [PAUSE_TOKEN, *KANA_TOKENS]


SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls for cls in (ProsodyScheme, HLScheme, PhoneScheme, KanaScheme)
}
DEFAULT_SCHEME = "prosody"


def get_scheme(name: str, lowercase_devoiced: bool = False) -> Scheme:
    """The scheme called ``name``; raises :class:`UnknownSchemeError` for any other name."""
    try:
        cls = SCHEMES[name]
    except KeyError:
        raise UnknownSchemeError(f"unknown token scheme {name!r} (choose from {', '.join(SCHEMES)})") from None
    return cls(lowercase_devoiced=lowercase_devoiced)
