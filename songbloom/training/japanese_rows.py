"""Japanese rows of SongBloom's lyric embedding: which rows never trained, their initial values, training only them.

The released model learnt its lyric embedding from Chinese (pinyin initials and
toned finals) and English (ARPAbet with stress). The vocabulary also lists
OpenJTalk's Japanese phonemes, but no training lyric ever produced the ones
that are not also pinyin or ARPAbet symbols: toneless ``a i u e o``,
devoiced ``I U``, the geminate ``cl``, the palatal onsets ``ky gy ny hy my
by py ry dy``, ``ts`` and ``v``. Their rows are as initialised, so a LoRA on
attention alone cannot make the model pronounce them: the forks' "sounds
English-like" result. Shared symbols (``k s t sh ch j N`` ...) carry what
Mandarin or English taught them and are left alone.

:data:`DONORS` gives, for each of those symbols, the trained symbols closest
in sound (by IPA): toneless vowels take the mean of the five pinyin tones of
the same vowel and the ARPAbet vowel of that quality; palatalised onsets the
mean of the plain consonant and the glide ``Y``; and so on.
:func:`init_japanese_rows` writes those means into the rows (as the ZipVoice
vocabulary extension starts new tokens from their IPA neighbours), and
:func:`train_only_rows` restricts the gradient of the embedding table to
those rows, so every other row stays bit-identical during training.
"""

from __future__ import annotations

import torch
from torch import nn

from shirabe.text.phonemes import PHONEMES
from songbloom.g2p import REWRITES, Vocab

# ARPAbet phonemes (CMU dictionary), with or without a stress digit
ARPABET = frozenset("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
                    "Y Z ZH".split())
# pinyin initials as the Chinese front end writes them (finals always carry a tone digit 1-5)
PINYIN_INITIALS = frozenset("b p m f d t n l g k h j q x zh ch sh r z c s y w".split())

# symbol -> trained symbols closest in sound (IPA in comments); the row starts at their mean
DONORS: dict[str, tuple[str, ...]] = {
    "a": ("a1", "a2", "a3", "a4", "a5", "AA1"),  # /a/
    "i": ("i1", "i2", "i3", "i4", "i5", "IY1"),  # /i/
    "u": ("u1", "u2", "u3", "u4", "u5", "UW1"),  # /ɯ/ ~ /u/
    "e": ("EH1", "EY1"),  # /e/: pinyin e is /ɤ/, not a donor
    "o": ("o1", "o2", "o3", "o4", "o5", "OW1"),  # /o/
    "I": ("i1", "i2", "i3", "i4", "i5", "IY0"),  # devoiced /i̥/
    "U": ("u1", "u2", "u3", "u4", "u5", "UW0"),  # devoiced /ɯ̥/
    "cl": ("SP",),  # geminate closure: a short silence
    "ky": ("k", "K", "Y"),  # /kʲ/
    "gy": ("g", "G", "Y"),  # /gʲ/
    "ny": ("n", "N", "Y"),  # /ɲ/
    "hy": ("x", "HH", "Y"),  # /ç/: pinyin x is /ɕ/
    "my": ("m", "M", "Y"),  # /mʲ/
    "by": ("b", "B", "Y"),  # /bʲ/
    "py": ("p", "P", "Y"),  # /pʲ/
    "ry": ("l", "D", "Y"),  # /ɾʲ/: a flap, between l and d
    "dy": ("d", "D", "Y"),  # /dʲ/
    "ts": ("c", "T", "S"),  # /ts/: pinyin c is /tsʰ/
    "v": ("V", "f"),  # /v/ (ヴ)
}


def is_trained_symbol(symbol: str) -> bool:
    """True for symbols the Chinese or English front end produces (so the released rows learnt them)."""
    if symbol.rstrip("012") in ARPABET and symbol.upper() == symbol:
        return True
    if symbol in PINYIN_INITIALS:
        return True
    return symbol[-1:] in "12345" and symbol[:-1].isalpha() and symbol[:-1].islower()


def japanese_symbols() -> list[str]:
    """Every symbol the Japanese front end writes (OpenJTalk phonemes after the rewrites)."""
    return sorted({s for p in PHONEMES for s in REWRITES.get(p, (p,))})


def untrained_japanese_symbols(vocab: Vocab) -> list[str]:
    """Japanese symbols of ``vocab`` that neither Chinese nor English training produced."""
    return [s for s in japanese_symbols() if s in vocab and not is_trained_symbol(s)]


@torch.no_grad()
def init_japanese_rows(weight: torch.Tensor, vocab: Vocab, symbols: list[str] | None = None) -> dict[str, list[str]]:
    """Set each untrained Japanese row to the mean of its donors' rows; returns {symbol: donors used}."""
    symbols = symbols if symbols is not None else untrained_japanese_symbols(vocab)
    used = {}
    for s in symbols:
        donors = [d for d in DONORS.get(s, ()) if d in vocab]
        if not donors:
            raise ValueError(f"no donor symbols for {s!r} in this vocabulary")
        weight[vocab.id(s)] = weight[[vocab.id(d) for d in donors]].mean(0)
        used[s] = donors
    return used


def train_only_rows(embedding: nn.Embedding, rows: list[int]) -> torch.utils.hooks.RemovableHandle:
    """Let only ``rows`` of ``embedding.weight`` learn: the gradient of every other row is zeroed.

    The weight must then get no weight decay (a decoupled decay would still move the
    frozen rows); :func:`songbloom.training.setup.parameter_groups` sees to that.
    """
    mask = torch.zeros(embedding.weight.shape[0], 1, dtype=embedding.weight.dtype, device=embedding.weight.device)
    mask[rows] = 1
    embedding.weight.requires_grad_(True)
    return embedding.weight.register_hook(lambda g: g * mask.to(g.dtype))
