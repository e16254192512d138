"""Text → tokens → ids, compatible with the token tables of the released ZipVoice models.

Every tokenizer has the same three methods:

* ``texts_to_tokens(texts) -> list[list[str]]``
* ``tokens_to_token_ids(tokens_list) -> list[list[int]]``
* ``texts_to_token_ids(texts) -> list[list[int]]`` (the two above in a row)

Tokens missing from the table are dropped, as upstream does, but never
silently: each distinct unknown token is logged once as a warning and counted in
``oov_counts``.

* :class:`SimpleTokenizer`: one token per character, no normalisation.
* :class:`EspeakTokenizer`: espeak-ng IPA through piper-phonemize for ``lang``
  (any espeak voice); reuses the released IPA token table for other languages.
* :class:`EmiliaTokenizer`: the released models' tokenizer. Latin-script runs go
  through a small English normaliser and espeak ``en-us``; Chinese runs become
  pinyin initials (``zh0``) and tone-numbered finals (``ang1``), which needs the
  optional packages pypinyin and jieba (cn2an for numerals).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from shirabe.cli import InputError
from zipvoice.tokenizer.english import normalize_english
from zipvoice.tokenizer.token_table import PAD_TOKEN, read_token_table

logger = logging.getLogger(__name__)


class Tokenizer:
    """Base class: token table handling shared by all tokenizers."""

    def __init__(self, token_file: str | Path | None = None):
        self.token_file = None if token_file is None else Path(token_file)
        self.oov_counts: Counter = Counter()
        if token_file is None:
            self.has_tokens = False
            self.token2id: dict[str, int] = {}
            self.pad_id = None
            self.vocab_size = None
        else:
            self.has_tokens = True
            self.token2id = read_token_table(token_file)
            self.pad_id = self.token2id[PAD_TOKEN]
            self.vocab_size = len(self.token2id)

    def texts_to_tokens(self, texts: list[str]) -> list[list[str]]:
        raise NotImplementedError

    def tokens_to_token_ids(self, tokens_list: list[list[str]]) -> list[list[int]]:
        if not self.has_tokens:
            raise InputError(f"{type(self).__name__} was built without a token file; cannot map tokens to ids")
        out = []
        for tokens in tokens_list:
            ids = []
            for tok in tokens:
                idx = self.token2id.get(tok)
                if idx is None:
                    if tok not in self.oov_counts:
                        logger.warning("token %r is not in %s; dropped", tok, self.token_file)
                    self.oov_counts[tok] += 1
                    continue
                ids.append(idx)
            out.append(ids)
        return out

    def texts_to_token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokens_to_token_ids(self.texts_to_tokens(texts))


class SimpleTokenizer(Tokenizer):
    """Every character is a token."""

    def texts_to_tokens(self, texts: list[str]) -> list[list[str]]:
        return [list(text) for text in texts]


def _phonemize_espeak(text: str, lang: str) -> list[str]:
    try:
        from piper_phonemize import phonemize_espeak
    except ImportError as e:  # pragma: no cover - piper-phonemize is a dependency
        raise InputError("the espeak tokenizer needs piper-phonemize (pip install piper-phonemize)") from e
    try:
        sentences = phonemize_espeak(text, lang)
    except Exception as e:  # noqa: BLE001 - espeak reports an unknown voice as a bare RuntimeError
        raise InputError(f"espeak cannot phonemize for language {lang!r} ({e})") from e
    return [ph for sentence in sentences for ph in sentence]


class EspeakTokenizer(Tokenizer):
    """IPA phonemes from espeak-ng (via piper-phonemize) for ``lang``, e.g. ``en-us``, ``fr-fr``."""

    def __init__(self, token_file: str | Path | None = None, lang: str = "en-us"):
        super().__init__(token_file)
        self.lang = lang

    def texts_to_tokens(self, texts: list[str]) -> list[list[str]]:
        return [_phonemize_espeak(text, self.lang) for text in texts]


# Full-width / CJK punctuation mapped to the ASCII marks the released table holds.
_PUNCT_MAP = str.maketrans({
    "，": ",", "。": ".", "！": "!", "？": "?", "；": ";", "：": ":", "、": ",",
    "‘": "'", "’": "'", "“": '"', "”": '"', "（": "(", "）": ")", "【": "[", "】": "]",
    "《": '"', "》": '"', "「": '"', "」": '"', "『": '"', "』": '"', "～": "~", "—": "-",
    "…": "...", "·": " ",
})  # fmt: skip

_PART_RE = re.compile(r"<[a-zA-Z]+[1-5]>|\[[^\]]*\]|.", re.S)
_PINYIN_RE = re.compile(r"<([a-zA-Z]+[1-5])>")


def _part_type(part: str) -> str:
    if _PINYIN_RE.fullmatch(part) or (len(part) == 1 and "\u4e00" <= part <= "\u9fa5"):
        return "zh"
    if part.startswith("[") and part.endswith("]") and len(part) > 1:
        return "tag"
    if len(part) == 1 and part.isascii() and part.isalpha():
        return "en"
    return "other"


class EmiliaTokenizer(Tokenizer):
    """Mixed Chinese/English tokenizer of the released ZipVoice models.

    ``<pinyin+tone>`` (e.g. ``<zhong1>``) overrides a character's reading and
    ``[tag]`` passes through as one token.
    """

    def __init__(self, token_file: str | Path | None = None, token_type: str = "phone"):
        super().__init__(token_file)
        if token_type != "phone":
            raise InputError(f"EmiliaTokenizer supports token_type 'phone' only, got {token_type!r}")
        self._pinyin = None

    def texts_to_tokens(self, texts: list[str]) -> list[list[str]]:
        return [self._text_to_tokens(text) for text in texts]

    def _text_to_tokens(self, text: str) -> list[str]:
        text = text.translate(_PUNCT_MAP)
        tokens: list[str] = []
        for kind, segment in self._segments(text):
            if kind == "zh":
                tokens += self._chinese_tokens(segment)
            elif kind == "tag":
                tokens.append(segment)
            else:
                tokens += _phonemize_espeak(normalize_english(segment), "en-us")
        return tokens

    @staticmethod
    def _segments(text: str) -> list[tuple[str, str]]:
        """Runs of one language; punctuation, digits and spaces join the run they follow."""
        segments: list[list] = []
        pending = ""
        for part in _PART_RE.findall(text):
            kind = _part_type(part)
            if kind == "tag":
                if pending:
                    segments.append(["en", pending])
                    pending = ""
                segments.append(["tag", part])
            elif kind == "other":
                if segments and segments[-1][0] != "tag":
                    segments[-1][1] += part
                else:
                    pending += part
            elif segments and segments[-1][0] == kind:
                segments[-1][1] += part
            else:
                segments.append([kind, pending + part])
                pending = ""
        if pending:
            segments.append(["en", pending])
        return [(k, s) for k, s in segments if s.strip() or k == "tag"]

    def _chinese_tokens(self, segment: str) -> list[str]:
        if self._pinyin is None:
            self._pinyin = _ChinesePinyin()
        return self._pinyin(segment)


class _ChinesePinyin:
    """Chinese text → pinyin initials/finals tokens (needs pypinyin and jieba)."""

    def __init__(self):
        try:
            import jieba
            from pypinyin import Style, lazy_pinyin
            from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials
        except ImportError as e:
            raise InputError(
                "Chinese text in the emilia tokenizer needs pypinyin and jieba (pip install pypinyin jieba cn2an)"
            ) from e
        try:
            import cn2an

            self._an2cn = lambda s: cn2an.transform(s, "an2cn")
        except ImportError:
            self._an2cn = None
        jieba.setLogLevel(logging.WARNING)
        self._cut, self._lazy_pinyin, self._style = jieba.cut, lazy_pinyin, Style.TONE3
        self._initials, self._finals = to_initials, to_finals_tone3

    def __call__(self, segment: str) -> list[str]:
        tokens: list[str] = []
        for piece in re.split(r"(<[a-zA-Z]+[1-5]>)", segment):
            if not piece:
                continue
            m = _PINYIN_RE.fullmatch(piece)
            if m:
                tokens += self._split_syllable(m.group(1))
                continue
            if self._an2cn is not None and re.search(r"\d", piece):
                piece = self._an2cn(piece)
            words = list(self._cut(piece))
            syllables = self._lazy_pinyin(words, style=self._style, tone_sandhi=True, neutral_tone_with_five=True)
            for syl in syllables:
                if re.fullmatch(r"[a-z]+[1-5]", syl):
                    tokens += self._split_syllable(syl)
                else:
                    tokens += list(syl)
        return tokens

    def _split_syllable(self, syl: str) -> list[str]:
        initial = self._initials(syl, strict=False)
        final = self._finals(syl, strict=False, neutral_tone_with_five=True)
        return ([initial + "0"] if initial else []) + ([final] if final else [])
