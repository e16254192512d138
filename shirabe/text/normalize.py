"""Text normalisation in front of OpenJTalk.

* NFKC folds full-width Latin letters and digits and half-width katakana
  (``ＡＢＣ１２３`` → ``ABC123``, ``ｶﾀｶﾅ`` → ``カタカナ``).
* Punctuation is unified to ``、。！？「」…〜``: ``,`` and ``.`` become ``、``
  and ``。`` except inside numbers and Latin words (``1,500``, ``3.14``), ``!?``
  become ``！？``, runs of dots become ``…``, every kind of bracket and quote
  becomes ``「`` or ``」``. Punctuation at the start of a text is dropped.
* Emoji and other symbols OpenJTalk cannot read are removed; how many were
  removed is logged at DEBUG level. Numbers, dates, units and Latin letters are
  kept for OpenJTalk to read (``3月21日``, ``1,500円``, ``5kg``, ``NHK``).
* Ruby ``{漢字|かんじ}`` forces the reading of ``漢字``; the reading is kana
  (hiragana or katakana, ``ー`` allowed) and is returned in katakana.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from shirabe.cli import InputError

logger = logging.getLogger(__name__)


class TextError(InputError, ValueError):
    """Text the frontend cannot handle (malformed ruby, nothing to pronounce, ...).

    An :class:`~shirabe.cli.InputError`: a binary that lets it through prints its
    one-line message and exits 2.
    """


@dataclass(frozen=True)
class Segment:
    """A piece of normalised text; ``reading`` (katakana) is set for ruby spans."""

    text: str
    reading: str | None = None


# Symbols of category So that OpenJTalk reads (the CJK squares like ㌔ are
# expanded by NFKC before this check).
_READABLE_SYMBOLS = frozenset("℃♀♂♨〄〒")
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Co", "Cs", "Cn", "Cf", "Cc", "Mn", "Me"})
# Invisible parts of emoji sequences: removed but not counted as symbols.
_SILENT_CATEGORIES = frozenset({"Cf", "Mn", "Me"})
_SKIN_TONES = range(0x1F3FB, 0x1F400)


def _keep(ch: str) -> bool:
    return unicodedata.category(ch) not in _DROPPED_CATEGORIES or ch in _READABLE_SYMBOLS


def _plain_pattern() -> re.Pattern:
    """Regex matching texts made only of characters that are kept as they are.

    Covers Latin, Greek/Cyrillic, general punctuation, kana, CJK ideographs and
    the full-width forms, so that ordinary text skips the per-character check.
    """
    spans = []
    scanned = [range(0x20, 0x2000), range(0x2010, 0x2190), range(0x3000, 0x3100), range(0xFF01, 0xFFF0)]
    for block in scanned:
        start = None
        for cp in block:
            if _keep(chr(cp)):
                start = cp if start is None else start
            elif start is not None:
                spans.append((start, cp - 1))
                start = None
        if start is not None:
            spans.append((start, block[-1]))
    spans += [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)]
    body = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" if a != b else re.escape(chr(a)) for a, b in spans)
    return re.compile(f"[{body}]*")


_PLAIN = _plain_pattern()

_OPENERS = "「『“‘([{〈《【〔［｛｟«"
_CLOSERS = "」』”’)]}〉》】〕］｝｠»"
_BRACKETS = str.maketrans({**{c: "「" for c in _OPENERS}, **{c: "」" for c in _CLOSERS}})
_SIMPLE_PUNCT = str.maketrans({"!": "！", "?": "？", "~": "〜", "〰": "〜", "､": "、", "｡": "。"})
_DOTS = re.compile(r"\.{2,}|・{2,}|…+")
_COMMA = re.compile(r"(?<![0-9]),|,(?![0-9])")
_PERIOD = re.compile(r"(?<![0-9A-Za-z])\.|\.(?![0-9A-Za-z])")
_DEGREE = re.compile(r"°C")
_DEGREE_AFTER_NUMBER = re.compile(r"(?<=[0-9])°")
_SPACES = re.compile(r"\s+")
_LEADING_PUNCT = re.compile(r"^[\s、。！？…〜」・]+")
_RUBY = re.compile(r"\{([^{}|]*)\|([^{}|]*)\}")
_KANA_READING = re.compile(r"[\u3041-\u3096\u30a1-\u30faー]+")


def remove_unsupported(text: str) -> tuple[str, int]:
    """Drop emoji and symbols OpenJTalk cannot read; return the text and how many were dropped.

    Control characters become spaces. Joiners, variation selectors and skin-tone
    modifiers go with the emoji they belong to and are not counted.
    """
    if _PLAIN.fullmatch(text):
        return text, 0
    out = []
    removed = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if cat not in _DROPPED_CATEGORIES or ch in _READABLE_SYMBOLS:
            out.append(ch)
        elif cat == "Cc":
            out.append(" ")
        elif cat in _SILENT_CATEGORIES or ord(ch) in _SKIN_TONES:
            continue
        else:
            removed += 1
    return "".join(out), removed


def _straight_quotes(text: str) -> str:
    if '"' not in text:
        return text
    parts = text.split('"')
    out = [parts[0]]
    for i, part in enumerate(parts[1:]):
        out.append("「" if i % 2 == 0 else "」")
        out.append(part)
    return "".join(out)


def unify_punctuation(text: str) -> str:
    """Map ASCII and variant punctuation onto ``、。！？「」…〜`` (see the module doc)."""
    text = _DOTS.sub("…", text)
    text = _COMMA.sub("、", text)
    text = _PERIOD.sub("。", text)
    text = text.translate(_SIMPLE_PUNCT).translate(_BRACKETS)
    return _straight_quotes(text)


def _normalize_plain(text: str) -> tuple[str, int]:
    text = _DEGREE.sub("℃", text)
    text = _DEGREE_AFTER_NUMBER.sub("度", text)
    text, removed = remove_unsupported(text)
    text = unify_punctuation(text)
    return _SPACES.sub(" ", text), removed


def to_katakana(kana: str) -> str:
    """Hiragana → katakana; other characters unchanged."""
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in kana)


def normalize(text: str) -> list[Segment]:
    """Normalise ``text`` into plain segments and ruby segments (see the module doc).

    Raises :class:`TextError` for a ruby span with an empty base or a reading
    that is not kana.
    """
    text = unicodedata.normalize("NFKC", text)
    segments: list[Segment] = []
    removed = 0
    pos = 0
    for m in _RUBY.finditer(text):
        plain, n = _normalize_plain(text[pos : m.start()])
        removed += n
        if plain:
            segments.append(Segment(plain))
        base, n = _normalize_plain(m.group(1).strip())
        removed += n
        reading = m.group(2).strip()
        if not base:
            raise TextError(f"ruby {m.group(0)!r} has no base text")
        if not _KANA_READING.fullmatch(reading):
            raise TextError(f"ruby {m.group(0)!r}: the reading must be hiragana or katakana")
        segments.append(Segment(base, to_katakana(reading)))
        pos = m.end()
    plain, n = _normalize_plain(text[pos:])
    removed += n
    if plain:
        segments.append(Segment(plain))
    if segments and segments[0].reading is None:
        first = _LEADING_PUNCT.sub("", segments[0].text)
        segments[0] = Segment(first)
        if not first:
            segments.pop(0)
    if segments and segments[-1].reading is None:
        last = segments[-1].text.rstrip()
        segments[-1] = Segment(last)
        if not last:
            segments.pop()
    if removed:
        logger.debug("removed %d emoji/unsupported symbol(s) from %r", removed, text)
    return segments


def normalize_text(text: str) -> str:
    """Normalised text as one string; ruby spans are written back as ``{base|カナ}``."""
    return "".join(s.text if s.reading is None else f"{{{s.text}|{s.reading}}}" for s in normalize(text))
