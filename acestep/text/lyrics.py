"""ACE-Step's lyric tokenizer: lyrics → the id sequence the transformer's lyric encoder reads.

The vocabulary (``vocab.json``, shipped with this package) is a HuggingFace
``tokenizers`` BPE file with added tokens: ``[STOP]`` 0 (padding, "no lyrics"),
``[UNK]`` 1, ``[SPACE]`` 2, ``[START]`` 261, one token per language (``[ja]``
5412, ``[en]`` 259, ``[zh-cn]`` 5023, ...) and the structure tags 6681–6692
(``[verse]`` 6683, ``[chorus]`` 6684, ...).

:meth:`LyricTokenizer.encode` builds the sequence: ``[START]``, then for every
line (split on ``\\n``, stripped): an empty line gives ``[SPACE]``; a line that
starts with a ``[...]`` tag is encoded as English; any other line gets its
language (``language=`` or, for ``auto``, :func:`acestep.text.language.detect_languages`),
is cleaned for it (Japanese: romaji from :mod:`acestep.text.romaji`; others:
:mod:`acestep.text.cleaners`), prefixed with the language token, every space
written ``[SPACE]``, and tokenised; a ``[SPACE]`` closes each line. Lyrics with
nothing but whitespace give ``[0]`` (the caller masks it out). A line that cannot
be cleaned or gives ``[UNK]`` is an :class:`~shirabe.cli.InputError` naming the
source and the line number.

Binaries share the options through :func:`add_lyrics_arguments` and build the
tokenizer with :func:`lyric_tokenizer_from_args`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from acestep.text.cleaners import clean_line
from acestep.text.language import LANGUAGES, detect_languages, is_structure_line
from acestep.text.romaji import ROMANIZERS, make_romanizer
from shirabe.cli import InputError

__all__ = [
    "DEFAULT_ROMANIZER",
    "DEFAULT_VOCAB",
    "LANGUAGES",
    "ROMANIZERS",
    "LyricTokenizer",
    "add_lyrics_arguments",
    "edit_distance",
    "id_agreement",
    "lyric_tokenizer_from_args",
]

DEFAULT_VOCAB = Path(__file__).resolve().with_name("vocab.json")
# The romaniser whose ids agree more with the training-time romaji (docs/acestep_lyrics.md).
DEFAULT_ROMANIZER = "cutlet"

STOP, UNK, SPACE, START = 0, 1, 2, 261
SPACE_TOKEN = "[SPACE]"


def language_token(language: str) -> str:
    """The vocabulary's token for ``language`` (``zh`` is written ``[zh-cn]``)."""
    return "[zh-cn]" if language == "zh" else f"[{language}]"


def check_language(language: str, allow_auto: bool = True) -> str:
    """``language`` if supported, else an InputError naming it and listing the supported ones."""
    if language in LANGUAGES or (allow_auto and language == "auto"):
        return language
    choices = ("auto", *LANGUAGES) if allow_auto else LANGUAGES
    raise InputError(f"unsupported lyrics language '{language}' (supported: {', '.join(choices)})")


class LyricTokenizer:
    """Lyrics → ACE-Step lyric ids (see the module doc).

    Args:
        tokenizer: a loaded ``tokenizers.Tokenizer`` with the ACE-Step lyric vocabulary.
        romanizer: how Japanese lines become romaji: ``reading`` (the project's frontend;
            user dictionary and ruby) or ``cutlet`` (what the training data used).
        user_dict: OpenJTalk user dictionary (MeCab CSV); needs ``romanizer="reading"``.
    """

    def __init__(self, tokenizer, romanizer: str = DEFAULT_ROMANIZER, user_dict: str | Path | None = None):
        if romanizer not in ROMANIZERS:
            raise InputError(f"unknown romanizer '{romanizer}' (choose from {', '.join(ROMANIZERS)})")
        if user_dict is not None and romanizer != "reading":
            raise InputError("a user dictionary needs --romanizer reading (cutlet reads with its own dictionary)")
        self.tokenizer = tokenizer
        self.romanizer_name = romanizer
        self.user_dict = user_dict
        self.language_ids = {}
        for lang in LANGUAGES:
            tid = tokenizer.token_to_id(language_token(lang))
            if tid is None:
                raise InputError(f"the lyric vocabulary has no token {language_token(lang)}")
            self.language_ids[lang] = tid

    @classmethod
    def from_file(cls, path: str | Path | None = None, romanizer: str = DEFAULT_ROMANIZER,
                  user_dict: str | Path | None = None) -> LyricTokenizer:
        """Load a ``tokenizers`` JSON vocabulary (default: the shipped ACE-Step one)."""
        from tokenizers import Tokenizer

        path = Path(path) if path is not None else DEFAULT_VOCAB
        if not path.is_file():
            raise InputError(f"{path}: no such lyric vocabulary file")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for unreadable JSON
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"{path}: cannot read the lyric vocabulary ({reason})") from e
        return cls(tok, romanizer=romanizer, user_dict=user_dict)

    @cached_property
    def romanizer(self):
        return make_romanizer(self.romanizer_name, self.user_dict)

    def clean(self, line: str, language: str) -> str:
        """The cleaned text of one line in ``language`` (romaji for ``ja``)."""
        if language == "ja":
            return self.romanizer(line)
        return clean_line(line, language)

    def encode_line(self, line: str, language: str) -> list[int]:
        """Ids of one non-empty line (without the closing ``[SPACE]``); InputError if it cannot be encoded."""
        check_language(language, allow_auto=False)
        text = self.clean(line, language)
        if not text.strip():
            raise InputError(f"nothing left of {line!r} after cleaning")
        string = language_token(language) + text.replace(" ", SPACE_TOKEN)
        enc = self.tokenizer.encode(string)
        ids = enc.ids
        if not ids or ids[0] != self.language_ids[language]:
            raise InputError(f"{language_token(language)} did not come out as one token for {line!r}")
        if UNK in ids:
            bad = "".join(sorted({string[a:b] for (a, b), t in zip(enc.offsets, ids, strict=True) if t == UNK}))
            raise InputError(f"{line!r} (cleaned {text!r}) has characters the lyric vocabulary lacks: {bad!r}")
        return ids

    def line_languages(self, lines: Sequence[str], language: str = "auto") -> list[str | None]:
        """The language each line is encoded in (None for empty lines); tag lines are ``en``."""
        check_language(language)
        if language == "auto":
            langs = detect_languages(lines)
        else:
            langs = [None if not ln.strip() or is_structure_line(ln) else language for ln in lines]
        return [None if not ln.strip() else ("en" if is_structure_line(ln) else lang)
                for ln, lang in zip(lines, langs, strict=True)]

    def encode(self, lyrics: str, language: str = "auto", source: str = "<lyrics>") -> list[int]:
        """The whole lyric id sequence (see the module doc); ``[0]`` for empty lyrics."""
        check_language(language)
        if not lyrics.strip():
            return [STOP]
        lines = lyrics.split("\n")
        ids = [START]
        for n, (line, lang) in enumerate(zip(lines, self.line_languages(lines, language), strict=True), start=1):
            line = line.strip()
            if not line:
                ids.append(SPACE)
                continue
            try:
                ids += self.encode_line(line, lang)
            except InputError as e:
                raise InputError(f"{source}: line {n}: {e}") from e
            ids.append(SPACE)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The tokens of ``ids`` joined (for inspection; ``[SPACE]`` shown as a space)."""
        return "".join(self.tokenizer.id_to_token(i) or f"<{i}>" for i in ids).replace(SPACE_TOKEN, " ")


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance between two id sequences (insert, delete, substitute: 1 each)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def id_agreement(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> float:
    """Token-level agreement of (hypothesis, reference) id sequences: 1 − Σ edit distance / Σ reference length."""
    total = sum(len(ref) for _, ref in pairs)
    if total == 0:
        raise ValueError("no reference ids")
    return 1.0 - sum(edit_distance(hyp, ref) for hyp, ref in pairs) / total


def add_lyrics_arguments(parser) -> None:
    """``--lyrics-language`` and ``--romanizer``: the lyric options every ACE-Step binary shares."""
    parser.add_argument("--lyrics-language", default="auto", choices=("auto", *LANGUAGES),
                        help="language of the lyric lines; auto = per line by script, a kanji-only line is "
                             "Japanese when the song has kana elsewhere")
    parser.add_argument("--romanizer", default=DEFAULT_ROMANIZER, choices=ROMANIZERS,
                        help="how Japanese lines become romaji: cutlet (as the training data) or reading "
                             "(the project's frontend: user dictionary and ruby {漢字|よみ})")


def lyric_tokenizer_from_args(args, vocab: str | Path | None = None,
                              user_dict: str | Path | None = None) -> LyricTokenizer:
    """A :class:`LyricTokenizer` for parsed :func:`add_lyrics_arguments` options."""
    return LyricTokenizer.from_file(vocab, romanizer=args.romanizer, user_dict=user_dict)
