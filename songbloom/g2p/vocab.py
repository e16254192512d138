"""SongBloom's lyric vocabulary (``vocab_g2p.yaml``): 330 symbols, index 0 the empty pad.

Index 1-7 are the structure tags, then the punctuation ``! , - . ?``, ARPAbet
with stress, pinyin initials and toned finals, OpenJTalk's Japanese phonemes,
``SP SP2 SP3 UNK _`` and ``…``. The copy shipped here is the released list;
:func:`load_vocab` reads another one (e.g. the ``vocab_g2p.yaml`` beside a
checkpoint) so that ids always follow the checkpoint's own file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shirabe.cli import InputError

DEFAULT_VOCAB = Path(__file__).with_name("vocab_g2p.yaml")
STRUCTURE_TAGS = ("[verse]", "[chorus]", "[bridge]", "[intro]", "[outro]", "[inst]", "[silence]")
SENTENCE_END = "."
PHRASE_END = ","


@dataclass(frozen=True)
class Vocab:
    """The symbol list and its index, plus the ids the tokenizer treats specially."""

    symbols: tuple[str, ...]
    index: dict[str, int] = field(repr=False, compare=False)

    @classmethod
    def from_symbols(cls, symbols) -> Vocab:
        symbols = tuple(symbols)
        return cls(symbols, {s: i for i, s in enumerate(symbols)})

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.index

    def id(self, symbol: str) -> int:
        return self.index[symbol]

    @property
    def structure_ids(self) -> frozenset[int]:
        """Ids of the entries shaped ``[...]`` (the structure tags)."""
        return frozenset(i for s, i in self.index.items() if len(s) > 2 and s[0] == "[" and s[-1] == "]")


def load_vocab(path: str | Path | None = None) -> Vocab:
    """Read a ``vocab_g2p.yaml`` (a YAML list of symbols); the shipped copy by default."""
    path = Path(path) if path is not None else DEFAULT_VOCAB
    try:
        symbols = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the lyric vocabulary ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not a YAML file ({str(e).splitlines()[0]})") from None
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise InputError(f"{path}: a lyric vocabulary is a YAML list of strings")
    symbols = ["" if s is None else s for s in symbols]
    for needed in (SENTENCE_END, PHRASE_END, *STRUCTURE_TAGS):
        if needed not in symbols:
            raise InputError(f"{path}: the lyric vocabulary has no {needed!r}")
    if len(set(symbols)) != len(symbols):
        dup = next(s for s in symbols if symbols.count(s) > 1)
        raise InputError(f"{path}: the lyric vocabulary lists {dup!r} twice")
    return Vocab.from_symbols(symbols)
