"""Tokenizers for ZipVoice: ``simple``, ``espeak``, ``emilia`` and ``japanese``.

>>> tok = get_tokenizer("espeak", "tokens.txt", lang="fr-fr")      # doctest: +SKIP
>>> tok.texts_to_token_ids(["Bonjour."])                           # doctest: +SKIP

``japanese`` (pitch-accent aware, through pyopenjtalk) is imported only when
asked for.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import InputError
from zipvoice.tokenizer.token_table import PAD_TOKEN, read_token_table, vocab_info
from zipvoice.tokenizer.tokenizer import (
    EmiliaTokenizer,
    EspeakTokenizer,
    SimpleTokenizer,
    Tokenizer,
)

TOKENIZER_NAMES = ("emilia", "espeak", "simple", "japanese")

__all__ = [
    "PAD_TOKEN",
    "TOKENIZER_NAMES",
    "EmiliaTokenizer",
    "EspeakTokenizer",
    "SimpleTokenizer",
    "Tokenizer",
    "get_tokenizer",
    "read_token_table",
    "vocab_info",
]


def get_tokenizer(name: str, token_file: str | Path | None = None, lang: str = "en-us", **kwargs):
    """Build the tokenizer called ``name`` over ``token_file``.

    ``lang`` is the espeak voice of the ``espeak`` tokenizer; other keyword
    arguments go to the tokenizer (e.g. ``scheme=`` for ``japanese``).
    """
    if name == "simple":
        return SimpleTokenizer(token_file, **kwargs)
    if name == "espeak":
        return EspeakTokenizer(token_file, lang=lang, **kwargs)
    if name == "emilia":
        return EmiliaTokenizer(token_file, **kwargs)
    if name == "japanese":
        try:
            from zipvoice.tokenizer.japanese import JapaneseTokenizer
        except ImportError as e:
            raise InputError(f"the japanese tokenizer is not available ({e})") from e
        return JapaneseTokenizer(token_file=token_file, **kwargs)
    raise InputError(f"unknown tokenizer {name!r} (choose from {', '.join(TOKENIZER_NAMES)})")
