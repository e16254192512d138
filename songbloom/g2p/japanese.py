"""Japanese lyrics in SongBloom's format → SongBloom symbols, with nothing dropped silently.

Input: structure tags (``[verse]``, ``[chorus]``, ...), separators and text::

    [intro] , [verse] かえるのうたが、きこえてくるよ。
    [chorus] グワッ グワッ グワッ

* Tags pass through; a tag the vocabulary lacks is an unknown symbol.
* ``.`` ``。`` ``．`` ``!`` ``！`` ``?`` ``？`` end a sentence (``.``); ``,``
  ``、`` ``，`` end a phrase (``,``); the end of a line ends a sentence unless
  a separator or tag already closed it. Runs of separators keep the strongest.
* Every text run is read by the Japanese frontend (:mod:`shirabe.text`:
  normalisation, OpenJTalk from pyopenjtalk-plus, an optional user dictionary
  and ruby ``{漢字|かんじ}``) into phonemes, Latin words included (OpenJTalk
  reads them in katakana); a pause inside a run becomes ``,``.
* Phonemes are written with the vocabulary's Japanese symbols. OpenJTalk
  phonemes the vocabulary lacks are rewritten (:data:`REWRITES`): devoiced
  ``A E O`` (the vocabulary only has ``I U``) as their voiced vowels, and the
  rare palatal/labial onsets ``fy ty kw gw`` as the closest pair of symbols.
  Anything else that does not map is counted and, unless ``allow_unknown``,
  raises :class:`~songbloom.g2p.tokenizer.LyricError` naming the line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from shirabe.text import JapaneseFrontend, TextError
from songbloom.g2p.tokenizer import LyricError, describe_unknown
from songbloom.g2p.vocab import PHRASE_END, SENTENCE_END, Vocab, load_vocab

# OpenJTalk phonemes without an entry of their own in the vocabulary.
REWRITES: dict[str, tuple[str, ...]] = {
    "A": ("a",),
    "E": ("e",),
    "O": ("o",),
    "fy": ("hy",),  # フュ: the closest palatal fricative onset
    "ty": ("t", "y"),  # テュ
    "kw": ("k", "w"),  # クヮ
    "gw": ("g", "w"),  # グヮ
}
SENTENCE_MARKS = frozenset(".。．!！?？")
PHRASE_MARKS = frozenset(",、，")
_TOKEN = re.compile(r"\[[^\[\]\s]*\]|[.。．!！?？,、，]|[^\[\].。．!！?？,、，]+")


@dataclass
class PhonemeLyrics:
    """``text``: the space-separated symbol string; ``unknown``: what did not map, by symbol."""

    text: str
    unknown: Counter = field(default_factory=Counter)

    @property
    def symbols(self) -> list[str]:
        return self.text.split(" ") if self.text else []


@lru_cache(maxsize=4)
def _frontend(user_dict: str | None) -> JapaneseFrontend:
    return JapaneseFrontend("phone", user_dict=user_dict, quiet=True)


def _close(out: list[str], mark: str) -> None:
    """Append a separator; a run of separators keeps the strongest (``.`` over ``,``)."""
    if out and out[-1] in (SENTENCE_END, PHRASE_END):
        if mark == SENTENCE_END:
            out[-1] = SENTENCE_END
        return
    if out:
        out.append(mark)


def lyrics_to_phonemes(
    lyrics: str,
    allow_unknown: bool = False,
    vocab: Vocab | None = None,
    user_dict: str | Path | None = None,
    where: str = "lyrics",
) -> PhonemeLyrics:
    """Convert Japanese lyrics (see the module docstring) to SongBloom's symbol string."""
    vocab = vocab or load_vocab()
    frontend = _frontend(str(user_dict) if user_dict else None)
    out: list[str] = []
    unknown: Counter = Counter()
    line_of_unknown: dict[str, int] = {}

    def add(symbol: str, lineno: int) -> None:
        if symbol in vocab:
            out.append(symbol)
        else:
            unknown[symbol] += 1
            line_of_unknown.setdefault(symbol, lineno)

    lines = lyrics.splitlines()

    def at(lineno: int) -> str:
        return f"{where} line {lineno}" if len(lines) > 1 else where

    for lineno, line in enumerate(lines, 1):
        had_text = False
        for token in _TOKEN.findall(line):
            if token.startswith("["):
                add(token, lineno)
                had_text = False
            elif token in SENTENCE_MARKS:
                _close(out, SENTENCE_END)
                had_text = False
            elif token in PHRASE_MARKS:
                _close(out, PHRASE_END)
                had_text = False
            elif token.strip():
                try:
                    phones = frontend(token.strip())
                except TextError as e:
                    raise LyricError(f"{at(lineno)}: {token.strip()!r}: {e}") from None
                for p in phones:
                    if p == "_":
                        _close(out, PHRASE_END)
                        continue
                    for s in REWRITES.get(p, (p,)):
                        add(s, lineno)
                had_text = True
        if had_text:
            _close(out, SENTENCE_END)
    if unknown and not allow_unknown:
        first = min(line_of_unknown.values())
        raise LyricError(
            f"{at(first)}: symbols not in the SongBloom vocabulary: {describe_unknown(unknown)}"
        )
    return PhonemeLyrics(" ".join(out), unknown)
