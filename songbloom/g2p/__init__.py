"""Lyrics → SongBloom's phoneme vocabulary: Japanese text through :mod:`shirabe.text`, ids as upstream.

:func:`lyrics_to_phonemes` reads Japanese lyrics (structure tags, ``.`` / ``,``
separators, text) into the space-separated symbol string SongBloom's lyric
conditioner takes; :func:`tokenize` turns such a string into vocabulary ids
with their structure ids and sentence indices. Neither drops a symbol without
saying so.
"""

from songbloom.g2p.japanese import REWRITES, PhonemeLyrics, lyrics_to_phonemes
from songbloom.g2p.tokenizer import DEFAULT_MAX_SENTENCES, LyricError, LyricTokens, tokenize
from songbloom.g2p.vocab import DEFAULT_VOCAB, STRUCTURE_TAGS, Vocab, load_vocab

__all__ = [
    "DEFAULT_MAX_SENTENCES",
    "DEFAULT_VOCAB",
    "REWRITES",
    "STRUCTURE_TAGS",
    "LyricError",
    "LyricTokens",
    "PhonemeLyrics",
    "Vocab",
    "load_vocab",
    "lyrics_to_phonemes",
    "tokenize",
]
