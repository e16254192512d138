"""Japanese lyric lines → lower-case Hepburn romaji, the way ACE-Step's ``[ja]`` lines are spelled.

ACE-Step was trained on Japanese lyrics romanised by ``cutlet`` (default settings:
Hepburn, ``wo`` for を, known loanwords in their English spelling) and lower-cased.
Two romanisers produce that spelling here (``romanizer=`` of the lyric tokenizer):

``reading``
    The readings come from the project's Japanese frontend (pyopenjtalk-plus,
    :class:`shirabe.text.openjtalk.OpenJTalkRunner`), so a user dictionary and
    ruby apply; the kana are then spelled with cutlet's conventions (see
    :func:`kana_to_romaji`): long vowels written as the kana are (``gakkou``,
    ``obaasan``, ``ー`` repeats the vowel), the particles は/へ/を as ``wa``/``e``/
    ``wo``, ``っ`` doubles the next consonant (``tch`` before ち), ``n'`` before a
    vowel or y inside a word; words separated by spaces, with no space after a
    prefix, before a suffix, punctuation or a conjunctive particle, nor between a
    verb/adjective/auxiliary and a following auxiliary (except です). Katakana
    words go through cutlet for its English spellings (``カレー`` → ``curry``).
``cutlet``
    cutlet itself on the line (ruby spans replaced by their reading).

Ruby is written ``{漢字|かんじ}`` (the frontend's notation) or, as in lyrics
sheets, ``｜漢字《かんじ》`` / ``漢字《かんじ》`` (a run of kanji right before ``《``);
:func:`convert_ruby` turns the second form into the first.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property
from pathlib import Path

from shirabe.cli import InputError

ROMANIZERS = ("reading", "cutlet")

# Hepburn spelling of single kana (hiragana), as cutlet's default table spells them.
_ROWS = {
    "": "あいうえお", "k": "かきくけこ", "s": "さしすせそ", "t": "たちつてと", "n": "なにぬねの",
    "h": "はひふへほ", "m": "まみむめも", "r": "らりるれろ", "g": "がぎぐげご", "z": "ざじずぜぞ",
    "d": "だぢづでど", "b": "ばびぶべぼ", "p": "ぱぴぷぺぽ",
}  # fmt: skip
KANA = {k: c + v for c, row in _ROWS.items() for k, v in zip(row, "aiueo", strict=True)}
KANA.update({
    "し": "shi", "ち": "chi", "つ": "tsu", "ふ": "fu", "じ": "ji", "ぢ": "ji", "づ": "zu",
    "や": "ya", "ゆ": "yu", "よ": "yo", "わ": "wa", "ゐ": "wi", "ゑ": "we", "を": "wo", "ん": "n",
    "ゔ": "vu", "ゃ": "ya", "ゅ": "yu", "ょ": "yo", "ぁ": "a", "ぃ": "i", "ぅ": "u", "ぇ": "e", "ぉ": "o",
    "ゎ": "wa", "ゕ": "ka", "ゖ": "ke",
})  # fmt: skip
# Two-kana spellings that the letter rule below would get wrong (sh/ch/j + ya/yu/yo).
DIGRAPHS = {a + b: c + v for a, c in (("し", "sh"), ("じ", "j"), ("ち", "ch"))
            for b, v in (("ゃ", "a"), ("ゅ", "u"), ("ょ", "o"))}  # fmt: skip
SMALL = "ゃゅょぁぃぅぇぉ"
PUNCTUATION = {"、": ",", "。": ".", "！": "!", "？": "?", "「": '"', "」": '"', "『": '"', "』": '"', "：": ":",
               ",": ",", ".": ".", "!": "!", "?": "?", ":": ":"}  # fmt: skip
OPENING_QUOTES = "「『"
SOKUON = "っ"  # left at the end of a word's romaji; the next word's first letter replaces it


def hiragana(kana: str) -> str:
    """Katakana → hiragana; other characters unchanged."""
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in kana)


def kana_to_romaji(kana: str) -> str:
    """Hepburn romaji of a kana word (hiragana or katakana), spelled as cutlet spells it.

    Each kana is spelled from its neighbours: a digraph (しゃ ``sha``) as one; a kana
    before a small ゃゅょぁぃぅぇぉ drops its vowel (きゃ ``kya``, ふぁ ``fa``); a small
    kana alone is silent; ``ー`` repeats the vowel before it; ``っ`` doubles the next
    consonant (``t`` before ち, ``-`` before a vowel, kept as ``っ`` at the end for the
    next word); ``ん`` is ``n'`` before a vowel or や/ゆ/よ. Characters that are not
    kana are kept as they are.
    """
    kana = hiragana(kana)
    out = []
    for i, ch in enumerate(kana):
        prev = kana[i - 1] if i else None
        nxt = kana[i + 1] if i + 1 < len(kana) else None
        if ch in "ゝゞ":  # iteration marks repeat the kana before (voiced for ゞ)
            if prev is None or prev not in KANA:
                continue
            ch = unicodedata.normalize("NFC", prev + "\u3099") if ch == "ゞ" else prev
            if ch not in KANA:
                continue
        if prev is not None and prev + ch in DIGRAPHS:
            out.append(DIGRAPHS[prev + ch])
        elif nxt is not None and ch + nxt in DIGRAPHS:
            continue
        elif nxt is not None and nxt in SMALL and ch in KANA and ch != SOKUON:
            out.append(KANA[ch][:-1] + KANA[nxt])
        elif ch in SMALL:
            continue
        elif ch == "ー":
            out.append(KANA[prev][-1] if prev in KANA else "-")
        elif ch == SOKUON:
            if nxt is None:
                out.append(SOKUON)
            elif nxt == "ち":
                out.append("t")
            elif nxt in "あいうえおっ":
                out.append("-")
            elif nxt in KANA:
                out.append(KANA[nxt][0])
        elif ch == "ん":
            out.append("n'" if nxt is not None and nxt in "あいうえおやゆよ" else "n")
        else:
            out.append(KANA.get(ch, ch))
    return "".join(out)


def join_words(words: list[tuple[str, bool]]) -> str:
    """Join ``(romaji, space_after)`` pairs; a trailing ``っ`` becomes the next word's first letter."""
    out = []
    for i, (roma, space) in enumerate(words):
        if roma.endswith(SOKUON):
            nxt = next((r for r, _ in words[i + 1 :] if r), "")
            roma = roma[:-1] + (nxt[0] if nxt and nxt[0].isalpha() else "")
        out.append(roma.replace(SOKUON, "") + (" " if space else ""))
    return re.sub(r" +", " ", "".join(out)).strip()


# ---------------------------------------------------------------------------
# Ruby

_BRACKET_RUBY = re.compile(r"[｜|]([^｜|《》\n]+)《([^《》\n]+)》|([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]+)《([^《》\n]+)》")
_BRACE_RUBY = re.compile(r"\{([^{}|]*)\|([^{}|]*)\}")


def convert_ruby(text: str) -> str:
    """``｜base《よみ》`` and ``漢字《よみ》`` → ``{base|よみ}``; other text unchanged."""

    def repl(m: re.Match) -> str:
        base, reading = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
        return f"{{{base}|{reading}}}"

    return _BRACKET_RUBY.sub(repl, text)


def ruby_as_reading(text: str) -> str:
    """Every ruby span replaced by its reading (in hiragana), for romanisers without ruby support."""
    return _BRACE_RUBY.sub(lambda m: hiragana(m.group(2).strip()), convert_ruby(text))


# ---------------------------------------------------------------------------
# Romanisers


class CutletRomanizer:
    """cutlet (default settings) on the line, lower-cased; ruby spans are replaced by their reading."""

    name = "cutlet"

    @cached_property
    def cutlet(self):
        import cutlet

        return cutlet.Cutlet()

    def __call__(self, line: str) -> str:
        text = ruby_as_reading(line)
        roma = self.cutlet.romaji(text).lower()
        if roma.count("?") > text.count("?") + text.count("？"):  # cutlet writes ? for what it cannot read
            raise InputError(f"cutlet cannot read all of {line!r} (got {roma!r})")
        return roma


# Words of katakana (and Latin letters, as Ｔシャツ) only: loanwords that cutlet may spell in English.
_LOANWORD = re.compile(r"(?=.*[\u30a1-\u30fa])[\u30a1-\u30fa\u30fcA-Za-z]+")


class ReadingRomanizer:
    """Readings from the project's frontend (user dictionary and ruby apply), spelled like cutlet.

    Args:
        user_dict: MeCab CSV user dictionary for OpenJTalk (see :mod:`shirabe.text.openjtalk`).
        foreign_spelling: katakana words through cutlet, which writes known loanwords in
            their English spelling (as the training data has them).
    """

    name = "reading"

    def __init__(self, user_dict: str | Path | None = None, foreign_spelling: bool = True):
        from shirabe.text.openjtalk import OpenJTalkRunner

        self.runner = OpenJTalkRunner(user_dict=user_dict, quiet=True)
        self.foreign_spelling = foreign_spelling
        self._cutlet = CutletRomanizer() if foreign_spelling else None

    def words(self, line: str) -> list[dict]:
        """OpenJTalk's words (NJD features: ``string``, ``pos``, ``read``, ``pron``, ...) for ``line``."""
        from shirabe.text.normalize import normalize

        return self.runner.njd_features(normalize(convert_ruby(line)))

    def _word_romaji(self, w: dict) -> str:
        s = unicodedata.normalize("NFKC", w["string"])
        if w["pos"] == "記号":
            return PUNCTUATION.get(s, "")
        if s.isascii():  # Latin words and digits stay as written
            return s.strip()
        if w["pos"] == "助詞":
            special = {("ハ", "ワ"): "wa", ("ヘ", "エ"): "e", ("ヲ", "ヲ"): "wo", ("ヲ", "オ"): "wo"}
            if (w["read"], w["pron"]) in special:
                return special[(w["read"], w["pron"])]
        if self._cutlet is not None and _LOANWORD.fullmatch(s):
            return self._cutlet(s)
        return kana_to_romaji(w["read"])

    def __call__(self, line: str) -> str:
        words = self.words(line)
        out: list[tuple[str, bool]] = []
        for i, w in enumerate(words):
            nw = words[i + 1] if i + 1 < len(words) else None
            s = unicodedata.normalize("NFKC", w["string"])
            roma = self._word_romaji(w)
            if s in OPENING_QUOTES and out:
                out[-1] = (out[-1][0], True)
            out.append((roma, _space_after(w, nw)))
        return join_words(out).lower()


def _space_after(w: dict, nw: dict | None) -> bool:
    """Whether a space follows word ``w`` (next word ``nw``): the spacing rules of the module doc."""
    s = unicodedata.normalize("NFKC", w["string"])
    if nw is None or s in OPENING_QUOTES or w["pos"] == "接頭詞":
        return False
    ns = unicodedata.normalize("NFKC", nw["string"])
    if not ns.strip() or not s.strip():
        return True
    if ns in OPENING_QUOTES:
        return True
    if nw["pos"] == "記号" or (nw["pos"] in ("名詞", "動詞", "形容詞") and nw["pos_group1"] == "接尾"):
        return False
    if nw["pos"] == "助詞" and nw["pos_group1"] == "接続助詞":
        return False
    if w["pos_group1"] == "数" and nw["pos_group1"] == "数":
        return False
    if s.isascii() and ns.isascii() and s.isalnum() and ns.isalnum():
        return True
    if w["pos"] in ("動詞", "助動詞", "形容詞") and nw["pos"] == "助動詞" and ns != "です":
        return False
    return True


def make_romanizer(name: str, user_dict: str | Path | None = None):
    """The romaniser called ``name`` (:data:`ROMANIZERS`); a user dictionary needs ``reading``."""
    if name not in ROMANIZERS:
        raise InputError(f"unknown romanizer '{name}' (choose from {', '.join(ROMANIZERS)})")
    if name == "cutlet":
        if user_dict is not None:
            raise InputError("a user dictionary needs --romanizer reading (cutlet reads with its own dictionary)")
        return CutletRomanizer()
    return ReadingRomanizer(user_dict=user_dict)
